"""Live that fits the line: whether a site's uplink can carry one more stream, and if not, why.

The edge's heartbeat (`uplink`) says how large the site's budget is and what each of its
live streams costs; central knows which upstreams of the site run now. A stream that would
not fit is refused at once with a message the viewer shows (watch the sub stream, or close
another view) instead of a player that stalls on a starved line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from central.schema import LockedDb
from central.video.hub import VideoHub
from central.video.upstream import StreamKey

HEADROOM = 0.9  # live may use this share of the budget; the rest keeps commands and events moving
DEFAULT_SUB_BPS = 512_000.0  # the canteen plan's 0.5 Mbit/s per camera, when nothing reported


@dataclass(frozen=True)
class LineReport:
    """What a site's last heartbeat said about its uplink."""

    budget_bps: float | None
    streams: dict[tuple[str, str], float]  # (camera, stream) -> bits/s
    main_bps: dict[str, float]  # camera -> recorded main stream bits/s


def parse_line(heartbeat: dict[str, Any] | None) -> LineReport:
    """The uplink facts of a decoded heartbeat (missing or odd parts count as unknown)."""
    beat = heartbeat or {}
    uplink = beat.get("uplink") if isinstance(beat.get("uplink"), dict) else {}
    assert isinstance(uplink, dict)
    budget = uplink.get("budget_bps")
    streams: dict[tuple[str, str], float] = {}
    for s in uplink.get("streams") or []:
        if isinstance(s, dict) and isinstance(s.get("bps"), int | float):
            streams[(str(s.get("camera")), str(s.get("stream")))] = float(s["bps"])
    main: dict[str, float] = {}
    for c in beat.get("cameras") or []:
        if isinstance(c, dict) and isinstance(c.get("bitrate_bps"), int | float):
            main[str(c.get("camera"))] = float(c["bitrate_bps"])
    return LineReport(
        float(budget) if isinstance(budget, int | float) and budget > 0 else None, streams, main
    )


def stream_cost(line: LineReport, camera: str, stream: str) -> float | None:
    """Bits/s a live view of the stream adds to the site's uplink (None: not known)."""
    cost = line.streams.get((camera, stream))
    if cost:
        return cost
    if stream == "main":
        return line.main_bps.get(camera)
    return DEFAULT_SUB_BPS


def refusal(line: LineReport, camera: str, stream: str, running_bps: Iterable[float]) -> str | None:
    """Why the site's uplink cannot carry this stream on top of what runs, or None if it can."""
    if line.budget_bps is None:
        return None
    cost = stream_cost(line, camera, stream)
    if cost is None:
        return None
    used = sum(running_bps)
    room = line.budget_bps * HEADROOM - used
    if cost <= room:
        return None
    mbit = 1e6
    advice = (
        "watch the sub stream (流畅) instead"
        if stream == "main"
        else "close another view of this site and try again"
    )
    return (
        f"上行带宽不足 uplink too thin: the site's line carries {line.budget_bps / mbit:.1f} "
        f"Mbit/s and {used / mbit:.1f} Mbit/s of video already runs; the {stream} stream "
        f"needs {cost / mbit:.1f} Mbit/s. {advice}"
    )


def site_line(ldb: LockedDb, site: str) -> LineReport:
    """The site's uplink facts from its last heartbeat (a database read: call off the loop)."""
    with ldb.read() as db:
        row = db.execute("select heartbeat from agent_status where site = ?", [site]).fetchone()
    try:
        beat = json.loads(row[0]) if row is not None and row[0] else None
    except ValueError:
        beat = None
    return parse_line(beat if isinstance(beat, dict) else None)


def running_bps(hub: VideoHub, site: str) -> list[float]:
    """What the site's running upstreams cost now (measured, or announced if larger)."""
    out = []
    for up in hub.upstreams():
        if up.key.site != site or up.state == "ended":
            continue
        measured = up.rates()[1]
        announced = up.hello.bitrate_bps if up.hello is not None else None
        out.append(max(measured, announced or 0.0))
    return out


async def line_refusal(ldb: LockedDb, hub: VideoHub, key: StreamKey) -> str | None:
    """Why a new view of `key` would not fit the site's uplink; None if it fits or is running.

    Joining a live stream that already runs costs the line nothing.
    """
    running = hub.find(key)
    if running is not None and running.state != "ended":
        return None
    line = await asyncio.to_thread(site_line, ldb, key.site)
    return refusal(line, key.camera, key.stream, running_bps(hub, key.site))
