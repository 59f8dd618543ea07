"""Media is data: the type allow-list at ingest and upload, and the headers of every response."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
from central_support import Central, call, jpeg_bytes, make_config
from pytest_aiohttp.plugin import AiohttpClient

from central.api.common import SERVICES
from central.app import create_app
from central.config import BrokerAdminConfig
from central.ingest.accounts import set_password
from central.ingest.broker_client import RawMessage
from central.ingest.media_types import safe_filename, sniff
from central.ingest.pipeline import Ingest
from central.keys import INGEST_STORE
from central.regulation.seed import seed_demo
from fsv_contract import EventPayload, MediaRef, encode, topics

SITE = "demo-canteen-a"
PAGE = b"<!doctype html><script>fetch('/api/v1/auth/me')</script>"


@pytest_asyncio.fixture
async def world(
    aiohttp_client: AiohttpClient, tmp_path: Path, central_db_url: str | None
) -> AsyncIterator[Central]:
    """The real app with the demo tree and the broker password file of site demo-canteen-a."""
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, SITE, "pw-site")
    config = make_config(
        tmp_path,
        database=central_db_url,
        broker={"password_file": str(broker.password_file), "acl_file": str(broker.acl_file)},
    )
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    yield Central(client, seed)


def _event(name: str, content_type: str, body: bytes) -> tuple[EventPayload, RawMessage]:
    ref = MediaRef(
        name=name, sha256=hashlib.sha256(body).hexdigest(), bytes=len(body),
        content_type=content_type,
    )  # fmt: skip
    payload = EventPayload.model_validate(
        {"event_id": str(uuid4()), "site": SITE, "camera": "cam1", "phase": "start",
         "kind": "no_chef_hat", "station": "kitchen_prep", "rule": "hat",
         "start": "2026-12-01T08:00:00Z", "score": 0.9, "snapshot": ref.model_dump()}
    )  # fmt: skip
    return payload, RawMessage(topics.camera_event(SITE, "cam1"), encode(payload), 0.0)


async def _ingest(central: Central, name: str, content_type: str, body: bytes) -> tuple[str, int]:
    """Ingest the event (alert opened as ingest's hooks do); (event id, rejected count)."""
    payload, raw = _event(name, content_type, body)
    result = await asyncio.to_thread(Ingest(central.client.app[INGEST_STORE]).process, [raw])
    if not result.rejected:
        await asyncio.to_thread(central.svc.hooks.on_event, payload)
    return str(payload.event_id), result.rejected


async def _put(central: Central, event_id: str, name: str, body: bytes) -> Any:
    login = base64.b64encode(f"{SITE}:pw-site".encode()).decode()
    return await central.client.put(
        f"/api/v1/media/{event_id}/{name}",
        data=body,
        headers={
            "Authorization": f"Basic {login}",
            "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
        },
    )


def test_sniffing_knows_the_allowed_types_only() -> None:
    assert sniff(jpeg_bytes()[:12]) == "image/jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d") == "image/png"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBP") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    for other in (PAGE[:12], b"GIF89a\x01\x00\x01\x00\x00\x00", b"<svg xmlns=", b""):
        assert sniff(other) is None
    assert safe_filename('a"b\r\nc.html', "image/jpeg") == "a_b__c.jpg"
    assert safe_filename("../../x", "") == "x.bin"


@pytest.mark.asyncio
@pytest.mark.parametrize("ctype", ["text/html", "image/svg+xml", "application/xhtml+xml"])
async def test_an_event_announcing_a_type_off_the_list_is_refused_and_counted(
    world: Central, ctype: str
) -> None:
    event_id, rejected = await _ingest(world, "snapshot.x", ctype, PAGE)
    assert rejected == 1
    store = world.client.app[INGEST_STORE]
    reasons = [r["reason"] for r in await asyncio.to_thread(store.rejects)]
    assert any(ctype in r and "not an accepted media type" in r for r in reasons)
    assert (await _put(world, event_id, "snapshot.x", PAGE)).status == 404
    status, _ = await call(world, "admin", "GET", f"/api/v1/alerts/{event_id}")
    assert status == 404


@pytest.mark.asyncio
async def test_bytes_that_are_not_the_announced_type_are_refused_and_counted(
    world: Central, tmp_path: Path
) -> None:
    event_id, _ = await _ingest(world, "snapshot.jpg", "image/jpeg", PAGE)
    resp = await _put(world, event_id, "snapshot.jpg", PAGE)
    assert resp.status == 415 and "not image/jpeg" in (await resp.json())["error"]["message"]
    short_id, _ = await _ingest(world, "snapshot.jpg", "image/jpeg", b"<p>")  # under 12 bytes
    assert (await _put(world, short_id, "snapshot.jpg", b"<p>")).status == 415
    status, stats = await call(world, "admin", "GET", "/api/v1/ingest/stats")
    assert stats["media_refused"] == 2 and stats["media_refused:content"] == 2
    media = tmp_path / "data" / "media" / SITE
    assert [p for p in media.rglob("*") if p.is_file()] == []  # nothing left on disk


@pytest.mark.asyncio
async def test_served_media_carries_its_checked_type_and_a_sandbox(world: Central) -> None:
    photo = jpeg_bytes(7)
    event_id, _ = await _ingest(world, "snapshot.jpg", "image/jpeg", photo)
    assert (await _put(world, event_id, "snapshot.jpg", photo)).status == 201
    resp = await world.client.get(
        f"/api/v1/alerts/{event_id}/media/snapshot.jpg", headers=await world.token("inspector-a")
    )
    assert resp.status == 200 and await resp.read() == photo
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Disposition"] == 'inline; filename="snapshot.jpg"'
    assert resp.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")


@pytest.mark.asyncio
async def test_an_old_row_of_another_type_is_served_as_an_attachment(
    world: Central, tmp_path: Path
) -> None:
    photo = jpeg_bytes(8)
    event_id, _ = await _ingest(world, "snapshot.jpg", "image/jpeg", photo)
    assert (await _put(world, event_id, "snapshot.jpg", photo)).status == 201
    old = tmp_path / "old.html"
    old.write_bytes(PAGE)

    def plant() -> None:
        with world.svc.ldb.transaction() as db:
            db.table("media").insert(
                {"event_id": event_id, "name": "old.html", "site": SITE, "sha256": "0" * 64,
                 "bytes": len(PAGE), "content_type": "text/html", "path": str(old),
                 "stored_at": time.time()}
            )  # fmt: skip

    await asyncio.to_thread(plant)
    resp = await world.client.get(
        f"/api/v1/alerts/{event_id}/media/old.html", headers=await world.token("inspector-a")
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="old.bin"'
    assert "sandbox" in resp.headers["Content-Security-Policy"]


@pytest.mark.asyncio
async def test_every_response_carries_the_security_headers(world: Central) -> None:
    client = world.client
    for page in ("/login", "/inbox", "/reports", "/live", "/replay"):
        resp = await client.get(page)
        assert resp.status == 200, page
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, page
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, page
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, page
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "<script>" not in await resp.text() and " style=" not in await resp.text(), page
    for path in ("/api/v1/auth/me", "/api/openapi.json", "/api/v1/alerts/x", "/nowhere"):
        resp = await client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    script = await client.get("/static/app.js")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in script.headers
