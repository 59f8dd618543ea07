"""The archive's own retention: footage older than its days goes, and the oldest goes first
while free space is under the watermark; a forecast says how many days the disk still holds."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from central.archive.settings import ArchiveConfig
from central.archive.store import ArchiveStore, Stored

log = logging.getLogger(__name__)
DAY_S = 86400.0


def expired(segment_end: float, now: float, retention_days: int) -> bool:
    """Whether a segment is past the archive's retention."""
    return segment_end < now - retention_days * DAY_S


def below_watermark(total: int, free: int, config: ArchiveConfig) -> bool:
    """Whether free space is under the archive's watermark (percent or bytes)."""
    if total <= 0:
        return False
    return free < config.min_free_bytes or 100.0 * free / total < config.min_free_percent


def days_left(free: int, bytes_per_day: float) -> float | None:
    """Days the free space holds at the current intake (None: nothing comes in)."""
    return None if bytes_per_day <= 0 else free / bytes_per_day


@dataclass
class CleanupReport:
    """What one round removed."""

    expired: int = 0
    evicted: int = 0
    freed_bytes: int = 0


class ArchiveCleaner:
    """Deletes expired segments, then the oldest ones while under the free-space watermark."""

    def __init__(self, config: ArchiveConfig, root: Path, store: ArchiveStore) -> None:
        self.config = config
        self.root = root
        self.store = store

    def disk(self) -> tuple[int, int]:
        """(total, free) bytes of the archive's disk."""
        usage = shutil.disk_usage(self.root)
        return usage.total, usage.free

    def run_once(self, now: float | None = None) -> CleanupReport:
        """One round; never deletes a segment younger than retention unless the disk is full."""
        now = time.time() if now is None else now
        report = CleanupReport()
        while True:
            batch = self.store.oldest(200)
            old = [s for s in batch if expired(s.end, now, self.config.retention_days)]
            if not old:
                break
            for seg in old:
                report.freed_bytes += self._delete(seg)
                report.expired += 1
            if len(old) < len(batch):
                break
        while below_watermark(*self.disk(), self.config):
            batch = self.store.oldest(20)
            if not batch:
                break
            for seg in batch:
                report.freed_bytes += self._delete(seg)
                report.evicted += 1
            log.warning("archive under its free-space watermark: evicted %d oldest segments",
                        len(batch))  # fmt: skip
        return report

    def _delete(self, seg: Stored) -> int:
        path = self.root / seg.site / seg.path
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.store.remove(seg)
        return seg.bytes
