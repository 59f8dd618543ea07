"""The report's recording figures from the daily health rollup are those of the hourly one.

The daily rollup (`health_days`) is kept by triggers on insert, update and delete of
`health_hourly` (itself kept by the heartbeat samples' trigger); the report reads a period's
whole UTC days from it and the whole hours either side from `health_hourly`. The reference
here is the report's former read: every whole hour of the period from `health_hourly`.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from central_support import Central

from central.regulation.scope import Scope
from central.reports import recording
from central.reports.builder import build_report
from central.schema.health import health_days_fill_sql
from central.storage.pg import is_postgres

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]

DAY = 86400
HOUR = 3600
T0 = 1_790_035_200  # a UTC midnight
DAYS = 6


def _load(central: Central, rng: random.Random) -> None:
    """Heartbeat samples over DAYS days (rolled up by the triggers), hourly rows written
    directly (as a bulk load does), then some of those moved, changed and deleted.
    Every recorded figure is a whole number of seconds, so sums in any order are exact."""
    svc = central.svc
    sites = [s["id"] for s in svc.orgs.list_sites(Scope.everything())]
    for site in sites:
        for camera in ("cam1", "cam2"):
            svc.orgs.upsert_camera(site, camera, name=camera, station="kitchen_prep")
    with svc.ldb.transaction() as db:
        db.execute("update cameras set created_at = ?", [T0 - 10 * DAY])
        samples = []
        for site in sites[:2]:
            ts = T0 + rng.randrange(600)
            while ts < T0 + DAYS * DAY:
                interval = rng.choice([60, 300, 600])
                flags = {"cam1": rng.random() < 0.9, "cam2": rng.random() < 0.5}
                samples.append(
                    {"site_id": site, "ts": float(ts), "interval_s": float(interval),
                     "retention_days": 120.0, "cameras": json.dumps(flags)}
                )  # fmt: skip
                ts += interval + rng.choice([0, 0, 0, 900, 5000])  # now and then a gap
        db.table("heartbeat_samples").insert_all(samples)
        rows = [
            {"site_id": site, "hour": T0 - DAY + h * HOUR,
             "recorded_s": float(rng.randrange(7200)), "samples": 12}
            for site in sites[2:] for h in range((DAYS + 2) * 24) if rng.random() < 0.8
        ]  # fmt: skip
        db.table("health_hourly").insert_all(rows)
        for row in rng.sample(rows, 40):  # to another hour, across midnight or not
            by = HOUR * rng.choice([1, 5, 30])
            db.execute(
                "update health_hourly set hour = hour + ? where site_id = ? and hour = ? "
                "and not exists (select 1 from health_hourly h where h.site_id = ? "
                "and h.hour = ?)",
                [by, row["site_id"], row["hour"], row["site_id"], row["hour"] + by],
            )
        for row in rng.sample(rows, 40):
            db.execute(
                "update health_hourly set recorded_s = recorded_s + ? where site_id = ? "
                "and hour = ?",
                [float(rng.randrange(-100, 100)), row["site_id"], row["hour"]],
            )
        for row in rng.sample(rows, 40):
            db.execute(
                "delete from health_hourly where site_id = ? and hour = ?",
                [row["site_id"], row["hour"]],
            )


def _hourly_only(
    db: Any, sites: recording.Sites, by_site: dict[str, list[str]], lo: int, hi: int
) -> float:
    """The report's former read of the whole hours: every one from the hourly rollup."""
    return sum(
        float(r[1])
        for r in db.execute(
            "select site_id, coalesce(sum(recorded_s), 0) from health_hourly "
            f"where site_id in ({sites.sql}) and hour >= ? and hour < ? group by site_id",
            [*sites.args, lo, hi],
        )
        if r[0] in by_site
    )


def _periods(rng: random.Random) -> list[tuple[float, float]]:
    periods: list[tuple[float, float]] = [
        (T0 - 90 * DAY, T0 + 90 * DAY),  # everything, whole days
        (T0, T0 + DAYS * DAY),  # exactly the loaded days
        (T0 + 2 * DAY, T0 + 3 * DAY),  # one whole day
        (T0 + 2 * DAY - HOUR, T0 + 3 * DAY + HOUR),  # a whole day and an hour either side
        (T0 + DAY - 0.5, T0 + 4 * DAY + 0.5),  # whole days, partial hours either side
        (T0 + 2 * DAY + 1800, T0 + 2 * DAY + 2700),  # within an hour
        (T0 + 3 * DAY - 5 * HOUR, T0 + 3 * DAY + 5 * HOUR),  # hours across midnight
        (T0 + 5 * DAY + 7, T0 + 6 * DAY - 7),  # within one day
    ]
    for _ in range(14):
        a = T0 - DAY + rng.random() * (DAYS + 2) * DAY
        periods.append((a, a + rng.choice([1800.0, DAY, 1.5 * DAY, rng.random() * 5 * DAY])))
    return periods


async def test_report_from_the_daily_rollup_equals_the_hourly_one(
    central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    _load(central, rng)
    with central.svc.ldb.read() as db:
        paths = [r[0] for r in db.execute("select org_path from orgs order by org_path")]
    scopes = [Scope.everything(), *(Scope(p) for p in paths), Scope.nothing()]
    compared = 0
    for start, end in _periods(rng):
        for scope in scopes:
            got = build_report(central.svc.ldb, scope, start, end)["recording"]
            with monkeypatch.context() as m:
                m.setattr(recording, "_whole_hours", _hourly_only)
                expected = build_report(central.svc.ldb, scope, start, end)["recording"]
            assert got == expected, (scope, start, end)
            compared += expected["hours_recorded"] > 0
    assert compared > 50  # most comparisons are of periods and scopes with recordings


async def test_rollup_kept_on_write_equals_one_filled_from_the_hourly_rows(
    central: Central,
) -> None:
    _load(central, random.Random(9))
    sql = "select site_id, day, recorded_s from health_days where recorded_s != 0 order by 1, 2"
    with central.svc.ldb.transaction() as db:
        hours = db.execute("select count(*), sum(recorded_s) from health_hourly").fetchone()
        kept = [tuple(r) for r in db.execute(sql).fetchall()]
        db.execute("delete from health_days")
        db.execute(health_days_fill_sql(is_postgres(db)))
        filled = [tuple(r) for r in db.execute(sql).fetchall()]
    assert kept == filled and len(filled) >= 3 * (DAYS + 1)
    assert sum(r[2] for r in filled) == hours[1] and hours[0] > 300
    assert all(day % DAY == 0 for _, day, _ in filled)
