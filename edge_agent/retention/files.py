"""Deleting segment files and the hour and day folders they leave empty."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from edge_agent.recording.paths import parse_relpath

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86400.0
# A folder is removed only this long after its hour (or day) is over: the recorder may
# still be finishing a segment that started in it, or creating it for the next one.
SETTLE_S = HOUR


class DiskUsage(Protocol):
    """What `shutil.disk_usage` answers, as far as retention reads it."""

    @property
    def total(self) -> int:
        """Size of the file system in bytes."""

    @property
    def free(self) -> int:
        """Bytes free for this process."""


DiskUsageProbe = Callable[[Path], DiskUsage]


def delete_segment_file(storage: Path, relpath: str) -> bool:
    """Delete one segment file; False if it was already gone. Other OSErrors propagate."""
    try:
        (storage / relpath).unlink()
    except FileNotFoundError:
        return False
    return True


def remove_empty_dirs(storage: Path, relpaths: Iterable[str], now: float) -> int:
    """Remove the hour folders, then day folders, of these segments once empty and settled.

    Camera folders are kept. Returns how many folders were removed.
    """
    hours: dict[Path, float] = {}
    days: dict[Path, float] = {}
    for rel in relpaths:
        parsed = parse_relpath(rel)
        if parsed is None:
            continue
        _camera, start = parsed
        hour_dir = (storage / rel).parent
        hours[hour_dir] = start - start % HOUR + HOUR
        days[hour_dir.parent] = start - start % DAY + DAY
    removed = 0
    for folders in (hours, days):
        for folder, ends in sorted(folders.items()):
            if now >= ends + SETTLE_S and _rmdir_if_empty(folder):
                removed += 1
    return removed


def _rmdir_if_empty(folder: Path) -> bool:
    try:
        os.rmdir(folder)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            log.warning("cannot remove empty folder %s: %s", folder, e.strerror or e)
        return False
    return True
