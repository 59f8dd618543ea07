"""The archive's resource: its store, the transfer logic and the retention loop, in one context."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from central.archive.retention import ArchiveCleaner, days_left
from central.archive.store import ArchiveStore
from central.archive.transfer import Archive

log = logging.getLogger(__name__)


class CityArchive(Archive):
    """The archive with its cleaner and a status for admins."""

    cleaner: ArchiveCleaner

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Footage per site, the disk, days left at the last day's intake, refusals."""
        now = time.time() if now is None else now
        total, free = self.cleaner.disk()
        with self.store.lock:
            row = self.store.db.execute(
                "select coalesce(sum(bytes), 0) from segments where stored_at > ?", [now - 86400]
            ).fetchone()
        per_day = float(row[0])
        return {
            "sites": self.store.totals(),
            "disk_total_bytes": total,
            "disk_free_bytes": free,
            "intake_bytes_last_day": per_day,
            "days_left": days_left(free, per_day),
            "retention_days": self.config.retention_days,
            "refused": self.store.refusals()[:100],
        }


def open_archive(app: web.Application) -> CityArchive:
    """The archive on its folder (created), beside central's database."""
    from central.keys import CONFIG, DATABASE

    config = app[CONFIG]
    root = config.archive_dir
    root.mkdir(parents=True, exist_ok=True)
    store = ArchiveStore(root / "archive.db")
    archive = CityArchive(config.archive, root, store, app[DATABASE], config.web.timezone)
    archive.cleaner = ArchiveCleaner(config.archive, root, store)
    return archive


async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the archive and run its retention loop until shutdown."""
    from central.keys import ARCHIVE, CONFIG, LEASES
    from central.nodes import ARCHIVE_RETENTION, lead

    archive = await asyncio.to_thread(open_archive, app)
    app[ARCHIVE] = archive
    clean = functools.partial(_clean, archive)
    renew = app[CONFIG].cluster.renew_s
    task = asyncio.create_task(
        lead(app.get(LEASES), ARCHIVE_RETENTION, clean, renew), name="archive-retention"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(archive.store.close)


async def _clean(archive: CityArchive) -> None:
    while True:
        try:
            report = await asyncio.to_thread(archive.cleaner.run_once)
            if report.expired or report.evicted:
                log.info("archive retention: %d expired, %d evicted, %d bytes freed",
                         report.expired, report.evicted, report.freed_bytes)  # fmt: skip
        except Exception:  # noqa: BLE001 - a busy database or disk now is retried next round
            log.exception("archive retention round failed")
        await asyncio.sleep(archive.config.cleanup_interval_s)
