"""Segment file layout: {storage}/{camera}/{YYYY-MM-DD}/{HH}/{MM.SS}.mp4, all in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

_REL = re.compile(
    r"^(?P<cam>[a-z0-9][a-z0-9_-]*)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<h>\d{2})/"
    r"(?P<m>\d{2})\.(?P<s>\d{2})\.mp4$"
)


def segment_relpath(camera: str, start: float) -> str:
    """Relative path of the segment of `camera` that starts at `start` (UTC epoch seconds)."""
    t = datetime.fromtimestamp(start, UTC)
    return f"{camera}/{t:%Y-%m-%d}/{t:%H}/{t:%M.%S}.mp4"


def parse_relpath(relpath: str) -> tuple[str, float] | None:
    """Camera and start second encoded in a relative segment path, or None if it is not one."""
    m = _REL.match(relpath.replace("\\", "/"))
    if m is None:
        return None
    try:
        t = datetime.strptime(
            f"{m['date']} {m['h']}:{m['m']}:{m['s']}", "%Y-%m-%d %H:%M:%S"
        ).replace(tzinfo=UTC)
    except ValueError:
        return None
    return m["cam"], t.timestamp()


def iter_segment_files(storage: Path, camera: str | None = None) -> list[Path]:
    """Every file under the storage tree that is named like a segment, sorted by path."""
    roots = [storage / camera] if camera else [p for p in storage.iterdir() if p.is_dir()]
    found: list[Path] = []
    for root in roots:
        if not root.is_dir() or root.name.startswith("."):
            continue
        for path in root.glob("*/*/*.mp4"):
            if parse_relpath(path.relative_to(storage).as_posix()) is not None:
                found.append(path)
    return sorted(found)
