"""Regulator reads at scale: indexed and bounded, never waiting for a writer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from central_support import Central, call

from central.regulation.scope import Scope, scope_filter
from central.reports.builder import ALERT_DAYS_SQL, ALERT_GROUPS_SQL, OVERDUE_SQL, build_report
from central.video.wall import wall_plan

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]


def _wall_counts(body: dict[str, object]) -> dict[tuple[str, str], int]:
    items = body["items"]
    assert isinstance(items, list)
    return {(c["site_id"], c["camera_id"]): c["open_alerts"] for c in items}


async def test_wall_counts_open_alerts_from_the_counter(central: Central) -> None:
    first = await central.event("demo-canteen-a", "cam1")
    await central.event("demo-canteen-a", "cam1")
    await central.event("demo-canteen-a", "cam2")
    await central.event("demo-canteen-b", "cam1")
    status, body = await call(central, "inspector-a", "GET", "/api/v1/video/wall")
    assert status == 200, body
    counts = _wall_counts(body)
    assert counts[("demo-canteen-a", "cam1")] == 2 and counts[("demo-canteen-a", "cam2")] == 1
    assert ("demo-canteen-b", "cam1") not in counts  # county B is out of the inspector's scope

    status, _ = await call(
        central, "inspector-a", "POST", f"/api/v1/alerts/{first}/transitions",
        json={"action": "close", "note": "seen"},
    )  # fmt: skip
    assert status == 201
    _, body = await call(central, "inspector-a", "GET", "/api/v1/video/wall")
    assert _wall_counts(body)[("demo-canteen-a", "cam1")] == 1
    status, _ = await call(
        central, "city-monitor", "POST", f"/api/v1/alerts/{first}/transitions",
        json={"action": "reopen", "note": "again"},
    )  # fmt: skip
    assert status == 201
    _, body = await call(central, "city-monitor", "GET", "/api/v1/video/wall")
    counts = _wall_counts(body)
    assert counts[("demo-canteen-a", "cam1")] == 2 and counts[("demo-canteen-b", "cam1")] == 1


@pytest.mark.databases("sqlite")  # SQLite's query plans; PostgreSQL's planner picks its own
async def test_wall_and_report_queries_are_indexed(central: Central) -> None:
    county = central.svc.orgs.get_org(Scope.everything(), central.seed["orgs"]["county_a"])
    scope = Scope(county["org_path"])
    plan = wall_plan(central.svc.ldb, scope)
    text = "\n".join(plan)
    assert "CORRELATED" not in text and " alerts " not in text, text
    assert any("SEARCH c USING INDEX idx_cameras_org_path" in line for line in plan), text
    scans = [line for line in plan if line.startswith("SCAN")]
    assert not scans, text

    def report_plan(sql: str, where: str, args: list[object]) -> str:
        with central.svc.ldb.read() as db:
            text = sql.format(where=where, day="+day")  # SQLite's choice (the builder's)
            rows = db.execute(f"explain query plan {text}", args).fetchall()
        return "\n".join(str(r[3]) for r in rows)

    # Whole days: the daily rollup, in group order. Partial days: the alerts by start, whatever the
    # scope. Overdue: only the alerts awaiting rectification, by deadline.
    for where, args in (scope_filter(scope), scope_filter(Scope.everything())):
        days = report_plan(ALERT_DAYS_SQL, where, [*args, 0, 1])
        assert "alert_days USING COVERING INDEX idx_alert_days_report" in days
        assert "TEMP B-TREE" not in days, days
        overdue = report_plan(OVERDUE_SQL, where, [1, *args, 0, 1])
        assert "SEARCH alerts USING INDEX idx_alerts_state_deadline (state=?" in overdue
        assert "SCAN alerts" not in days + overdue, days + overdue
    for where, args in (scope_filter(scope, indexed=False), scope_filter(Scope.everything())):
        partial = report_plan(ALERT_GROUPS_SQL, where, [*args, 0, 1])
        assert "SEARCH alerts USING INDEX idx_alerts_start (start>? AND start<?)" in partial
        assert "SCAN" not in partial, partial


@pytest.mark.databases("sqlite")  # PostgreSQL's case: tests/central/test_central_db.py
async def test_reads_answer_while_another_process_holds_the_write_lock(
    central: Central, tmp_path: Path
) -> None:
    await central.event("demo-canteen-a", "cam1")
    await central.token("city-monitor")
    path = central.svc.ldb.db.conn.execute("pragma database_list").fetchone()[2]
    other = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
    other.execute("begin immediate")  # a second writer (e.g. the CLI) holds the write lock
    held = threading.Event()
    # ...and a long ingest transaction holds central's own lock meanwhile.
    release = threading.Event()

    def hold_lock() -> None:
        with central.svc.ldb.lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock, name="lock-holder")
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        status, wall = await call(central, "city-monitor", "GET", "/api/v1/video/wall")
        assert status == 200 and wall["items"], wall
        status, page = await call(central, "city-monitor", "GET", "/api/v1/alerts")
        assert status == 200 and page["total"] == 1, page
        # The report page also writes an audit entry (a write waits); the report itself reads.
        now = time.time()
        report = await asyncio.to_thread(
            build_report, central.svc.ldb, Scope.everything(), now - 86400, now + 60
        )
        assert report["alerts"]["total"] == 1, report
        # None of them waited for the writers (they hold on until released, or 60 s).
        assert time.monotonic() - started < 30
        assert holder.is_alive()
    finally:
        release.set()
        holder.join()
        other.rollback()
        other.close()


async def test_heartbeat_samples_roll_up_per_hour(central: Central) -> None:
    hour = 1_790_002_800.0  # on the hour
    samples = [
        # 300 s before the hour's first sample straddle two hours: 100 s + 200 s.
        (hour + 100.0, 300.0, {"cam1": True, "cam2": True}),
        (hour + 400.0, 300.0, {"cam1": True, "cam2": False}),
        (hour + 3700.0, 300.0, {"cam1": False, "cam2": False}),
    ]
    with central.svc.ldb.transaction() as db:
        for ts, interval, flags in samples:
            db.table("heartbeat_samples").insert(
                {"site_id": "demo-canteen-a", "ts": ts, "interval_s": interval,
                 "retention_days": 95.0 if ts < hour + 3600 else 80.0,
                 "cameras": json.dumps(flags)}
            )  # fmt: skip
        rows = {
            r["hour"]: (r["recorded_s"], r["retention_days"])
            for r in db.query("select * from health_hourly where site_id = 'demo-canteen-a'")
        }
    assert rows[int(hour) - 3600] == (2 * 200.0, None)
    assert rows[int(hour)] == (2 * 100.0 + 300.0, 95.0)
    assert rows[int(hour) + 3600][1] == 80.0
