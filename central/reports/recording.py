"""Recording completeness of a report from the hourly health rollups (and raw edge hours).

Whole hours inside the period are summed from `health_hourly` (kept by a trigger on every
heartbeat sample), and whole UTC days among them from `health_days` (kept by a trigger on
every write of `health_hourly`). A period that does not start or end on the hour takes the
partial hours from the raw samples while they are kept, and pro rata from the rollup once
they are gone.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from central.regulation.scope import Scope, scope_filter
from central.reports.arithmetic import expected_seconds, ratio, recorded_seconds

HOUR = 3600.0
HOUR_S = 3600
DAY_S = 86400
# A sample vouches for at most this long before it (see central.alerts.hooks.MAX_CREDIT_S).
MAX_CREDIT_S = 600.0


def recorded_section(
    db: Any, scope: Scope, cameras: list[dict[str, Any]], start: float, end: float
) -> dict[str, Any]:
    """hours_recorded, hours_expected and completeness of `cameras` (those in `scope`) over
    [start, end). Each read covers every site of the scope at once (one round trip each,
    not one per site)."""
    by_site: dict[str, list[str]] = {}
    expected = 0.0
    for cam in cameras:
        by_site.setdefault(cam["site_id"], []).append(cam["camera_id"])
        expected += expected_seconds(cam["created_at"], start, end)
    where, args = scope_filter(scope, "c.org_path")
    sites = Sites(f"select c.site_id from cameras c where {where}", args)
    # Whole hours as integers, as the column holds them: PostgreSQL compares a bigint column
    # with a float parameter as floats, which no index serves and the planner cannot estimate.
    lo = math.ceil(start / HOUR) * HOUR_S
    hi = math.floor(end / HOUR) * HOUR_S
    if lo >= hi:
        recorded = _partial(db, sites, by_site, start, end)
    else:
        recorded = _whole_hours(db, sites, by_site, lo, hi)
        if start < lo:
            recorded += _partial(db, sites, by_site, start, lo)
        if hi < end:
            recorded += _partial(db, sites, by_site, hi, end)
    return {
        "hours_recorded": round(recorded / HOUR, 2),
        "hours_expected": round(expected / HOUR, 2),
        "completeness": ratio(recorded, expected),
    }


def _whole_hours(db: Any, sites: Sites, by_site: dict[str, list[str]], lo: int, hi: int) -> float:
    """Recorded seconds in the whole hours [lo, hi) of every site: the whole UTC days among
    them from the daily rollup (a row per site and day), the hours either side from the
    hourly one; in one statement."""
    first_day = -(-lo // DAY_S) * DAY_S
    last_day = hi // DAY_S * DAY_S
    spans = [("health_hourly", "hour", lo, hi)]
    if first_day < last_day:
        spans = [
            ("health_days", "day", first_day, last_day),
            ("health_hourly", "hour", lo, first_day),
            ("health_hourly", "hour", last_day, hi),
        ]
    parts: list[str] = []
    args: list[Any] = []
    for table, column, a, b in spans:
        if a < b:
            parts.append(
                f"select site_id, recorded_s from {table} "
                f"where site_id in ({sites.sql}) and {column} >= ? and {column} < ?"
            )
            args += [*sites.args, a, b]
    sql = (
        "select site_id, coalesce(sum(recorded_s), 0) "
        f"from ({' union all '.join(parts)}) as r group by site_id"
    )
    return sum(float(r[1]) for r in db.execute(sql, args) if r[0] in by_site)


class Sites(NamedTuple):
    """A subquery of the site ids in scope, and its parameters."""

    sql: str
    args: list[Any]


def _partial(
    db: Any, sites: Sites, by_site: dict[str, list[str]], start: float, end: float
) -> float:
    """Recorded seconds in [start, end), inside one hour, of every site's cameras: raw
    samples, else the site's hour pro rata."""
    samples: dict[str, list[tuple[float, float, dict[str, Any]]]] = {}
    for r in db.execute(
        "select site_id, ts, interval_s, cameras from heartbeat_samples "
        f"where site_id in ({sites.sql}) and ts > ? and ts < ? order by site_id, ts",
        [*sites.args, start, end + MAX_CREDIT_S],
    ):
        samples.setdefault(r[0], []).append((r[1], r[2], json.loads(r[3])))
    hour = math.floor(start / HOUR) * HOUR_S
    hourly = {
        r[0]: float(r[1])
        for r in db.execute(
            f"select site_id, recorded_s from health_hourly where site_id in ({sites.sql}) "
            "and hour = ?",
            [*sites.args, hour],
        )
    }
    total = 0.0
    for site, cams in by_site.items():
        got = samples.get(site)
        if got:
            total += sum(
                recorded_seconds(
                    ((ts, iv, bool(flags.get(camera))) for ts, iv, flags in got), start, end
                )
                for camera in cams
            )
        elif site in hourly:
            total += hourly[site] * (end - start) / HOUR
    return total
