"""What a camera's detection rules can see and how its sub stream is recorded, as its site's
last heartbeat reported it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def camera_detection(heartbeat: str | None, camera_id: str) -> dict[str, Any] | None:
    """The camera's model and per-rule status (`working`, `partial`, `blind` with a reason)
    from a stored heartbeat; None when the agent does not report detection (older agents,
    detection off, or no heartbeat yet)."""
    try:
        beat = json.loads(heartbeat) if heartbeat else {}
    except ValueError:
        return None
    for entry in beat.get("detection") or []:
        if isinstance(entry, dict) and entry.get("camera") == camera_id:
            rules = [r for r in entry.get("rules") or [] if isinstance(r, dict)]
            return {
                "model": entry.get("model"),
                "error": entry.get("error"),
                "rules": rules,
                "counts": {s: sum(r.get("status") == s for r in rules)
                           for s in ("working", "partial", "blind")},
            }  # fmt: skip
    return None


# What central says of a camera's sub lane recorder (camera_sub_lane's `state`).
SUB_LANE_STATES = ("recording", "offline", "unknown", "not_recorded")


def heartbeat_of(text: str | None) -> dict[str, Any]:
    """A stored heartbeat decoded ({} when there is none or it does not parse)."""
    try:
        beat = json.loads(text) if text else {}
    except ValueError:
        return {}
    return beat if isinstance(beat, dict) else {}


def camera_sub_lane(beat: dict[str, Any], camera_id: str) -> dict[str, Any] | None:
    """The recorder of the camera's sub stream (its lane `<camera>--sub`) as the site's last
    heartbeat reported it: `state` is `recording`, `offline` (with the edge's `reason`),
    `unknown` (starting) or `not_recorded` (the camera is reported without a sub lane: the
    site's archive policy or the camera's record_sub leave it out); with fps, bitrate and the
    end of its last segment (epoch seconds). None when the heartbeat does not name the camera.
    """
    for entry in beat.get("cameras") or []:
        if not isinstance(entry, dict) or entry.get("camera") != camera_id:
            continue
        lane = entry.get("sub")
        if not isinstance(lane, dict):
            return {"state": "not_recorded", "reason": None, "fps": None, "bitrate_bps": None,
                    "last_segment_end": None}  # fmt: skip
        told = lane.get("state")
        state = {"online": "recording", "offline": "offline"}.get(str(told), "unknown")
        return {
            "state": state,
            "reason": lane.get("reason") if state == "offline" else None,
            "fps": lane.get("fps"),
            "bitrate_bps": lane.get("bitrate_bps"),
            "last_segment_end": _epoch(lane.get("last_segment_end")),
        }
    return None


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
