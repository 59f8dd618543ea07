"""Shadow mode at central: the heartbeats' daily comparisons, shown per class before a switch."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from central_support import Central, call

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.keys import CONFIG, DATABASE, INGEST_STORE
from central.models.registry import registry_for
from edge_agent.detection.detector import default_model_path
from fsv_contract import HeartbeatPayload, encode, topics
from fsv_contract.payloads import ShadowClass, ShadowStats

pytestmark = pytest.mark.asyncio
SITE = "demo-canteen-a"


def _beat(frames: int, matched: int, only_shadow: int) -> RawMessage:
    shadow = ShadowStats(
        camera="cam1", model="hats@3", current="hats@2", day="2026-12-02", frames=frames,
        classes=[ShadowClass(name="no_chef_hat", matched=matched, only_current=1,
                             only_shadow=only_shadow),
                 ShadowClass(name="person", matched=10)],
    )  # fmt: skip
    beat = HeartbeatPayload(
        ts=datetime.now(UTC), uptime_s=1.0, disk_free_bytes=1, disk_total_bytes=2,
        cpu_percent=1.0, shadow=[shadow],
    )  # fmt: skip
    return RawMessage(topics.heartbeat(SITE), encode(beat), 0.0)


async def test_the_days_agreement_of_a_shadow_model_is_shown_per_class(central: Central) -> None:
    ingest = Ingest(central.client.app[INGEST_STORE])
    await asyncio.to_thread(ingest.process, [_beat(100, 2, 5)])
    # Later beats carry the day's running totals: the newest replaces the row.
    await asyncio.to_thread(ingest.process, [_beat(400, 8, 1)])
    status, body = await call(central, "admin", "GET", f"/api/v1/sites/{SITE}/models")
    assert status == 200, body
    [day] = body["shadow"]
    assert (day["camera"], day["model"], day["current"], day["day"], day["frames"]) == (
        "cam1", "hats@3", "hats@2", "2026-12-02", 400,
    )  # fmt: skip
    by_class = {c["name"]: c for c in day["classes"]}
    assert by_class["no_chef_hat"]["agreement"] == pytest.approx(0.8)  # 8 of 8 + 1 + 1
    assert by_class["person"]["agreement"] == 1.0
    assert (day["matched"], day["only_current"], day["only_shadow"]) == (18, 1, 1)
    assert day["agreement"] == pytest.approx(0.9)
    # Scoped like the site: another county's inspector sees nothing of it.
    assert (await call(central, "inspector-b", "GET", f"/api/v1/sites/{SITE}/models"))[0] == 404


async def test_install_and_stop_in_shadow_send_the_flag_and_are_audited(central: Central) -> None:
    registry = registry_for(central.svc.ldb, central.client.app[CONFIG].data_dir)
    await asyncio.to_thread(registry.add, default_model_path(), "hats", "3", ["person"], {}, "test")
    path = f"/api/v1/sites/{SITE}/models"
    status, sent = await call(central, "admin", "POST", f"{path}/install",
                              json={"name": "hats", "version": "3", "shadow": True})  # fmt: skip
    assert status == 202, sent
    status, stop = await call(central, "admin", "POST", f"{path}/rollback", json={"shadow": True})
    assert status == 202, stop
    db = central.client.app[DATABASE]
    with db.lock:
        args = {
            r[0]: json.loads(r[1])
            for r in db.db.execute("select request_id, args from commands").fetchall()
        }
    assert args[sent["request_id"]]["shadow"] is True and args[stop["request_id"]]["shadow"]
    rollouts = (await call(central, "admin", "GET", path))[1]["rollouts"]
    assert [r["action"] for r in rollouts] == ["shadow_stop", "shadow"]
    body = {"name": "hats", "version": "3", "shadow": True}
    assert (await call(central, "inspector-a", "POST", f"{path}/install", json=body))[0] == 403
