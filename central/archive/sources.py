"""Replay from the best source: which parts of a time range the archive, the edge or nobody has.

The edge holds what its anchored chain says it has not deleted; it serves replay only while
its agent is online. The archive holds what it stored and verified, of the main stream or
(policy `sub`) the sub stream's lane; each part says which stream plays there (main where
the archive holds both). The archive is taken
wherever it has the footage (it is central's own copy and costs the site's uplink nothing);
the edge otherwise; `edge_offline` marks footage only an unreachable edge holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from central.archive.store import ArchiveStore, Stored
from fsv_contract.lanes import Lane, lane_id, split_lane

Source = Literal["archive", "edge", "edge_offline", "none"]
JOIN_S = 2.0  # parts of one source closer than this are one part


class _Reads(Protocol):
    def read(self) -> Any: ...


class _ArchiveLike(Protocol):
    store: ArchiveStore
    central: Any


@dataclass
class Part:
    """A stretch of time and where its footage comes from (`stream`: which of the camera's
    recordings plays there; the archive may hold only the sub stream, the edge plays main)."""

    start: float
    end: float
    source: Source
    files: list[str]
    stream: Lane | None = None


def best_sources(
    start: float,
    end: float,
    archived: list[Stored],
    on_edge: list[tuple[float, float]],
    edge_online: bool,
) -> list[Part]:
    """Parts covering [start, end) by source, archive first (pure)."""
    cuts = {start, end}
    for s in archived:
        cuts |= {max(start, s.start), min(end, s.end)}
    for a, b in on_edge:
        cuts |= {max(start, a), min(end, b)}
    points = sorted(c for c in cuts if start <= c <= end)
    parts: list[Part] = []
    for a, b in zip(points, points[1:], strict=False):
        if b <= a:
            continue
        mid = (a + b) / 2
        here = [s for s in archived if s.start <= mid < s.end]
        main = [s.path for s in here if split_lane(s.camera)[1] == "main"]
        files = main or [s.path for s in here]
        source: Source
        played: Lane | None = None
        if files:
            source, played = "archive", ("main" if main else "sub")
        elif any(x <= mid < y for x, y in on_edge):
            source, played = ("edge" if edge_online else "edge_offline"), "main"
        else:
            source = "none"
        last = parts[-1] if parts else None
        if (
            last is not None
            and (last.source, last.stream) == (source, played)
            and a - last.end <= JOIN_S
        ):
            last.end = b
            last.files += [f for f in files if f not in last.files]
        else:
            parts.append(Part(a, b, source, files, played))
    return parts


def archived_lanes(
    store: ArchiveStore, site: str, camera: str, start: float, end: float
) -> list[Stored]:
    """What the archive holds of both of a camera's lanes in [start, end), in time order."""
    both = [
        *store.between(site, lane_id(camera, "main"), start, end),
        *store.between(site, lane_id(camera, "sub"), start, end),
    ]
    return sorted(both, key=lambda s: s.start)


def timeline(
    archive: _ArchiveLike, site: str, camera: str, start: float, end: float
) -> list[dict[str, Any]]:
    """The parts of a camera's [start, end) with their source (database reads: off the loop)."""
    archived = archived_lanes(archive.store, site, camera, start, end)
    on_edge = _anchored(archive, site, camera, start, end)
    online = agent_online(archive, site)
    return [
        {"start": p.start, "end": p.end, "source": p.source, "stream": p.stream, "files": p.files}
        for p in best_sources(start, end, archived, on_edge, online)
    ]


def replay_sources(
    archive: _ArchiveLike,
    site: str,
    camera: str,
    start: float,
    end: float,
    edge_ranges: list[tuple[float, float]] | None,
) -> list[dict[str, Any]]:
    """Where replay takes each recorded stretch of [start, end) from (database reads: off the loop).

    `edge_ranges` are the ranges the edge just reported; None when it did not answer, then
    what its anchored chain says it holds counts, as `edge_offline`. Stretches nobody holds
    are left out: the timeline shows them as gaps already.
    """
    archived = archived_lanes(archive.store, site, camera, start, end)
    on_edge = edge_ranges
    if on_edge is None:
        on_edge = _anchored(archive, site, camera, start, end)
    parts = best_sources(start, end, archived, on_edge, edge_ranges is not None)
    return [
        {"start": p.start, "end": p.end, "source": p.source, "stream": p.stream}
        for p in parts
        if p.source != "none"
    ]


def _anchored(
    archive: _ArchiveLike, site: str, camera: str, start: float, end: float
) -> list[tuple[float, float]]:
    """What the edge's anchored chain says it still holds in [start, end)."""
    with archive.central.read() as db:
        return [
            (float(r[0]), float(r[1]))
            for r in db.execute(
                'select start, "end" from anchored_segments where site = ? and camera = ? '
                'and removed_at is null and "end" > ? and start < ? order by start',
                [site, camera, start, end],
            ).fetchall()
        ]


def agent_online(archive: _ArchiveLike, site: str) -> bool:
    """Whether the site's agent says it is online (its retained state)."""
    with archive.central.read() as db:
        row = db.execute("select state from agent_status where site = ?", [site]).fetchone()
    return row is not None and row[0] == "online"
