"""The integrity worker of central's application: scheduled and requested audits."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from central.integrity.audits import Audits, AuditSettings
from central.keys import COMMANDS, CONFIG, DATABASE, INTEGRITY, LEASES
from central.nodes import INTEGRITY_AUDITS, lead

log = logging.getLogger(__name__)


async def integrity_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run audit rounds every `integrity.poll_s` (after ingest started: audits need commands)."""
    cfg = app[CONFIG].integrity
    settings = AuditSettings(
        cfg.audit_interval_s, cfg.samples_per_camera, cfg.reply_timeout_s,
        anchor_margin_s=cfg.anchor_margin_days * 86400.0,
    )  # fmt: skip
    audits = Audits(app[DATABASE], settings)
    app[INTEGRITY] = audits
    work = functools.partial(_run, app, audits, cfg.poll_s)
    renew = app[CONFIG].cluster.renew_s
    task = asyncio.create_task(
        lead(app.get(LEASES), INTEGRITY_AUDITS, work, renew), name="integrity-audits"
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _run(app: web.Application, audits: Audits, poll_s: float) -> None:
    while True:
        commands = app.get(COMMANDS)
        if commands is not None:
            try:
                await asyncio.to_thread(audits.run_round, commands)
            except Exception:  # noqa: BLE001 - e.g. the database is busy: the next round retries
                log.exception("integrity audit round failed")
        await asyncio.sleep(poll_s)
