"""The big screen's data through the API: counts per level, drill-down, and scope isolation."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from central_support import Central, call

from central.reports.dashboard import day_starts
from central.schema import m016_camera_recording
from fsv_contract import CameraStats, HeartbeatPayload

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]


async def camera(central: Central, site: str, camera_id: str, state: str) -> None:
    """A camera of `site` in the given state, as ingest records it."""

    def write() -> None:
        central.svc.orgs.upsert_camera(site, camera_id, name=camera_id, station="kitchen_prep")
        with central.svc.ldb.transaction() as db:
            db.execute(
                "insert into camera_status (site, camera, state, since, reason, updated_at) "
                "values (?, ?, ?, ?, '', ?)",
                [site, camera_id, state, time.time(), time.time()],
            )

    await asyncio.to_thread(write)


async def world(central: Central) -> dict[str, str]:
    await camera(central, "demo-canteen-a", "cam1", "online")
    await camera(central, "demo-canteen-a", "cam2", "offline")
    await camera(central, "demo-canteen-b", "cam1", "online")
    return {
        "a": await central.event("demo-canteen-a", "cam1", severity="critical"),
        "b": await central.event("demo-canteen-b", "cam1", kind="smoking"),
    }


async def test_county_inspector_sees_their_county_and_nothing_else(central: Central) -> None:
    alerts = await world(central)
    status, d = await call(central, "inspector-a", "GET", "/api/v1/dashboard")
    assert status == 200, d
    assert d["focus"]["id"] == central.seed["orgs"]["county_a"]
    assert [o["level"] for o in d["breadcrumb"]] == ["county"]  # the city above is not theirs
    names = {c["name"] for c in d["children"]}
    assert names == {"中卫市第一小学食堂", "沙坡头定点屠宰厂"}
    assert d["totals"] == {
        "cameras": 2, "online": 1, "offline": 1, "recording_complete": 0, "open_alerts": 1,
        "overdue": 0,
    }  # fmt: skip
    assert [a["id"] for a in d["latest"]] == [alerts["a"]]
    assert d["by_kind"] == {"no_chef_hat": 1}
    assert sum(d["trend"]["total"]) == 1 and d["trend"]["critical"][-1] == 1
    assert [r["name"] for r in d["rankings"]["open_alerts"]] == ["中卫市第一小学食堂"]
    assert d["rankings"]["online_rate"][0]["online_rate"] == 0.5
    # The other county, by id: not found, exactly like an id that does not exist.
    other = central.seed["orgs"]["county_b"]
    status, err = await call(central, "inspector-a", "GET", f"/api/v1/dashboard?org_id={other}")
    assert status == 404, err
    status, err = await call(central, "inspector-a", "GET", "/api/v1/dashboard?org_id=999999")
    assert status == 404


async def test_city_drills_down_to_an_enterprise_and_its_cameras(central: Central) -> None:
    await world(central)
    status, d = await call(central, "city-monitor", "GET", "/api/v1/dashboard")
    assert status == 200
    counties = {c["name"]: c for c in d["children"]}
    assert set(counties) == {"沙坡头区 Shapotou", "中宁县 Zhongning"}
    assert counties["沙坡头区 Shapotou"]["offline"] == 1
    assert counties["中宁县 Zhongning"]["open_alerts"] == 1
    assert d["totals"]["cameras"] == 3 and d["totals"]["open_alerts"] == 2
    canteen = central.seed["orgs"]["canteen_a"]
    status, d = await call(central, "city-monitor", "GET", f"/api/v1/dashboard?org_id={canteen}")
    assert [o["level"] for o in d["breadcrumb"]] == ["city", "county", "enterprise"]
    cams = {c["camera_id"]: c for c in d["children"]}
    assert cams["cam1"]["state"] == "online" and cams["cam1"]["open_alerts"] == 1
    assert cams["cam2"]["state"] == "offline" and cams["cam2"]["kind"] == "camera"


async def test_admin_starts_at_the_provinces_and_staff_are_refused(central: Central) -> None:
    await world(central)
    status, d = await call(central, "admin", "GET", "/api/v1/dashboard")
    assert status == 200 and d["focus"] is None
    assert [c["level"] for c in d["children"]] == ["province"]
    status, err = await call(central, "staff-canteen-a", "GET", "/api/v1/dashboard")
    assert status == 403, err


async def test_trend_days_are_local_days() -> None:
    # 2026-12-02 00:30 UTC is already 08:30 on the 2nd in Beijing; the day began at 16:00 UTC.
    days = day_starts(1796171400.0, "Asia/Shanghai", 3)
    assert [d for d, _ in days] == ["2026-11-30", "2026-12-01", "2026-12-02"]
    assert days[-1][1] == 1796171400.0 - 8.5 * 3600


def heartbeats(central: Central, site: str, hours: float, plan: dict[str, Any]) -> None:
    """A heartbeat every 5 minutes for `hours` up to now; `plan[camera](ts)` says if it records
    (None: the camera is missing from that heartbeat); `plan["lost"](ts)`: no heartbeat."""
    now = time.time()
    ts = now - hours * 3600
    while ts <= now:
        if not plan.get("lost", lambda _t: False)(ts):
            cams = []
            for camera, recording in plan.items():
                if camera == "lost" or recording(ts) is None:
                    continue
                end = ts - 10 if recording(ts) else ts - 3600
                cams.append(
                    CameraStats(
                        camera=camera,
                        state="online",
                        last_segment_end=datetime.fromtimestamp(end, UTC),
                    )  # fmt: skip
                )
            beat = HeartbeatPayload(
                ts=datetime.fromtimestamp(ts, UTC), uptime_s=1, disk_free_bytes=1,
                disk_total_bytes=2, cpu_percent=1, cameras=cams,
            )  # fmt: skip
            central.svc.hooks.on_heartbeat(site, beat)
        ts += 300


async def test_recording_complete_counts_cameras_without_a_gap_in_24_hours(
    central: Central,
) -> None:
    await world(central)
    now = time.time()
    always: Any = lambda _ts: True  # noqa: E731
    # cam1 records all day; cam2 stopped for one sample three hours ago.
    a_plan = {"cam1": always, "cam2": lambda ts: not now - 3 * 3600 < ts < now - 3 * 3600 + 300}
    # Canteen B's heartbeats were lost for half an hour ten hours ago.
    b_plan = {"cam1": always, "lost": lambda ts: now - 10 * 3600 < ts < now - 9.5 * 3600}
    await asyncio.to_thread(heartbeats, central, "demo-canteen-a", 25, a_plan)
    await asyncio.to_thread(heartbeats, central, "demo-canteen-b", 25, b_plan)
    # The slaughterhouse's camera has been recording for 20 hours only.
    await camera(central, "demo-slaughter-a", "cam1", "online")
    await asyncio.to_thread(heartbeats, central, "demo-slaughter-a", 20, {"cam1": always})

    async def seen() -> tuple[dict[str, Any], dict[str, Any]]:
        status, city = await call(central, "city-monitor", "GET", "/api/v1/dashboard")
        assert status == 200, city
        canteen = central.seed["orgs"]["canteen_a"]
        path = f"/api/v1/dashboard?org_id={canteen}"
        status, enterprise = await call(central, "city-monitor", "GET", path)
        assert status == 200
        return city, enterprise

    city, enterprise = await seen()
    assert city["totals"]["cameras"] == 4 and city["totals"]["recording_complete"] == 1
    counties = {c["name"]: c for c in city["children"]}
    assert counties["沙坡头区 Shapotou"]["recording_complete"] == 1
    assert counties["中宁县 Zhongning"]["recording_complete"] == 0  # the lost heartbeats
    cams = {c["camera_id"]: c["recording_complete"] for c in enterprise["children"]}
    assert cams == {"cam1": 1, "cam2": 0}

    # The record rebuilt from the raw samples (the migration on an existing database) agrees.
    def rebuild() -> None:
        with central.svc.ldb.transaction() as db:
            db.execute("drop table camera_recording")
            m016_camera_recording(db)

    await asyncio.to_thread(rebuild)
    again, again_enterprise = await seen()
    assert again["totals"] == city["totals"] and again["children"] == city["children"]
    assert again_enterprise["children"] == enterprise["children"]
