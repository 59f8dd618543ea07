"""The media uploader against the real central app: retried until the event is there, once."""

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pytest_aiohttp.plugin import AiohttpServer

from central.app import create_app
from central.config import BrokerAdminConfig, CentralConfig
from central.ingest.accounts import set_password
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.keys import INGEST_STORE
from edge_agent.credentials import Credential
from edge_agent.mqtt.outbox import Outbox
from edge_agent.mqtt.settings import UploadConfig
from edge_agent.mqtt.uploader import MediaUploader, backoff_delay
from fsv_contract import EventPayload, MediaRef, encode, topics
from testbed.ports import free_port


@pytest.fixture
def central_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CentralConfig]:
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, "s1", "pw-s1")
    monkeypatch.setenv("CENTRAL_MQTT_PASSWORD", "unused")
    yield CentralConfig(data_dir=tmp_path / "central", mqtt={"port": free_port()}, broker=broker)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 5, 60) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]


@pytest.mark.asyncio
async def test_clip_is_uploaded_once_its_event_arrived(
    aiohttp_server: AiohttpServer, central_config: CentralConfig, tmp_path: Path
) -> None:
    app = create_app(central_config)
    server = await aiohttp_server(app)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" * 1000)
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(b"jpeg")
    box = Outbox(tmp_path / "outbox.db", "s1")
    eid = str(uuid4())
    box.queue_media(eid, "clip.mp4", clip, sha, "video/mp4")
    box.queue_media(eid, "snapshot.jpg", gone, hashlib.sha256(b"jpeg").hexdigest(), "image/jpeg")
    gone.unlink()
    settings = UploadConfig(backoff_initial_s=0.01)
    uploader = MediaUploader(
        box.media, str(server.make_url("/")), Credential("s1", "pw-s1"), settings
    )

    clip_job, snap_job = box.media.due()
    assert not await asyncio.to_thread(uploader.upload_one, clip_job)  # central: no event yet
    assert not await asyncio.to_thread(uploader.upload_one, snap_job)
    assert box.media.failed()[0][1] == "snapshot.jpg"

    ref = MediaRef(name="clip.mp4", sha256=sha, bytes=clip.stat().st_size, content_type="video/mp4")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    event = EventPayload(
        event_id=eid, site="s1", camera="cam-1", phase="end", kind="no_mask", station="k",
        rule="r", start=start, end=start, score=0.5, clip=ref,
    )  # fmt: skip
    raw = RawMessage(topics.camera_event("s1", "cam-1"), encode(event), 0.0)
    await asyncio.to_thread(Ingest(app[INGEST_STORE]).process, [raw])
    await asyncio.sleep(0.05)
    (retry,) = box.media.due()
    assert retry.attempts == 1
    assert await asyncio.to_thread(uploader.upload_one, retry)
    assert box.media.pending_count() == 0
    stored = central_config.media_dir / "s1" / eid / "clip.mp4"
    assert stored.read_bytes() == clip.read_bytes()
    box.close()
