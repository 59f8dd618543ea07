"""The central application factory: every resource lives in a cleanup context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from central.api.common import nul_middleware
from central.api.model_routes import add_download_route
from central.archive.routes import add_edge_routes as add_archive_edge_routes
from central.archive.service import archive_ctx
from central.config import CentralConfig, mqtt_password
from central.ingest.accounts import is_central_account
from central.ingest.commands import Commands
from central.ingest.media import MediaStore
from central.ingest.pipeline import Ingest, running_ingest
from central.ingest.routes import add_routes
from central.ingest.site_auth import SitePasswords
from central.ingest.store import IngestStore
from central.ingest.upload_slots import UploadSlots
from central.integrity.service import integrity_ctx
from central.keys import (
    BROKER,
    COMMANDS,
    CONFIG,
    DATABASE,
    INGEST,
    INGEST_HOOKS,
    INGEST_STORE,
    LEASES,
    MEDIA,
    SITE_PASSWORDS,
    SITE_THROTTLE,
    UPLOAD_SLOTS,
)
from central.metrics import add_metrics
from central.nodes import add_health
from central.regulator import add_regulator, regulator_ctx
from central.services import login_throttle
from central.storage.db import CentralDatabase
from central.video.pages import add_video_pages
from central.video.services import video_ctx
from central.web import security

log = logging.getLogger(__name__)


def create_app(config: CentralConfig) -> web.Application:
    """Central's aiohttp application: database, MQTT ingest, media uploads, ingest stats.

    Contexts run in order at start-up and in reverse at shutdown. A part that needs the
    database and must be in place before ingest starts (e.g. the regulator hooks, set as
    `app[INGEST_HOOKS]`) adds its context between `database_ctx` and `ingest_ctx`.
    """
    app = web.Application(middlewares=[nul_middleware])
    app[CONFIG] = config
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(regulator_ctx)
    app.cleanup_ctx.append(ingest_ctx)
    app.cleanup_ctx.append(integrity_ctx)
    app.cleanup_ctx.append(video_ctx)
    app.cleanup_ctx.append(archive_ctx)
    add_routes(app)
    add_download_route(app)
    add_archive_edge_routes(app)
    add_regulator(app)
    add_video_pages(app)
    add_metrics(app)
    add_health(app)
    security.install(app)
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open central.db (migrations applied) and the stores that read it."""
    config = app[CONFIG]
    database = await asyncio.to_thread(CentralDatabase, config.database_url)
    app[DATABASE] = database
    app[INGEST_STORE] = IngestStore(database)
    app[MEDIA] = MediaStore(database, config.media_dir, config.media.max_bytes)
    password_file = config.broker.password_file if config.broker else None
    if password_file is None:
        log.warning("no broker.password_file configured: media uploads are refused")
    shared = database if config.cluster.nodes > 1 else None
    app[SITE_THROTTLE] = login_throttle(config.web, shared, "sites")
    app[UPLOAD_SLOTS] = UploadSlots(config.media.uploads_per_site)
    app[SITE_PASSWORDS] = SitePasswords(
        password_file or config.data_dir / "no-site-passwords",
        excluded=partial(is_central_account, config.mqtt.username),
    )
    try:
        yield
    finally:
        await asyncio.to_thread(database.close)


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    """Subscribe to every site and write what arrives; commands go out on the same client."""
    config = app[CONFIG]
    password = await asyncio.to_thread(mqtt_password, config.mqtt)
    ingest = Ingest(
        app[INGEST_STORE], config.ingest.batch_max, app.get(INGEST_HOOKS),
        unstored_dir=config.data_dir / "unstored",
    )  # fmt: skip
    app[INGEST] = ingest
    async with running_ingest(config, ingest, password, app.get(LEASES)) as client:
        app[BROKER] = client
        app[COMMANDS] = Commands(app[DATABASE], client)
        yield
