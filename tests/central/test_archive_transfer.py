"""The city archive end to end over real HTTP: an edge's archive sender sends what the site
policy asks for (main, or the sub stream's lane), resumes a cut transfer, is idempotent per
segment, is refused (and a finding raised) when bytes differ from the anchored chain; the
timeline says where footage comes from and which stream; replay and exports work from the
archive alone with the edge away; retention removes what is past its days."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientWebSocketResponse, WSMsgType
from central_support import Central, call, make_config
from integrity_support import SITE, record_segments
from video_support import add_camera

from central.api.common import SERVICES
from central.app import create_app
from central.archive.transfer import Archive
from central.config import BrokerAdminConfig
from central.ingest.accounts import set_password
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.integrity.anchors import link_hash
from central.keys import ARCHIVE, DATABASE, INGEST_STORE
from central.regulation.seed import seed_demo
from edge_agent.credentials import Credential
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.uplink.archive import ArchiveSender, Wanted
from edge_agent.uplink.scheduler import UplinkScheduler
from edge_agent.uplink.settings import ArchiveSenderConfig
from fsv_contract import encode, topics
from fsv_contract.integrity import AnchorLink, AnchorPayload, CameraAnchor
from fsv_contract.video import ClipManifest, FrameKind, unpack_frame
from testbed.footage import Footage

pytestmark = pytest.mark.asyncio
PASSWORD = "pw-site"


@dataclass
class EdgeBox:
    """An edge's recordings (real segment files, a real index) and its archive sender."""

    central: Central
    storage: Path
    index: SegmentIndex
    footage: Footage

    def record(
        self, count: int, start: float | None = None, camera: str = "cam1", clip: Path | None = None
    ) -> list[Segment]:
        """`count` sealed 2-second segments of a lane from `start` (default: an hour ago);
        anchored separately."""
        clip = clip or self.footage.short_h264
        start = time.time() - 3600 if start is None else start
        return record_segments(self.index, self.storage, clip, start, count, camera)

    def anchor(self, segments: list[Segment]) -> None:
        """Put the edge's chain links at central, as the anchor sender would have."""
        with self.central.client.app[DATABASE].transaction() as db:
            for s in segments:
                db.execute(
                    'insert into anchored_segments (site, camera, path, start, "end", bytes, '
                    "sha256, prev_chain, chain, retention_days, anchored_at) values "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, 90, ?)",
                    [SITE, s.camera, s.path, s.start, s.end, s.bytes, s.sha256, s.prev_chain,
                     s.chain, time.time()],
                )  # fmt: skip

    async def recorded(
        self, count: int, start: float | None = None, camera: str = "cam1", clip: Path | None = None
    ) -> list[Segment]:
        """Record and anchor `count` segments."""
        segments = await asyncio.to_thread(self.record, count, start, camera, clip)
        self.anchor(segments)
        return segments

    def sender(self) -> ArchiveSender:
        url = str(self.central.client.make_url("")).rstrip("/")
        return ArchiveSender(
            ArchiveSenderConfig(batch=50, pause_give_up_s=1.0, timeout_s=20),
            url,
            Credential(SITE, PASSWORD),
            self.storage,
            self.index,
            UplinkScheduler(2_000_000),
        )

    async def send_all(self) -> None:
        """One round of the sender: what the policy asks, sent."""
        await asyncio.to_thread(self.sender().run_round)

    @property
    def archive(self) -> Archive:
        return self.central.client.app[ARCHIVE]


async def set_policy(central: Central, policy: dict[str, Any]) -> None:
    status, body = await call(central, "admin", "PUT", f"/api/v1/archive/policies/{SITE}",
                              json=policy)  # fmt: skip
    assert status == 200, body


@pytest_asyncio.fixture
async def central(aiohttp_client: Any, tmp_path: Path, central_db_url: str | None) -> Central:
    """Central with the archive on (no free-space floor), the site's login and camera cam1."""
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, SITE, PASSWORD)
    config = make_config(
        tmp_path,
        database=central_db_url,
        broker={"password_file": str(broker.password_file), "acl_file": str(broker.acl_file)},
        archive={"min_free_bytes": 0, "min_free_percent": 0},
    )
    client = await aiohttp_client(create_app(config))
    central = Central(client, await asyncio.to_thread(seed_demo, client.app[SERVICES]))
    add_camera(central, SITE, "cam1")
    return central


@pytest.fixture
def edge(central: Central, tmp_path: Path, footage: Footage) -> Iterator[EdgeBox]:
    """The site's box: storage and index under tmp_path (the agent itself is not running)."""
    index = SegmentIndex(tmp_path / "index.db")
    yield EdgeBox(central, tmp_path / "edge", index, footage)
    index.close()


async def replay_messages(
    central: Central, start: float, params: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[tuple[FrameKind, bytes]]]:
    """An inspector's replay of cam1 from `start` at 16x, to its end."""
    ws = await central.client.ws_connect(
        f"/api/v1/video/replay/{SITE}/cam1",
        params={"start": str(start), "speed": "16", **(params or {})},
        headers=await central.token("inspector-a"),
    )
    return await read_to_end(ws)


async def read_to_end(
    ws: ClientWebSocketResponse,
) -> tuple[list[dict[str, Any]], list[tuple[FrameKind, bytes]]]:
    """A replay socket's control messages and media frames up to its `end`; then closed."""
    texts: list[dict[str, Any]] = []
    frames: list[tuple[FrameKind, bytes]] = []
    async with asyncio.timeout(30):
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                texts.append(json.loads(msg.data))
                if texts[-1]["type"] == "end":
                    break
            elif msg.type == WSMsgType.BINARY:
                header, payload = unpack_frame(msg.data)
                frames.append((header.kind, bytes(payload)))
    await ws.close()
    return texts, frames


async def test_archive_takes_what_the_policy_asks_verified_and_resumable(
    central: Central, edge: EdgeBox
) -> None:
    segments = await edge.recorded(4)
    sender = edge.sender()
    archive = edge.archive

    # Policy `evidence` (the default): nothing is asked for.
    assert await asyncio.to_thread(sender.wants) == []
    await set_policy(central, {"policy": "main", "stations": ["kitchen_prep"]})
    wanted = await asyncio.to_thread(sender.wants)
    assert [w.path for w in wanted] == [s.path for s in segments]  # oldest first

    # A transfer cut after half of the first segment resumes from the byte central holds.
    first = segments[0]
    half = first.bytes // 2
    data = (edge.storage / first.path).read_bytes()
    resp = await central.client.put(
        f"/api/v1/archive/segments/cam1/{first.path}",
        data=data[:half],
        headers={**_basic(), "X-Content-SHA256": first.sha256, "X-Offset": "0"},
    )
    assert resp.status == 202 and resp.headers["X-Have-Bytes"] == str(half)
    wanted = await asyncio.to_thread(sender.wants)
    assert wanted[0].have_bytes == half
    more = await asyncio.to_thread(sender.run_round)
    assert not more and sender.sent_segments == 4
    for s in segments:
        stored = archive.file(SITE, s.path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == s.sha256
    assert await asyncio.to_thread(sender.wants) == []

    # Idempotent per segment: sending one again changes nothing.
    assert await asyncio.to_thread(sender.send, Wanted("cam1", first.path, first.bytes,
                                                       first.sha256, 0))  # fmt: skip

    # The timeline takes the archive; a regulator downloads the archived file.
    t0 = first.start
    timeline = f"/api/v1/archive/timeline/{SITE}/cam1"
    status, body = await call(central, "inspector-a", "GET", timeline,
                              params={"start": str(t0 - 10), "end": str(t0 + 20)})  # fmt: skip
    assert status == 200, body
    sources = [p["source"] for p in body["parts"]]
    assert "archive" in sources and sources[0] == "none"
    status, got = await call(central, "inspector-a", "GET",
                             f"/api/v1/archive/files/{SITE}/cam1/{first.path}")  # fmt: skip
    assert status == 200 and got == data

    # Retention: past the archive's days the footage goes.
    report = await asyncio.to_thread(archive.cleaner.run_once, time.time() + 91 * 86400)
    assert report.expired == 4 and not archive.file(SITE, first.path).exists()


async def test_bytes_that_differ_from_the_anchored_chain_are_refused_and_flagged(
    central: Central, edge: EdgeBox
) -> None:
    segments = await edge.recorded(2, time.time() - 600)
    await set_policy(central, {"policy": "main"})
    tampered = segments[1]
    path = edge.storage / tampered.path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # rewritten on the box after it was anchored
    path.write_bytes(bytes(raw))
    sender = edge.sender()
    with pytest.raises(OSError, match="422"):
        await asyncio.to_thread(sender.run_round)
    archive = edge.archive
    assert archive.store.stored(SITE, "cam1", segments[0].path) is not None
    assert archive.store.stored(SITE, "cam1", tampered.path) is None
    refused = archive.store.refusals(SITE)
    assert refused and refused[0]["path"] == tampered.path
    # Not asked for again, and a footage_tampered alert is open for the camera.
    assert await asyncio.to_thread(sender.wants) == []
    with central.client.app[DATABASE].read() as db:
        found = db.execute(
            "select source, problem from integrity_findings where path = ?", [tampered.path]
        ).fetchall()
    assert found and found[0][0] == "archive" and "anchored" in found[0][1]
    for _ in range(100):  # the alert feed opens the alert from the finding's event
        status, alerts = await call(central, "admin", "GET", "/api/v1/alerts",
                                    params={"kind": "footage_tampered"})  # fmt: skip
        if alerts["items"]:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and alerts["items"], alerts
    # A claimed hash other than the anchored one is refused before any byte is taken.
    resp = await central.client.put(
        f"/api/v1/archive/segments/cam1/{segments[0].path}",
        data=b"x",
        headers={**_basic(), "X-Content-SHA256": "0" * 64, "X-Offset": "0"},
    )
    assert resp.status == 422


def _basic() -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{SITE}:{PASSWORD}".encode()).decode()}


async def test_a_viewer_pauses_the_archive_and_it_resumes_from_centrals_bytes(
    central: Central, edge: EdgeBox
) -> None:
    segments = await edge.recorded(2, time.time() - 600)
    await set_policy(central, {"policy": "main"})
    sender = edge.sender()
    rate = max(20_000, segments[0].bytes // 4)  # about four seconds a segment
    sender.scheduler = UplinkScheduler(rate, burst_s=0.1)
    archive = edge.archive
    first = segments[0]
    running = asyncio.create_task(asyncio.to_thread(sender.run_round))
    for _ in range(200):
        if archive.have_bytes(SITE, first.path) > 0:
            break
        await asyncio.sleep(0.05)
    with sender.scheduler.watching():
        await asyncio.sleep(0.5)  # a block in flight may still land
        held = archive.have_bytes(SITE, first.path)
        await asyncio.sleep(1.5)
        assert archive.have_bytes(SITE, first.path) == held  # paused while watched
        assert 0 < held < first.bytes
    await asyncio.wait_for(running, 60)
    for _ in range(3):  # the cut segment comes back from central's byte count
        if not await asyncio.to_thread(sender.wants):
            break
        await asyncio.to_thread(sender.run_round)
    for s in segments:
        stored = archive.store.stored(SITE, "cam1", s.path)
        assert stored is not None and stored.sha256 == s.sha256


async def test_replay_and_export_come_from_the_archive_with_the_edge_offline(
    central: Central, edge: EdgeBox
) -> None:
    from central.archive.replay import split_fmp4

    segments = await edge.recorded(2)
    await set_policy(central, {"policy": "main"})
    await edge.send_all()
    # The edge is gone (no agent online): replay still plays, from the archive.
    texts, frames = await replay_messages(central, segments[0].start + 0.5)
    kinds = [t["type"] for t in texts]
    assert kinds[0] == "source" and texts[0]["source"] == "archive"
    assert texts[0]["stream"] == "main"
    assert kinds.count("hello") == 2 and kinds[-1] == "end" and "done" in texts[-1]["reason"]
    hello = texts[1]
    assert hello["mime"].startswith('video/mp4; codecs="avc1.') and hello["width"] > 0
    assert hello["origin_wall"] == pytest.approx(segments[0].start)
    # What was sent is the archived file itself (init + fragments), byte for byte.
    first = split_fmp4((edge.storage / segments[0].path).read_bytes())
    assert frames[0] == (FrameKind.INIT, first.init)
    assert frames[1] == (FrameKind.FRAGMENT, first.fragments[0].data)

    # An export with the edge away is cut here from the archive, across both segments.
    t0 = segments[0].start
    job = await _export(central, t0 + 1.0, t0 + 3.5)
    assert (job["status"], job["source"], job["stream"]) == ("done", "archive", "main")
    manifest = await _checked_clip(central, job, segments, 0)
    assert manifest.camera == "cam1" and manifest.clip_start <= t0 + 1.0
    assert [m.used for m in manifest.segments] == [True, True]
    # Nothing archived in that range: the edge is asked as before (none answers here).
    job = await _export(central, t0 - 600, t0 - 590)
    assert job["source"] == "edge" and job["status"] == "requested"


async def test_replay_goes_on_from_the_edge_where_the_archive_ends(
    central: Central, edge: EdgeBox
) -> None:
    from video_support import wait_command

    segments = await asyncio.to_thread(edge.record, 3)
    edge.anchor(segments[:2])
    await set_policy(central, {"policy": "main"})
    await edge.send_all()
    edge.anchor(segments[2:])  # newer footage the edge holds and the archive not yet
    with central.client.app[DATABASE].transaction() as db:
        db.execute("insert into agent_status (site, state) values (?, 'online')", [SITE])
    ws = await central.client.ws_connect(
        f"/api/v1/video/replay/{SITE}/cam1",
        params={"start": str(segments[0].start + 0.5), "speed": "16"},
        headers=await central.token("inspector-a"),
    )
    sources: list[str] = []
    async with asyncio.timeout(30):
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and json.loads(msg.data)["type"] == "source":
                sources.append(json.loads(msg.data)["source"])
                if sources[-1] == "edge":
                    break
    assert sources == ["archive", "edge"]
    # Central asks the edge for its replay from where the archive's footage ended.
    command = await wait_command(central, "stream_start")
    assert command["args"]["mode"] == "replay"
    asked = command["args"]["start"]
    asked_s = asked if isinstance(asked, int | float) else datetime.fromisoformat(asked).timestamp()
    assert asked_s == pytest.approx(segments[1].end, abs=0.01)
    assert not ws.closed
    await ws.close()


async def test_policy_sub_takes_the_sub_lane_which_replays_and_exports_as_such(
    central: Central, edge: EdgeBox
) -> None:
    main = await edge.recorded(2)
    sub = await edge.recorded(2, camera="cam1--sub", clip=edge.footage.sub_h264)
    assert sub[0].prev_chain == "0" * 64  # the lane's own chain
    await set_policy(central, {"policy": "sub"})
    sender = edge.sender()
    told: list[str] = []
    sender.on_policy = told.append  # the agent keeps it and starts or stops its sub lanes
    assert [w.path for w in await asyncio.to_thread(sender.wants)] == [s.path for s in sub]
    assert told == ["sub"]
    await asyncio.to_thread(sender.run_round)
    archive = edge.archive
    assert all(archive.store.stored(SITE, "cam1--sub", s.path) for s in sub)
    assert archive.store.stored(SITE, "cam1", main[0].path) is None  # main is not asked for
    assert await asyncio.to_thread(sender.wants) == []
    # Bytes other than the lane's anchored ones are refused like main's.
    resp = await central.client.put(
        f"/api/v1/archive/segments/cam1--sub/{sub[0].path}",
        data=b"x",
        headers={**_basic(), "X-Content-SHA256": main[0].sha256, "X-Offset": "0"},
    )
    assert resp.status == 422

    # The edge is away: the timeline, the file and the replay say it is the sub stream.
    t0 = sub[0].start
    status, body = await call(central, "inspector-a", "GET",
                              f"/api/v1/archive/timeline/{SITE}/cam1",
                              params={"start": str(t0), "end": str(t0 + 4)})  # fmt: skip
    assert status == 200 and [(p["source"], p["stream"]) for p in body["parts"]] == [
        ("archive", "sub")
    ]
    resp = await central.client.get(f"/api/v1/archive/files/{SITE}/cam1/{sub[0].path}",
                                    headers=await central.token("inspector-a"))  # fmt: skip
    assert resp.status == 200 and resp.headers["X-Stream"] == "sub"
    texts, frames = await replay_messages(central, t0 + 0.5)
    assert texts[0] == {"type": "source", "source": "archive", "stream": "sub"}
    hello = texts[1]
    assert (hello["stream"], hello["width"], hello["height"]) == ("sub", 640, 360)
    assert frames and frames[0][0] is FrameKind.INIT

    # An export with the edge away is cut from the archived sub lane and says so.
    job = await _export(central, t0 + 0.5, t0 + 3.5)
    assert (job["status"], job["source"], job["stream"]) == ("done", "archive", "sub")
    manifest = await _checked_clip(central, job, sub, 640)
    assert manifest.camera == "cam1--sub"


async def _export(central: Central, start: float, end: float) -> dict[str, Any]:
    status, job = await call(central, "inspector-a", "POST", "/api/v1/video/exports",
                             json={"site_id": SITE, "camera_id": "cam1", "start": start,
                                   "end": end})  # fmt: skip
    assert status == 201, job
    return job


async def _checked_clip(
    central: Central, job: dict[str, Any], segments: list[Segment], width: int
) -> ClipManifest:
    """Download the clip and its manifest: signed, chain whole, digest right, a real video."""
    import av

    from central.keys import VIDEO
    from central.video.signing import signature_ok
    from fsv_contract.video import chain_problems

    base = "/api/v1/video/exports/file"
    status, clip = await call(central, "inspector-a", "GET", base, params={"id": job["id"]})
    assert status == 200 and isinstance(clip, bytes)
    status, raw = await call(central, "inspector-a", "GET", base,
                             params={"id": job["id"], "part": "manifest"})  # fmt: skip
    assert status == 200
    manifest = ClipManifest.model_validate(raw if isinstance(raw, dict) else json.loads(raw))
    signer = central.client.app[VIDEO].signer
    assert signature_ok(manifest, signer.public_key) and chain_problems(manifest) == []
    assert manifest.file.sha256 == hashlib.sha256(clip).hexdigest()
    used = [m.path for m in manifest.segments if m.used]
    assert used and set(used) <= {s.path for s in segments}
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 10 and (width == 0 or stream.codec_context.width == width)
    return manifest


async def test_previews_and_the_timeline_come_from_the_archive_with_the_edge_away(
    central: Central, edge: EdgeBox, tmp_path: Path
) -> None:
    import cv2
    import numpy as np

    from central.keys import VIDEO
    from central.video.thumbnails import STEP_S, ThumbnailCache

    # Two moments in one preview bucket (10 s) below: the recording starts just after a
    # bucket's start, so t0 + 1.0 and t0 + 1.5 never fall on two sides of a boundary.
    start = (time.time() - 3600) // STEP_S * STEP_S + 0.25
    segments = await edge.recorded(2, start)
    t0 = segments[0].start
    await set_policy(central, {"policy": "main"})
    await edge.send_all()
    video = central.client.app[VIDEO]
    video.recordings.timeout_s = 0.3  # no agent answers here
    auth = await central.token("inspector-a")

    async def preview(at: float) -> tuple[int, str, bytes]:
        resp = await central.client.get(
            f"/api/v1/video/thumbnail/{SITE}/cam1", params={"at": str(at)}, headers=auth
        )
        made, cached = (
            resp.headers.get(h, "") for h in ("X-Thumbnail-Source", "X-Thumbnail-Cache")
        )
        source = f"{made} {cached}"
        return resp.status, source, await resp.read()

    status, source, jpeg = await preview(t0 + 1.0)
    assert (status, source) == (200, "archive miss")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (108, 192, 3) and image.std() > 10  # a real picture, 16:9
    assert (await preview(t0 + 1.5))[1] == "archive hit"  # the same bucket: no decode again
    status, _, body = await preview(t0 - 600)
    assert status == 404 and b"edge is offline" in body
    # The timeline: the edge does not answer, the archived stretch still shows and plays.
    resp = await central.client.get(
        f"/api/v1/video/recordings/{SITE}/cam1",
        params={"start": str(t0 - 60), "end": str(t0 + 60)},
        headers=auth,
    )
    answer = await resp.json()
    assert resp.status == 200 and answer["edge"] == "unavailable"
    assert [(s["source"], round(s["start"], 2)) for s in answer["sources"]] == [
        ("archive", round(segments[0].start, 2))
    ]
    assert answer["ranges"][0]["end"] == pytest.approx(segments[-1].end)
    # The cache is bounded: past its bytes the least recently used preview goes.
    small = ThumbnailCache(
        tmp_path / "small", video.thumbnails._send, step_s=1.0, max_bytes=len(jpeg) + 100
    )
    archive = edge.archive
    first, _, _ = await small.get(archive, SITE, "cam1", t0 + 1.0, False)
    await small.get(archive, SITE, "cam1", t0 + 1.0 + small.step_s, False)
    assert not small.path(small.key(SITE, "cam1", t0 + 1.0, "archive")).exists()
    assert small.held_bytes <= small.max_bytes


async def test_a_sub_stream_replay_the_archive_lacks_comes_from_the_edges_sub_lane(
    central: Central, edge: EdgeBox
) -> None:
    """The viewer asks for the sub stream, the archive holds none of it: central asks the
    edge for its sub lane (once the edge's chain shows it recorded one), and the real edge
    uplink replays the lane's files, not the main stream's."""
    from video_support import wait_command

    from edge_agent.config import EdgeConfig
    from edge_agent.uplink.service import UplinkService
    from edge_agent.uplink.tap import TapRegistry
    from tests.edge_agent.uplink.conftest import decoded_counters

    main = await edge.recorded(2, clip=edge.footage.main_h264)
    with central.client.app[DATABASE].transaction() as db:
        db.execute("insert into agent_status (site, state) values (?, 'online')", [SITE])
    params = {"start": str(main[0].start + 0.5), "speed": "16", "stream": "sub"}
    headers = await central.token("inspector-a")
    # No sub lane at the edge (none in its anchored chain): the edge replays main, as before.
    ws = await central.client.ws_connect(f"/api/v1/video/replay/{SITE}/cam1", params=params,
                                         headers=headers)  # fmt: skip
    first = await wait_command(central, "stream_start")
    assert (first["args"]["mode"], first["args"]["stream"]) == ("replay", "main")
    await ws.close()

    sub = await edge.recorded(2, start=main[0].start, camera="cam1--sub",
                              clip=edge.footage.sub_h264)  # fmt: skip
    url = str(central.client.make_url("")).rstrip("/")
    config = EdgeConfig.model_validate({
        "site_id": SITE, "storage": {"path": str(edge.storage)}, "central_url": url,
        "cameras": [{"id": "cam1", "name": "后厨", "station": "kitchen_prep",
                     "main_url": "rtsp://127.0.0.1:9/main", "sub_url": "rtsp://127.0.0.1:9/sub",
                     "record_sub": True}],
    })  # fmt: skip
    service = UplinkService(config, edge.index, TapRegistry())
    service.start()
    try:
        ws = await central.client.ws_connect(f"/api/v1/video/replay/{SITE}/cam1", params=params,
                                             headers=headers)  # fmt: skip
        command = await wait_command(central, "stream_start", count=2)
        assert (command["args"]["mode"], command["args"]["stream"]) == ("replay", "sub")
        reply = await asyncio.to_thread(service.stream_start, command["args"])
        assert reply == {"accepted": True}
        texts, media = await read_to_end(ws)
    finally:
        service.stop()
    hellos = [t for t in texts if t["type"] == "hello"]
    assert hellos and all(h["stream"] == "sub" and h["mode"] == "replay" for h in hellos)
    assert (hellos[0]["width"], hellos[0]["height"]) == (640, 360)  # not main's 1920x1080
    assert hellos[0]["origin_wall"] == pytest.approx(sub[0].start, abs=0.05)
    assert texts[-1] == {"type": "end", "reason": "done: end of the recording"}
    frames = decoded_counters(b"".join(payload for _, payload in media))
    assert len(frames) >= 40  # both 2 s segments of the lane, decodable
    # The audit names the stream the edge replayed.
    status, body = await call(central, "admin", "GET", "/api/v1/audit",
                              params={"action": "replay"})  # fmt: skip
    assert status == 200, body
    # The first replay (main from the edge) names no stream, as before; this one says sub.
    assert sorted(str(e["detail"].get("stream")) for e in body["items"]) == ["None", "sub"]


async def test_a_segment_anchored_under_another_cameras_folder_cannot_replace_its_file(
    central: Central, edge: EdgeBox
) -> None:
    """The archive keeps a site's files by path, its rows by camera and path: a box that
    anchors a fabricated file for a second camera under the first camera's path must not
    get it written over the first camera's archived, verified segment."""
    [honest] = await edge.recorded(1, time.time() - 600)
    await set_policy(central, {"policy": "main"})
    await edge.send_all()
    archived = edge.archive.file(SITE, honest.path).read_bytes()
    assert hashlib.sha256(archived).hexdigest() == honest.sha256

    # The fabricated footage: another camera's real segment, announced at cam1's path.
    [fake] = await asyncio.to_thread(edge.record, 1, time.time() - 300, "cam2",
                                     edge.footage.short_h264)  # fmt: skip
    data = (edge.storage / fake.path).read_bytes()
    link = AnchorLink(path=honest.path, start=fake.start, end=fake.end, bytes=fake.bytes,
                      sha256=fake.sha256, prev_chain="0" * 64, chain="0" * 64)  # fmt: skip
    link = link.model_copy(update={"chain": link_hash("cam2", link)})
    anchor = AnchorPayload(cameras=[CameraAnchor(camera="cam2", links=[link])],
                           created_at=datetime.now(UTC))  # fmt: skip
    ingest = Ingest(central.client.app[INGEST_STORE])
    await asyncio.to_thread(
        ingest.process, [RawMessage(topics.anchor(SITE), encode(anchor), time.time())]
    )
    with central.client.app[DATABASE].read() as db:
        rows = db.execute(
            "select camera from anchored_segments where site = ? and path = ?", [SITE, honest.path]
        ).fetchall()
        found = db.execute(
            "select camera, problem from integrity_findings where path = ?", [honest.path]
        ).fetchall()
    assert [r[0] for r in rows] == ["cam1"]  # not anchored for cam2
    assert [(c, "not under the camera's folder" in p) for c, p in found] == [("cam2", True)]

    # A row anchored so before this check existed is refused at the archive's door too.
    edge.anchor([replace(fake, path=honest.path)])
    resp = await central.client.put(
        f"/api/v1/archive/segments/cam2/{honest.path}",
        data=data,
        headers={**_basic(), "X-Content-SHA256": fake.sha256, "X-Offset": "0"},
    )
    assert resp.status == 400, await resp.text()
    assert "not under the camera's folder" in await resp.text()
    assert edge.archive.file(SITE, honest.path).read_bytes() == archived
    status, got = await call(central, "inspector-a", "GET",
                             f"/api/v1/archive/files/{SITE}/cam1/{honest.path}")  # fmt: skip
    assert status == 200 and got == archived
