"""What a camera's detection rules can see, as its site's last heartbeat reported it."""

from __future__ import annotations

import json
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
