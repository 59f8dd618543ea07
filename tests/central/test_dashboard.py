"""The big screen's data through the API: counts per level, drill-down, and scope isolation."""

from __future__ import annotations

import asyncio
import time

import pytest
from central_support import Central, call

from central.reports.dashboard import day_starts

pytestmark = pytest.mark.asyncio


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
    assert d["totals"] == {"cameras": 2, "online": 1, "offline": 1, "open_alerts": 1, "overdue": 0}
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
