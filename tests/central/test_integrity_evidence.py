"""Write-once evidence through the real app: swap, re-announce and cross-site end refused."""

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient
from central_support import Central, call
from pytest_aiohttp.plugin import AiohttpClient

from central.app import create_app
from central.config import BrokerAdminConfig, CentralConfig
from central.ingest.accounts import set_password
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.ingest.store import BatchResult
from central.keys import DATABASE, INGEST_STORE
from fsv_contract import EventPayload, MediaRef, encode, topics
from testbed.ports import free_port

pytestmark = pytest.mark.asyncio

S1 = b"\xff\xd8\xff\xe0first snapshot" + bytes(range(200))
S2 = b"\xff\xd8\xff\xe0other snapshot" + bytes(range(200))


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CentralConfig]:
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, "s1", "pw-s1")
    set_password(broker, "central", "pw-c")
    monkeypatch.setenv("CENTRAL_MQTT_PASSWORD", "pw-c")
    yield CentralConfig(
        data_dir=tmp_path / "central", mqtt={"port": free_port()}, broker=broker,
    )  # fmt: skip


def _ref(data: bytes, name: str = "snapshot.jpg") -> MediaRef:
    sha = hashlib.sha256(data).hexdigest()
    return MediaRef(name=name, sha256=sha, bytes=len(data), content_type="image/jpeg")


def _event(site: str, eid: str, phase: str, **fields: Any) -> RawMessage:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = {"end": start + timedelta(seconds=30)} if phase == "end" else {}
    payload = EventPayload.model_validate(
        {"event_id": eid, "site": site, "camera": "cam1", "phase": phase, "kind": "no_mask",
         "station": "kitchen_prep", "rule": "mask", "start": start, "score": 0.7, **end,
         **fields}
    )  # fmt: skip
    return RawMessage(topics.camera_event(site, "cam1"), encode(payload), 0.0)


def _put_headers(data: bytes) -> dict[str, str]:
    token = base64.b64encode(b"s1:pw-s1").decode()
    return {"Authorization": f"Basic {token}", "X-Content-SHA256": hashlib.sha256(data).hexdigest()}


@dataclass
class Server:
    """Central's app with an HTTP client of it and an ingest pipeline over its store."""

    app: web.Application
    client: TestClient[Any, Any]
    ingest: Ingest

    async def process(self, message: RawMessage) -> BatchResult:
        """One event message through ingest (in a thread, as the drain does)."""
        return await asyncio.to_thread(self.ingest.process, [message])

    async def put(self, url: str, data: bytes) -> int:
        """The status of the site's upload of `data` to `url`."""
        return (await self.client.put(url, data=data, headers=_put_headers(data))).status


@pytest_asyncio.fixture
async def server(aiohttp_client: AiohttpClient, config: CentralConfig) -> Server:
    app = create_app(config)
    client = await aiohttp_client(app)
    return Server(app, client, Ingest(app[INGEST_STORE]))


def _refused_audit(app: Any) -> list[str]:
    db = app[DATABASE]
    with db.lock:
        rows = db.db.execute(
            "select target from audit_log where action = 'evidence_refused' order by id"
        ).fetchall()
    return [r[0] for r in rows]


async def test_evidence_is_write_once_and_events_belong_to_their_site(
    server: Server, config: CentralConfig
) -> None:
    app = server.app
    eid = str(uuid4())
    url = f"/api/v1/media/{eid}/snapshot.jpg"

    # The start announces S1; the end re-announces the same name with S2's hash.
    await server.process(_event("s1", eid, "start", snapshot=_ref(S1)))
    result = await server.process(
        _event("s1", eid, "end", snapshot=_ref(S2), clip=_ref(S2, "clip.mp4"))
    )
    assert len(result.refused) == 1 and result.ended_events  # the end itself still applies
    row = app[INGEST_STORE].event(eid)
    assert row is not None and row["phase"] == "end"
    assert hashlib.sha256(S1).hexdigest() in row["snapshot"]  # the first announcement stands
    assert "clip.mp4" in row["clip"]  # a slot not filled yet may be filled by the end

    # The swapped bytes are refused; the announced ones are stored once, then idempotent.
    assert await server.put(url, S2) == 409
    assert await server.put(url, S1) == 201
    assert await server.put(url, S1) == 200
    assert (config.media_dir / "s1" / eid / "snapshot.jpg").read_bytes() == S1

    # Re-announcing after the end, and another site ending the event, change nothing.
    again = await server.process(_event("s1", eid, "end", snapshot=_ref(S2)))
    assert len(again.refused) == 1 and again.duplicates == 1
    foreign = str(uuid4())
    await server.process(_event("s1", foreign, "start"))
    other = await server.process(_event("s2", foreign, "end", clip=_ref(S2, "clip.mp4")))
    assert other.ended_events == [] and len(other.refused) == 1
    row = app[INGEST_STORE].event(foreign)
    assert row is not None and row["phase"] == "start" and row["clip"] is None

    stats = app[INGEST_STORE].stats()
    assert stats["evidence_refused"] == 4  # end swap, upload swap, re-announce, foreign end
    assert _refused_audit(app) == [f"event:{eid}"] * 3 + [f"event:{foreign}"]


async def test_a_first_clip_reaches_a_running_event_once(
    server: Server,
) -> None:
    app = server.app
    eid = str(uuid4())
    first, other = _ref(S1, "first.mp4"), _ref(S2, "first.mp4")
    await server.process(_event("s1", eid, "start", snapshot=_ref(S1)))
    added = await server.process(_event("s1", eid, "start", snapshot=_ref(S1), first_clip=first))
    assert added.accepted == 1 and added.refused == []
    again = await server.process(_event("s1", eid, "start", snapshot=_ref(S1), first_clip=other))
    assert len(again.refused) == 1  # the first clip is write-once too
    row = app[INGEST_STORE].event(eid)
    assert row is not None and hashlib.sha256(S1).hexdigest() in row["first_clip"]
    url = f"/api/v1/media/{eid}/first.mp4"
    assert await server.put(url, S1) == 201
    changes = app[INGEST_STORE].changes_after(0, 10)
    assert [p.first_clip is not None for _, p in changes if p] == [True]  # fed to the alert


async def test_the_alert_shows_its_first_clip_before_the_event_ends(central: Central) -> None:
    eid = await central.event("demo-canteen-a")
    alert_id = eid
    start = EventPayload.model_validate(
        {"event_id": eid, "site": "demo-canteen-a", "camera": "cam1", "phase": "start",
         "kind": "no_chef_hat", "station": "kitchen_prep", "rule": "hat",
         "start": datetime.now(UTC), "score": 0.9, "first_clip": _ref(S1, "first.mp4")}
    )  # fmt: skip
    await asyncio.to_thread(central.svc.hooks.on_event, start)
    status, alert = await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}")
    assert status == 200 and alert["first_clip"]["name"] == "first.mp4"
    assert alert["clip"] is None and alert["end"] is None


async def test_the_clean_frame_is_write_once_and_the_alert_names_its_model(
    server: Server,
) -> None:
    app = server.app
    eid = str(uuid4())
    frame, other = _ref(S2, "frame.jpg"), _ref(S1, "frame.jpg")
    start = _event("s1", eid, "start", snapshot=_ref(S1), frame=frame, model="hats@3")
    await server.process(start)
    ended = await server.process(_event("s1", eid, "end", snapshot=_ref(S1), frame=other))
    assert len(ended.refused) == 1 and "frame frame.jpg" in ended.refused[0][1][0]
    row = app[INGEST_STORE].event(eid)
    assert row is not None and row["model"] == "hats@3"
    assert hashlib.sha256(S2).hexdigest() in row["frame"]  # the first announcement stands
    url = f"/api/v1/media/{eid}/frame.jpg"
    assert await server.put(url, S1) == 409
    assert await server.put(url, S2) == 201
    [(_, fed)] = [c for c in app[INGEST_STORE].changes_after(0, 10) if c[1]]
    assert fed is not None and fed.model == "hats@3" and fed.frame == frame


async def test_the_alert_carries_its_model_and_clean_frame(central: Central) -> None:
    alert_id = await central.event(
        "demo-canteen-a", model="hats@3", frame=_ref(S2, "frame.jpg").model_dump(mode="json")
    )
    status, alert = await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}")
    assert status == 200 and alert["model"] == "hats@3"
    assert alert["frame"]["name"] == "frame.jpg"
    listed = await call(central, "inspector-a", "GET", "/api/v1/alerts?limit=5")
    assert [a["model"] for a in listed[1]["items"] if a["id"] == alert_id] == ["hats@3"]
