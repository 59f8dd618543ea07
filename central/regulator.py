"""Wires the regulator side into central's application: middlewares, routes, pages, resources."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from central.alerts.endpoint_policy import EndpointPolicy, policy_session_kwargs
from central.alerts.push import load_vapid
from central.alerts.push_dispatch import PushDispatcher
from central.alerts.update_relay import UpdateRelay
from central.api import (
    alert_routes,
    audit_routes,
    auth_routes,
    dashboard_routes,
    inspection_routes,
    integrity_routes,
    label_routes,
    model_routes,
    org_routes,
    poster_routes,
    public_routes,
    push_routes,
    report_routes,
    token_routes,
    update_routes,
    user_routes,
)
from central.api.common import SERVICES, auth_middleware, error_middleware, json_response
from central.api.openapi import build_openapi
from central.api.registry import Endpoint
from central.archive import routes as archive_routes
from central.keys import COMMANDS, CONFIG, DATABASE, INGEST_HOOKS, LEASES
from central.nodes import leases_for, node_id
from central.regulation.sessions import SessionStore
from central.sdnotify import watchdog_ctx
from central.services import build_services, login_throttle, shared_limits
from central.storage.pg import is_postgres_url
from central.video import api_archive, api_live, api_public
from central.web import add_pages

log = logging.getLogger(__name__)

ROUTE_TABLES = (
    auth_routes.routes,
    token_routes.routes,
    org_routes.routes,
    user_routes.routes,
    alert_routes.routes,
    label_routes.routes,
    model_routes.routes,
    push_routes.routes,
    report_routes.routes,
    audit_routes.routes,
    dashboard_routes.routes,
    integrity_routes.routes,
    public_routes.routes,
    update_routes.routes,
    inspection_routes.routes,
    poster_routes.routes,
    api_live.routes,
    api_public.routes,
    api_archive.routes,
    archive_routes.routes,
)
SESSION_PURGE_S = 3600.0


def endpoints() -> list[Endpoint]:
    """Every documented regulator endpoint."""
    return [ep for table in ROUTE_TABLES for ep in table.endpoints]


async def openapi_json(_request: web.Request) -> web.Response:
    """The OpenAPI document of the API."""
    return json_response(build_openapi(endpoints()))


def add_regulator(app: web.Application) -> None:
    """Register middlewares, API routes, pages and the systemd watchdog (last to start)."""
    app.middlewares.append(error_middleware)
    app.middlewares.append(auth_middleware)
    for table in ROUTE_TABLES:
        table.add_to(app)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/p/{token}", public_routes.public_page)
    add_pages(app)
    app.on_shutdown.append(_close_update_sockets)
    app.cleanup_ctx.append(watchdog_ctx)


async def _close_update_sockets(app: web.Application) -> None:
    """At shutdown the pages' update sockets close ("going away"); the pages reconnect."""
    svc = app.get(SERVICES)
    if svc is not None:
        svc.updates.close_all()
        for _ in range(20):  # the senders close them on the next loop rounds
            if not svc.updates.count:
                break
            await asyncio.sleep(0.05)


async def regulator_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the regulator services and the push worker; set the ingest hooks.

    Runs after the database context and before ingest, so no event reaches ingest before
    the hooks are in place. Commands go through ingest's broker client, which exists only
    once ingest started: the sender looks it up when it is called.
    """
    config = app[CONFIG]

    def send_command(site: str, verb: str, args: dict[str, Any]) -> str:
        commands = app.get(COMMANDS)
        if commands is None:
            raise RuntimeError("not connected to the broker yet")
        return commands.send(site, verb, args)

    svc = await asyncio.to_thread(
        build_services,
        app[DATABASE],
        config.web,
        config.push,
        config.data_dir,
        send_command,
        node_id(config) if config.cluster.nodes > 1 else None,
    )
    leases = leases_for(config, app[DATABASE])
    if leases is not None:
        app[LEASES] = leases
        svc.throttle = login_throttle(config.web, app[DATABASE], "users")
        shared_limits(svc, app[DATABASE])
    vapid = await asyncio.to_thread(load_vapid, config.push)
    if vapid is not None:
        svc.vapid_public_key = application_server_key(vapid)
    # Push's own session: its resolver connects only to addresses the endpoint policy allows.
    session = aiohttp.ClientSession(
        **policy_session_kwargs(EndpointPolicy(config.push.allow_networks))
    )
    dispatcher = PushDispatcher(svc.jobs, config.push, config.web.base_url, session, vapid)
    svc.dispatcher = dispatcher
    svc.hooks.push = dispatcher.wake
    app[SERVICES] = svc
    app[INGEST_HOOKS] = svc.hooks
    svc.updates.attach(asyncio.get_running_loop())
    relay_tasks: list[asyncio.Task[None]] = []
    if config.cluster.nodes > 1 and config.database and is_postgres_url(config.database):
        # Several nodes on PostgreSQL: every node's pages hear every node's changes.
        relay_tasks = UpdateRelay(config.database, node_id(config), svc.updates).start()
    tasks = [
        *relay_tasks,
        asyncio.create_task(dispatcher.run(), name="push-dispatch"),
        asyncio.create_task(_purge_sessions(svc.sessions), name="session-purge"),
        asyncio.create_task(
            svc.updates.watch_sessions(svc.ldb, config.web.idle_minutes * 60),
            name="update-sessions",
        ),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()


def application_server_key(vapid: Any) -> str:
    """The VAPID public key as browsers want it: uncompressed point, base64url, no padding."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _purge_sessions(sessions: SessionStore) -> None:
    while True:
        try:
            await asyncio.to_thread(sessions.purge_expired)
        except Exception:  # noqa: BLE001 - expired rows just stay another hour
            log.exception("purging expired sessions failed")
        await asyncio.sleep(SESSION_PURGE_S)
