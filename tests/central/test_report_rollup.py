"""The report's alert figures from the daily rollup are those of a pass over every alert.

The rollup (`alert_days`) is kept by triggers on insert, update and delete of `alerts`; the
report reads whole UTC days from it and the partial first and last days from `alerts`. The
reference here is the single grouped pass over the period's alerts the report used to make.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from central_support import Central

from central.regulation.scope import Scope, scope_filter
from central.reports.builder import _alert_section, build_report
from central.schema.health import alert_days_fill_sql
from central.storage.pg import is_postgres

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]

DAY = 86400.0
T0 = 1_790_035_200.0  # a UTC midnight
DAYS = 12

# Every alert of the period in one grouped pass (the report's former query).
SCAN_SQL = """
    select org_path, kind, station, state, count(*) as n,
           sum(acknowledged_at - created_at) as ack_sum, count(acknowledged_at) as ack_n,
           sum(submitted_at - requested_at) as fix_sum,
           count(submitted_at - requested_at) as fix_n,
           sum(case when state = 'rectification_requested' and deadline is not null
                         and deadline < ? then 1 else 0 end) as overdue
    from alerts where {where} and start >= ? and start < ?
    group by org_path, kind, station, state
"""
ROLLUP_FROM_ALERTS_SQL = """
    select day, org_path, kind, station, station_set, state, n, ack_n, fix_n,
           round(ack_sum) as ack_sum, round(fix_sum) as fix_sum
    from alert_days where n > 0 order by 1, 2, 3, 4, 5, 6
"""


def _start(rng: random.Random) -> float:
    day = T0 + rng.randrange(DAYS) * DAY
    at = rng.choice([0.0, DAY - 0.001, 0.5, DAY / 2 + 0.25, rng.random() * DAY])
    return day + at


def _load(central: Central, rng: random.Random) -> None:
    """Alerts over DAYS days in every state, then acknowledged, rectified, moved, deleted."""
    with central.svc.ldb.read() as db:
        sites = [(r["id"], r["org_path"]) for r in db.query("select id, org_path from sites")]
    rows = []
    for _ in range(900):
        site, path = rng.choice(sites)
        start = _start(rng)
        rows.append({
            "id": str(uuid.uuid4()), "site_id": site, "camera_id": f"cam{rng.randrange(3)}",
            "org_path": path, "kind": rng.choice(["no_chef_hat", "no_mask", "rodent"]),
            "station": rng.choice(["kitchen_prep", "wash", "", None]), "rule": "r",
            "severity": "warning", "start": start, "score": 0.9, "state": "new",
            "created_at": start + rng.random() * 30, "updated_at": start,
        })  # fmt: skip
    with central.svc.ldb.transaction() as db:
        db.table("alerts").insert_all(rows)
    ids = [r["id"] for r in rows]
    with central.svc.ldb.transaction() as db:
        for alert_id in rng.sample(ids, 600):
            db.execute(
                "update alerts set state = 'acknowledged', "
                "acknowledged_at = created_at + ? where id = ?",
                [rng.random() * 3000, alert_id],
            )
        for alert_id in rng.sample(ids, 400):
            db.execute(
                "update alerts set state = 'rectification_requested', "
                "requested_at = created_at + ?, deadline = start + ? where id = ?",
                [rng.random() * 4000, rng.random() * 6 * DAY, alert_id],
            )
        for alert_id in rng.sample(ids, 200):
            db.execute(
                "update alerts set state = 'rectification_submitted', "
                "submitted_at = requested_at + ? where id = ? and requested_at is not null",
                [rng.random() * 9000, alert_id],
            )
        for alert_id in rng.sample(ids, 150):
            db.execute("update alerts set state = 'closed' where id = ?", [alert_id])
        for alert_id in rng.sample(ids, 80):  # across a day boundary, to another org or kind
            site, path = rng.choice(sites)
            db.execute(
                "update alerts set start = ?, org_path = ?, kind = 'smoking', station = ? "
                "where id = ?",
                [_start(rng), path, rng.choice(["wash", None]), alert_id],
            )
        for alert_id in rng.sample(ids, 60):
            db.execute("delete from alerts where id = ?", [alert_id])


def _scan_section(central: Central, scope: Scope, start: float, end: float) -> dict[str, Any]:
    where, args = scope_filter(scope)
    with central.svc.ldb.read() as db:
        groups = [dict(r) for r in db.query(SCAN_SQL.format(where=where), [end, *args, start, end])]
        orgs = {r["org_path"]: dict(r) for r in db.query(f"select * from orgs where {where}", args)}
    return _alert_section(groups, orgs, sum(g["overdue"] for g in groups))


def _scopes(central: Central) -> list[Scope]:
    with central.svc.ldb.read() as db:
        paths = [r[0] for r in db.execute("select org_path from orgs order by org_path")]
    return [Scope.everything(), *(Scope(p) for p in paths), Scope.nothing()]


def _periods(rng: random.Random) -> list[tuple[float, float]]:
    periods = [
        (T0 - 90 * DAY, T0 + 90 * DAY),  # everything, whole days
        (T0, T0 + DAYS * DAY),  # exactly the loaded days
        (T0 + 2 * DAY, T0 + 3 * DAY),  # one whole day
        (T0 + 2 * DAY, T0 + 2 * DAY + 1800),  # half an hour at midnight
        (T0 + 3 * DAY - 1800, T0 + 3 * DAY + 1800),  # half an hour across midnight
        (T0 + DAY - 0.001, T0 + 4 * DAY + 0.001),  # whole days and a sliver either side
        (T0 + 0.5, T0 + DAY / 2 + 0.25),  # bounds on alerts' own starts
        (T0 + 5 * DAY + 7, T0 + 6 * DAY - 7),  # within one day
        (T0 + 5 * DAY + 7, T0 + 6 * DAY + 7),  # across one midnight, no whole day
    ]
    for _ in range(12):
        a = T0 - DAY + rng.random() * (DAYS + 2) * DAY
        periods.append((a, a + rng.choice([1800.0, DAY, 1.5 * DAY, rng.random() * 8 * DAY])))
    return periods


async def test_rollup_report_equals_the_scan_of_every_alert(central: Central) -> None:
    rng = random.Random(7)
    _load(central, rng)
    scopes = _scopes(central)
    compared = 0
    for start, end in _periods(rng):
        for scope in scopes:
            expected = _scan_section(central, scope, start, end)
            got = build_report(central.svc.ldb, scope, start, end)["alerts"]
            assert got == expected, (scope, start, end)
            compared += expected["total"] > 0
    assert compared > 40  # most comparisons are of periods and scopes with alerts
    everything = _scan_section(central, Scope.everything(), T0 - DAY, T0 + 90 * DAY)
    assert everything["total"] == 840 and everything["overdue"] > 0
    assert set(everything["by_state"]) == {
        "new", "acknowledged", "rectification_requested", "rectification_submitted", "closed"
    }  # fmt: skip
    assert "None" in everything["by_station"] and "" in everything["by_station"]
    assert everything["mean_time_to_rectify_s"] is not None


async def test_rollup_kept_on_write_equals_one_filled_from_the_alerts(central: Central) -> None:
    _load(central, random.Random(11))
    postgres = is_postgres(central.svc.ldb.db)
    with central.svc.ldb.transaction() as db:
        kept = [tuple(r) for r in db.execute(ROLLUP_FROM_ALERTS_SQL).fetchall()]
        db.execute("delete from alert_days")
        db.execute(alert_days_fill_sql(postgres))
        filled = [tuple(r) for r in db.execute(ROLLUP_FROM_ALERTS_SQL).fetchall()]
    assert kept == filled and len(filled) > 100
