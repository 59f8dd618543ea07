"""A camera's page data says what its detection rules can see, from the site's heartbeat."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from central_support import Central, call

from fsv_contract import CameraDetectionStatus, HeartbeatPayload, RuleStatus

pytestmark = pytest.mark.asyncio

_HEARTBEAT = (
    "insert into agent_status (site, last_heartbeat_at, heartbeat) values (?, ?, ?) "
    "on conflict (site) do update set last_heartbeat_at = excluded.last_heartbeat_at, "
    "heartbeat = excluded.heartbeat"
)


def beat(detection: list[CameraDetectionStatus] | None) -> HeartbeatPayload:
    return HeartbeatPayload(
        ts=datetime.now(UTC), uptime_s=1, disk_free_bytes=1, disk_total_bytes=2, cpu_percent=1,
        detection=detection,
    )  # fmt: skip


def store_beat(central: Central, site: str, payload: HeartbeatPayload) -> None:
    with central.svc.ldb.transaction() as db:
        db.execute(_HEARTBEAT, [site, payload.ts.timestamp(), payload.model_dump_json()])


async def test_camera_shows_each_rule_working_partial_or_blind(central: Central) -> None:
    site, path = "demo-canteen-a", "/api/v1/sites/demo-canteen-a/cameras/cam1"
    await asyncio.to_thread(central.svc.orgs.upsert_camera, site, "cam1", station="kitchen_prep")
    status, camera = await call(central, "inspector-a", "GET", path)
    assert status == 200 and camera["detection"] is None  # no heartbeat yet

    rules = [
        RuleStatus(rule="no-mask", kind="no_mask", status="partial", reason="faces only"),
        RuleStatus(rule="no-chef-hat", kind="no_chef_hat", status="blind", reason="no model"),
        RuleStatus(rule="kitchen-crowding", kind="crowding", status="working"),
    ]
    detection = [
        CameraDetectionStatus(camera="cam1", model="nanodet-m.onnx", rules=rules),
        CameraDetectionStatus(camera="cam2", model=None, error="no model"),
    ]
    await asyncio.to_thread(store_beat, central, site, beat(detection))
    status, camera = await call(central, "inspector-a", "GET", path)
    assert status == 200
    shown = camera["detection"]
    assert shown["model"] == "nanodet-m.onnx" and shown["error"] is None
    assert [(r["rule"], r["status"]) for r in shown["rules"]] == [
        ("no-mask", "partial"),
        ("no-chef-hat", "blind"),
        ("kitchen-crowding", "working"),
    ]
    assert shown["rules"][1]["reason"] == "no model"
    assert shown["counts"] == {"working": 1, "partial": 1, "blind": 1}

    # An older agent sends no detection: the camera shows none, and nothing breaks.
    await asyncio.to_thread(store_beat, central, site, beat(None))
    assert (await call(central, "inspector-a", "GET", path))[1]["detection"] is None
