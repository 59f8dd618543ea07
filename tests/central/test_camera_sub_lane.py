"""A camera's sub lane recorder (its recorded sub stream) as the site's heartbeat reports it:
in the camera's page data, the camera list and the big screen's cameras of an enterprise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from central_support import Central, call

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.keys import INGEST_STORE
from fsv_contract import HeartbeatPayload, encode, topics
from fsv_contract.payloads import CameraStats, LaneStats

pytestmark = pytest.mark.asyncio
SITE = "demo-canteen-a"
END = datetime(2026, 12, 2, 8, 0, 5, tzinfo=UTC)


def _beat(cameras: list[CameraStats]) -> RawMessage:
    beat = HeartbeatPayload(ts=datetime.now(UTC), uptime_s=1.0, disk_free_bytes=1,
                            disk_total_bytes=2, cpu_percent=1.0, cameras=cameras)  # fmt: skip
    return RawMessage(topics.heartbeat(SITE), encode(beat), 0.0)


async def test_each_camera_shows_its_sub_lane_recording_offline_or_not_recorded(
    central: Central,
) -> None:
    for cam in ("cam1", "cam2", "cam3", "cam4"):
        await asyncio.to_thread(central.svc.orgs.upsert_camera, SITE, cam, station="kitchen_prep")
    detail = f"/api/v1/sites/{SITE}/cameras/cam1"
    status, camera = await call(central, "inspector-a", "GET", detail)
    assert status == 200 and camera["sub_lane"] is None  # no heartbeat yet

    recording = LaneStats(state="online", fps=25.0, bitrate_bps=512_000.0, last_segment_end=END)
    # An older agent's lane has no reason; an offline one says why (a reason on an online
    # lane is not shown).
    offline = LaneStats(state="offline", fps=0.0, bitrate_bps=0.0, reason="stream not found")
    cameras = [
        CameraStats(camera="cam1", state="online", sub=recording),
        CameraStats(camera="cam2", state="online", sub=offline),
        CameraStats(camera="cam3", state="online"),  # the sub stream is not recorded
    ]  # cam4: not in the heartbeat
    ingest = Ingest(central.client.app[INGEST_STORE])
    await asyncio.to_thread(ingest.process, [_beat(cameras)])

    status, camera = await call(central, "inspector-a", "GET", detail)
    assert status == 200
    assert camera["sub_lane"] == {
        "state": "recording", "reason": None, "fps": 25.0, "bitrate_bps": 512_000.0,
        "last_segment_end": END.timestamp(),
    }  # fmt: skip
    status, listed = await call(central, "inspector-a", "GET", f"/api/v1/cameras?site_id={SITE}")
    assert status == 200
    lanes = {c["camera_id"]: c["sub_lane"] for c in listed["items"]}
    assert lanes["cam1"] == camera["sub_lane"]
    assert lanes["cam2"] is not None
    assert (lanes["cam2"]["state"], lanes["cam2"]["reason"]) == ("offline", "stream not found")
    assert lanes["cam3"] is not None and lanes["cam3"]["state"] == "not_recorded"
    assert lanes["cam4"] is None  # not reported: unknown, not "not recorded"

    canteen = central.seed["orgs"]["canteen_a"]
    status, d = await call(central, "city-monitor", "GET", f"/api/v1/dashboard?org_id={canteen}")
    assert status == 200
    shown = {c["camera_id"]: c["sub_lane"] for c in d["children"]}
    assert shown == lanes

    # The next heartbeat replaces the last: the lane stopped being recorded.
    await asyncio.to_thread(ingest.process, [_beat([CameraStats(camera="cam1", state="online")])])
    status, camera = await call(central, "inspector-a", "GET", detail)
    assert camera["sub_lane"]["state"] == "not_recorded"
    # Scoped like the camera: another county's inspector gets nothing of it.
    assert (await call(central, "inspector-b", "GET", detail))[0] == 404
