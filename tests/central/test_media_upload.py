"""PUT /api/v1/media/{event_id}/{name} through the real app: auth, checks, idempotence."""

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pytest_aiohttp.plugin import AiohttpClient

from central.app import create_app
from central.config import BrokerAdminConfig, CentralConfig
from central.ingest.accounts import set_password
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.keys import INGEST_STORE
from fsv_contract import EventPayload, MediaRef, encode, topics
from testbed.ports import free_port

pytestmark = pytest.mark.asyncio

CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
CLIP_SHA = hashlib.sha256(CLIP).hexdigest()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CentralConfig]:
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, "s1", "pw-s1")
    set_password(broker, "s2", "pw-s2")
    set_password(broker, "central", "pw-c")
    monkeypatch.setenv("CENTRAL_MQTT_PASSWORD", "pw-c")
    # No broker listens on this port: ingest keeps retrying in paho's thread meanwhile.
    yield CentralConfig(
        data_dir=tmp_path / "central",
        mqtt={"port": free_port()},
        broker=broker,
        media={"max_bytes": 64 * 1024},
    )


def login(user: str, password: str, sha: str | None = CLIP_SHA) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    if sha is not None:
        headers["X-Content-SHA256"] = sha
    return headers


def announce(eid: str, sha: str = CLIP_SHA, size: int = len(CLIP)) -> RawMessage:
    ref = MediaRef(name="clip.mp4", sha256=sha, bytes=size, content_type="video/mp4")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    payload = EventPayload(
        event_id=eid, site="s1", camera="cam-1", phase="end", kind="no_mask", station="k",
        rule="r", start=start, end=start, score=0.5, clip=ref,
    )  # fmt: skip
    return RawMessage(topics.camera_event("s1", "cam-1"), encode(payload), 0.0)


async def test_upload_is_checked_stored_once_and_idempotent(
    aiohttp_client: AiohttpClient, config: CentralConfig
) -> None:
    app = create_app(config)
    client = await aiohttp_client(app)
    eid = str(uuid4())
    url = f"/api/v1/media/{eid}/clip.mp4"
    s1 = login("s1", "pw-s1")

    assert (await client.put(url, data=CLIP, headers={"X-Content-SHA256": CLIP_SHA})).status == 401
    assert (await client.put(url, data=CLIP, headers=login("s1", "x"))).status == 401
    assert (await client.put(url, data=CLIP, headers=login("central", "pw-c"))).status == 401
    assert (await client.put(url, data=CLIP, headers=s1)).status == 404  # no event yet

    await asyncio.to_thread(Ingest(app[INGEST_STORE]).process, [announce(eid)])
    assert (await client.put(url, data=CLIP, headers=login("s2", "pw-s2"))).status == 404
    other = f"/api/v1/media/{eid}/snapshot.jpg"
    assert (await client.put(other, data=CLIP, headers=s1)).status == 409
    wrong_sha = login("s1", "pw-s1", "0" * 64)
    assert (await client.put(url, data=CLIP, headers=wrong_sha)).status == 409
    assert (await client.put(url, data=CLIP[:-1] + b"!", headers=s1)).status == 422
    assert (await client.put(url, data=CLIP, headers=login("s1", "pw-s1", None))).status == 400
    bad_name = f"/api/v1/media/{eid}/..hidden"
    assert (await client.put(bad_name, data=CLIP, headers=s1)).status == 400

    assert (await client.put(url, data=CLIP, headers=s1)).status == 201
    assert (await client.put(url, data=CLIP, headers=s1)).status == 200
    stored = config.media_dir / "s1" / eid / "clip.mp4"
    assert stored.read_bytes() == CLIP
    assert [p.name for p in stored.parent.iterdir()] == ["clip.mp4"]  # no temp files left


async def test_oversized_upload_is_refused_without_storing(
    aiohttp_client: AiohttpClient, config: CentralConfig
) -> None:
    app = create_app(config)
    client = await aiohttp_client(app)
    eid = str(uuid4())
    big = CLIP[:12] + b"x" * (config.media.max_bytes + 1 - 12)  # an MP4 start, too long
    sha = hashlib.sha256(big).hexdigest()
    await asyncio.to_thread(Ingest(app[INGEST_STORE]).process, [announce(eid, sha, len(big))])

    async def chunks() -> object:
        for i in range(0, len(big), 4096):  # no Content-Length: the limit is hit while reading
            yield big[i : i + 4096]

    headers = login("s1", "pw-s1", sha)
    url = f"/api/v1/media/{eid}/clip.mp4"
    assert (await client.put(url, data=chunks(), headers=headers)).status == 413
    assert not (config.media_dir / "s1" / eid / "clip.mp4").exists()
    assert (await client.put(url, data=big, headers=headers)).status == 413


async def test_a_site_holding_uploads_open_is_refused_more_and_other_sites_are_not(
    aiohttp_client: AiohttpClient, config: CentralConfig
) -> None:
    """A box that opens many uploads and trickles them (or stalls) holds a connection, a
    temporary file and its descriptors each: past `media.uploads_per_site` at once its
    next upload gets 429 at once (counted); another site's upload goes through, and the
    held uploads still finish."""
    app = create_app(config)
    client = await aiohttp_client(app)
    limit = config.media.uploads_per_site
    eids = [str(uuid4()) for _ in range(limit + 3)]
    ingest = Ingest(app[INGEST_STORE])
    await asyncio.to_thread(ingest.process, [announce(eid) for eid in eids])
    go_on = asyncio.Event()

    async def stalled() -> object:
        yield CLIP[:100]
        await go_on.wait()
        yield CLIP[100:]

    s1 = login("s1", "pw-s1")
    held = [
        asyncio.create_task(client.put(f"/api/v1/media/{eid}/clip.mp4", data=stalled(), headers=s1))
        for eid in eids[:limit]
    ]
    parts: list[Path] = []
    for _ in range(300):  # every held upload has reached its body
        parts = list(config.media_dir.glob("s1/*/.clip.mp4.*.part"))
        if len(parts) == limit:
            break
        await asyncio.sleep(0.05)
    assert len(parts) == limit
    before = app[INGEST_STORE].stats().get("media_refused:busy", 0)

    more = client.put(f"/api/v1/media/{eids[limit]}/clip.mp4", data=CLIP, headers=s1)
    resp = await asyncio.wait_for(more, 10)
    assert resp.status == 429, await resp.text()
    assert "Retry-After" in resp.headers
    assert "at once" in await resp.text()
    assert app[INGEST_STORE].stats()["media_refused:busy"] == before + 1

    # Another site is not held up by s1's uploads.
    other = str(uuid4())
    payload = announce(other)
    raw = RawMessage(topics.camera_event("s2", "cam-1"),
                     payload.payload.replace(b'"site":"s1"', b'"site":"s2"'), 0.0)  # fmt: skip
    await asyncio.to_thread(ingest.process, [raw])
    url = f"/api/v1/media/{other}/clip.mp4"
    resp = await asyncio.wait_for(client.put(url, data=CLIP, headers=login("s2", "pw-s2")), 10)
    assert resp.status == 201

    # The held uploads finish; their slots are free again.
    go_on.set()
    assert [r.status for r in await asyncio.gather(*held)] == [201] * limit
    url = f"/api/v1/media/{eids[limit]}/clip.mp4"
    assert (await client.put(url, data=CLIP, headers=s1)).status == 201
