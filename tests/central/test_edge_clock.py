"""An edge box's clock is the supervised party's: a heartbeat or camera state dated in the
future is refused at ingest (logged, counted, listed among the rejects), so it can neither
purge other sites' heartbeat history, nor credit recording hours ahead, nor freeze what
central shows of the site until that date comes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from central_support import Central

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import CLOCK_AHEAD_S, Ingest
from central.keys import INGEST_HOOKS, INGEST_STORE
from central.regulation.org import MAX_SITE_CAMERAS
from fsv_contract import CameraStatePayload, HeartbeatPayload, encode, topics
from fsv_contract.payloads import CameraStats

pytestmark = pytest.mark.asyncio
HONEST, HOSTILE = "demo-canteen-b", "demo-canteen-a"


def _beat(site: str, ts: datetime) -> RawMessage:
    beat = HeartbeatPayload(
        ts=ts, uptime_s=1.0, disk_free_bytes=1, disk_total_bytes=2, cpu_percent=1.0,
        cameras=[CameraStats(camera="cam1", state="online", last_segment_end=ts)],
    )  # fmt: skip
    return RawMessage(topics.heartbeat(site), encode(beat), time.time())


def _state(site: str, state: str, since: datetime, camera: str = "cam1") -> RawMessage:
    payload = CameraStatePayload(camera=camera, state=state, since=since)  # type: ignore[arg-type]
    return RawMessage(topics.camera_state(site, camera), encode(payload), time.time())


async def test_a_heartbeat_from_the_future_is_refused_and_purges_nothing(
    central: Central,
) -> None:
    app = central.client.app
    store = app[INGEST_STORE]
    ingest = Ingest(store, hooks=app[INGEST_HOOKS])
    now = datetime.now(UTC)
    await asyncio.to_thread(ingest.process, [_beat(HONEST, now)])
    before = store.stats()

    # Ten years ahead: its sample's purge would delete every site's samples older than
    # ten years less two days, and its row would never be replaced by a truthful beat.
    result = await asyncio.to_thread(ingest.process, [_beat(HOSTILE, now + timedelta(days=3650))])
    assert (result.accepted, result.rejected) == (0, 1)
    stats = store.stats()
    assert stats["rejected"] == before["rejected"] + 1
    [reject] = store.rejects(limit=1)
    assert reject["topic"] == topics.heartbeat(HOSTILE)
    assert "ahead of central's clock" in reject["reason"]

    ldb = central.svc.ldb
    with ldb.lock:
        sampled = {r[0] for r in ldb.db.execute("select site_id from heartbeat_samples")}
    assert sampled == {HONEST}  # the honest site's history is kept, nothing credited ahead
    agents = {a["site"]: a for a in store.agents()}
    assert HOSTILE not in agents

    # A beat just inside the allowance (a box whose clock runs a little fast) is taken, and
    # the next truthful one still replaces it.
    near = now + timedelta(seconds=CLOCK_AHEAD_S - 30)
    await asyncio.to_thread(ingest.process, [_beat(HOSTILE, near)])
    later = near + timedelta(seconds=1)
    await asyncio.to_thread(ingest.process, [_beat(HOSTILE, later)])
    agents = {a["site"]: a for a in store.agents()}
    assert agents[HOSTILE]["last_heartbeat_at"] == later.timestamp()


async def test_a_camera_state_from_the_future_cannot_pin_the_camera_online(
    central: Central,
) -> None:
    store = central.client.app[INGEST_STORE]
    ingest = Ingest(store)
    now = datetime.now(UTC)
    result = await asyncio.to_thread(
        ingest.process, [_state(HOSTILE, "online", now + timedelta(days=3650))]
    )
    assert (result.accepted, result.rejected) == (0, 1)
    assert "ahead of central's clock" in store.rejects(limit=1)[0]["reason"]
    # The camera's real state is taken: nothing dated in the future stands in its way.
    await asyncio.to_thread(ingest.process, [_state(HOSTILE, "offline", now)])
    [camera] = store.cameras(HOSTILE)
    assert (camera["state"], camera["since"]) == ("offline", now.timestamp())


async def test_a_site_cannot_fill_the_tree_with_cameras_beyond_what_a_heartbeat_reports(
    central: Central,
) -> None:
    """Cameras are listed from what a site reports (states, events, heartbeats); a box
    naming camera after camera must not grow the regulators' tree without end. A site has
    at most as many cameras as its heartbeat can report; the rest are not listed (logged,
    counted as `cameras_refused`), their messages still stored."""
    app = central.client.app
    store = app[INGEST_STORE]
    ingest = Ingest(store, hooks=app[INGEST_HOOKS])
    now = datetime.now(UTC)
    names = [f"cam{i}" for i in range(MAX_SITE_CAMERAS + 5)]
    await asyncio.to_thread(
        ingest.process, [_state(HOSTILE, "online", now, camera) for camera in names]
    )
    ldb = central.svc.ldb
    with ldb.lock:
        listed = ldb.db.execute(
            "select count(*) from cameras where site_id = ?", [HOSTILE]
        ).fetchone()[0]
        other = ldb.db.execute(
            "select count(*) from cameras where site_id = ?", [HONEST]
        ).fetchone()[0]
    assert listed == MAX_SITE_CAMERAS
    assert store.stats()["cameras_refused"] >= 5
    assert len(store.cameras(HOSTILE)) == len(names)  # the states themselves are kept
    # Another site still lists a new camera.
    await asyncio.to_thread(ingest.process, [_state(HONEST, "online", now, "cam-new")])
    with ldb.lock:
        assert (
            ldb.db.execute("select count(*) from cameras where site_id = ?", [HONEST]).fetchone()[0]
            == other + 1
        )
