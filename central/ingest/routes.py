"""HTTP handlers of the ingest side: media uploads from edges, ingest statistics."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

from aiohttp import web

from central.api.common import client_ip, current_user, json_response
from central.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from central.ingest.media import Announced
from central.ingest.media_types import ALLOWED_TYPES, SNIFF_BYTES, allowed, sniff
from central.keys import (
    BROKER,
    INGEST,
    INGEST_STORE,
    MEDIA,
    SITE_PASSWORDS,
    SITE_THROTTLE,
    UPLOAD_SLOTS,
)
from central.regulation.roles import Role
from fsv_contract.payloads import MEDIA_NAME_PATTERN

log = logging.getLogger(__name__)

SHA256_HEADER = "X-Content-SHA256"
CHUNK = 256 * 1024
_NAME = re.compile(MEDIA_NAME_PATTERN)
_SHA = re.compile(r"^[0-9a-f]{64}$")
BUSY_RETRY_S = 5  # Retry-After of an upload refused while the site sends its maximum


def add_routes(app: web.Application) -> None:
    """Register the ingest routes."""
    app.router.add_put("/api/v1/media/{event_id}/{name}", put_media)
    app.router.add_get("/api/v1/ingest/stats", get_stats)


async def get_stats(request: web.Request) -> web.Response:
    """Ingest counters (received, accepted, duplicates, rejected, per topic kind), backlog.

    Admins only: the counters describe every site.
    """
    user = current_user(request)
    if user.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may read the ingest statistics")
    stats = await asyncio.to_thread(request.app[INGEST_STORE].stats)
    broker = request.app.get(BROKER)
    connected = broker is not None and broker.connected.is_set()
    return json_response(
        {**stats, "backlog": request.app[INGEST].backlog, "mqtt_connected": connected}
    )


async def put_media(request: web.Request) -> web.Response:
    """Store one media file of an event (site login: HTTP Basic, the site's MQTT account)."""
    site = await _site_of(request)
    with await upload_slot(request, site):
        return await _put_media(request, site)


async def upload_slot(request: web.Request, site: str) -> AbstractContextManager[None]:
    """One of the site's upload slots (central.ingest.upload_slots), held while the body
    arrives; 429 (logged, counted as `media_refused:busy`) when all are taken."""
    slots = request.app[UPLOAD_SLOTS]
    if slots.busy(site):
        await asyncio.to_thread(request.app[MEDIA].count_refused, "busy")
        log.warning("refused an upload of site %s: %d already running", site, slots.per_site)
        raise web.HTTPTooManyRequests(
            headers={"Retry-After": str(BUSY_RETRY_S)},
            text=f"this site already sends {slots.per_site} uploads at once; retry when one ends",
        )
    return slots.hold(site)


async def _put_media(request: web.Request, site: str) -> web.Response:
    event_id, name, sha = _parse_target(request)
    store = request.app[MEDIA]
    if request.content_length is not None and request.content_length > store.max_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=store.max_bytes, actual_size=request.content_length
        )
    try:
        ann = await asyncio.to_thread(store.announced, site, event_id, name)
    except NotFoundError as e:
        raise web.HTTPNotFound(text=str(e)) from e
    except ConflictError as e:
        raise web.HTTPConflict(text=str(e)) from e
    if not allowed(ann.content_type):
        await asyncio.to_thread(store.count_refused, "type")
        raise web.HTTPUnsupportedMediaType(
            text=f"{ann.content_type!r} is not an accepted media type ({', '.join(ALLOWED_TYPES)})"
        )
    stored = await asyncio.to_thread(store.stored_sha, event_id, name)
    if ann.sha256 != sha or (stored is not None and stored != sha):
        # Evidence is write-once: the first announced hash is final (counted and audited).
        await asyncio.to_thread(store.refuse, site, event_id, name, sha)
        raise web.HTTPConflict(
            text="SHA-256 differs from the one the event first announced; evidence is final"
        )
    if stored == sha:
        return web.Response(status=200, text="already stored\n")
    temp = await asyncio.to_thread(store.temp_path, site, event_id, name)
    try:
        await _receive(request, temp, ann, store.max_bytes)
        await asyncio.to_thread(store.commit, site, event_id, name, temp, ann)
    finally:
        await asyncio.to_thread(temp.unlink, missing_ok=True)
    return web.Response(status=201, text="stored\n")


async def _receive(request: web.Request, temp: Path, ann: Announced, limit: int) -> None:
    """Stream the body to `temp`, hashing it; refuse it if too big or not what was announced."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    f = await asyncio.to_thread(temp.open, "wb")
    try:
        while chunk := await request.content.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
            if len(head) < SNIFF_BYTES:
                head = (head + chunk)[:SNIFF_BYTES]
                if len(head) == SNIFF_BYTES:
                    await _check_magic(request, head, ann)
            digest.update(chunk)
            await asyncio.to_thread(f.write, chunk)
    finally:
        await asyncio.to_thread(f.close)
    if len(head) < SNIFF_BYTES:
        await _check_magic(request, head, ann)
    if size != ann.bytes or digest.hexdigest() != ann.sha256:
        raise web.HTTPUnprocessableEntity(
            text=f"received {size} bytes with another SHA-256 than announced; send it again"
        )


async def _check_magic(request: web.Request, head: bytes, ann: Announced) -> None:
    """Refuse (415, counted) a body whose first bytes are not the announced type's."""
    found = sniff(head)
    if found != ann.content_type.lower():
        await asyncio.to_thread(request.app[MEDIA].count_refused, "content")
        raise web.HTTPUnsupportedMediaType(
            text=f"the file is not {ann.content_type} (it starts like {found or 'no allowed type'})"
        )


def _parse_target(request: web.Request) -> tuple[str, str, str]:
    try:
        event_id = str(uuid.UUID(request.match_info["event_id"]))
        name = request.match_info["name"]
        if not _NAME.match(name):
            raise InvalidInputError(f"media name must match {MEDIA_NAME_PATTERN}")
        sha = request.headers.get(SHA256_HEADER, "").lower()
        if not _SHA.match(sha):
            raise InvalidInputError(f"header {SHA256_HEADER} must hold the file's hex SHA-256")
    except (ValueError, InvalidInputError) as e:
        raise web.HTTPBadRequest(text=str(e)) from e
    return event_id, name, sha


async def _site_of(request: web.Request) -> str:
    """The site whose credential the request carries; 401 otherwise."""
    challenge = {"WWW-Authenticate": 'Basic realm="fsv-media"'}
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise web.HTTPUnauthorized(headers=challenge, text="site credentials required")
    try:
        username, sep, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise web.HTTPUnauthorized(headers=challenge, text="malformed credentials") from e
    # Throttled like user logins: per (site, client) and per client, never per site alone.
    throttle = request.app[SITE_THROTTLE]
    client = client_ip(request)
    wait = await asyncio.to_thread(throttle.begin, username, client, throttle.now())
    if wait > 0:
        raise web.HTTPTooManyRequests(
            headers={"Retry-After": str(int(wait) + 1)},
            text=f"too many failed site logins from {client}; retry in {int(wait) + 1} s",
        )
    passwords = request.app[SITE_PASSWORDS]
    if not sep or not await asyncio.to_thread(passwords.verify, username, password):
        raise web.HTTPUnauthorized(headers=challenge, text="wrong site credentials")
    await asyncio.to_thread(throttle.succeeded, username, client)
    return username
