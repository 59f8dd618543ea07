"""bench/scale.py at a tiny size, on both engines: its preload leaves the rows central's own
writes would (open-alert counters, hourly rollups, indexes), and a run on PostgreSQL then on
SQLite writes both side by side into the results file, keeping the other benchmarks' keys."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.scale import CAMERAS, CentralProcess, build_tree, preload
from testbed.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "sites", "cameras", "database", "alerts_in_db", "alerts_preloaded", "health_rows",
    "ingest_lag_p95_s", "wall_s_city", "wall_s_county", "report_90d_s_city",
    "fresh_alert_during_burst_s", "fresh_alert_during_burst_s_max", "pushes_wanted",
    "pushes_lost", "alerts_missing", "machine", "load_avg_steady", "load_avg_after_burst",
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralProcess]:
    """A central's configuration and database (not started), on each engine."""
    if request.param == "sqlite":
        yield CentralProcess(tmp_path / "central", 1)
        return
    with PostgresServer() as server:
        yield CentralProcess(tmp_path / "central", 1, server.create_database())


def _indexes(central: CentralProcess) -> set[str]:
    if central.database_url is None:
        sql = "select sql from sqlite_master where type = 'index' and tbl_name = 'alerts'"
    else:
        sql = "select indexdef from pg_indexes where tablename = 'alerts'"
    return {str(r[0]) for r in central.query(sql) if r[0]}


def test_preload_leaves_what_central_would(central: CentralProcess) -> None:
    tree = build_tree(central.config, 6, 2, "http://127.0.0.1:9/h")
    indexes = _indexes(central)
    now = time.time()
    health = preload(central.database, tree["site_paths"], 4000, now)

    assert _indexes(central) == indexes and len(indexes) >= 5  # built again, the same ones
    assert central.query("select count(*) from alerts")[0][0] == 4000
    assert central.query("select count(*) from cameras")[0][0] == 6 * CAMERAS
    # the open-alert counter of every camera is what the alerts table says
    counted = dict(
        ((s, c), n) for s, c, n in central.query("select site_id, camera_id, open from "
                                                 "camera_open_alerts where open > 0")
    )  # fmt: skip
    open_rows = central.query(
        "select site_id, camera_id, count(*) from alerts where state != 'closed' "
        "group by site_id, camera_id"
    )
    assert counted == {(s, c): n for s, c, n in open_rows}
    assert 0 < sum(counted.values()) < 4000 * 0.1
    # the daily alert rollup holds every alert, as the triggers count them on write
    rollup = central.query(
        "select day, org_path, kind, station, state, n, ack_n, round(ack_sum) from alert_days "
        "where n > 0 order by 1, 2, 3, 4, 5"
    )
    day = (
        "trunc(start / 86400)::bigint" if central.database_url else "cast(start / 86400 as integer)"
    )
    by_day = central.query(
        f"select {day} * 86400, org_path, kind, station, state, count(*), "
        "count(acknowledged_at), round(sum(acknowledged_at - created_at)) from alerts "
        "group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5"
    )
    assert [tuple(r) for r in rollup] == [tuple(r) for r in by_day] and len(by_day) > 60
    assert sum(r[5] for r in rollup) == 4000
    # the raw samples' hours were rolled up by the trigger: every site has an hour each for
    # the 88 days before them and for the last 2 days, each hour full (10 cameras recording)
    hours = central.query(
        "select site_id, count(*), max(hour), sum(recorded_s) from health_hourly "
        "where hour >= ? group by site_id",
        (int((now - 3 * 86400) // 3600 * 3600),),
    )
    assert len(hours) == 6
    for _, n, hi, recorded in hours:
        assert 71 <= n <= 73 and hi >= now - 2 * 3600
        assert recorded == pytest.approx((n - 1) * 3600.0 * CAMERAS, rel=0.02)
    # the daily health rollup holds every hourly row, as the triggers add them on write
    days = central.query("select site_id, day, recorded_s from health_days order by 1, 2")
    by_day = central.query(
        "select site_id, (hour / 86400) * 86400, sum(recorded_s) from health_hourly "
        "group by 1, 2 order by 1, 2"
    )
    assert [tuple(r) for r in days] == [tuple(r) for r in by_day] and len(by_day) >= 6 * 90
    rows: Any = central.query("select (select count(*) from health_hourly) + "
                              "(select count(*) from heartbeat_samples)")  # fmt: skip
    assert rows[0][0] == health
    recording = central.query("select count(*), max(last_ts) from camera_recording")[0]
    assert recording[0] == 6 * CAMERAS and recording[1] > now - 600


def test_scale_bench_tiny_city_on_both_engines(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    out.write_text(json.dumps({"province": {"nodes": 3}, "viewers_one_core_measured": 7}))
    for engine in ("postgres", "sqlite"):
        subprocess.run(
            [sys.executable, "bench/scale.py", "--database", engine, "--sites", "20",
             "--alerts", "5000", "--steady-s", "4", "--burst-window-s", "4", "--burst", "400",
             "--fresh-probes", "2", "--alerts-per-hour", "360", "--output", str(out)],
            cwd=REPO, check=True, timeout=300, capture_output=True,
        )  # fmt: skip
    data = json.loads(out.read_text())
    assert data["province"] == {"nodes": 3} and data["viewers_one_core_measured"] == 7
    for run, engine in ((data, "sqlite"), (data["postgresql"], "postgresql")):
        assert KEYS <= run.keys(), engine
        assert (run["sites"], run["cameras"], run["database"]) == (20, 200, engine)
        assert run["alerts_in_db"] > 5000 and run["alerts_preloaded"] == 5000
        assert run["pushes_wanted"] > 0 and run["pushes_lost"] == 0
        assert run["alerts_missing"] == 0
        for probe in run["fresh_alert_during_burst_probes"]:
            assert 0 < probe["inbox_s"] and 0 < probe["push_s"]
        assert run["reports_run"] > 0 and run["wall_requests_city"] > 0
    assert "postgresql" not in data["postgresql"]
