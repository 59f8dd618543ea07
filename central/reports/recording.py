"""Recording completeness of a report from the hourly health rollups (and raw edge hours).

Whole hours inside the period are summed from `health_hourly` (kept by a trigger on every
heartbeat sample). A period that does not start or end on the hour takes the partial hours
from the raw samples while they are kept, and pro rata from the rollup once they are gone.
"""

from __future__ import annotations

import json
import math
from typing import Any

from central.reports.arithmetic import expected_seconds, ratio, recorded_seconds

HOUR = 3600.0
# A sample vouches for at most this long before it (see central.alerts.hooks.MAX_CREDIT_S).
MAX_CREDIT_S = 600.0


def recorded_section(
    db: Any, cameras: list[dict[str, Any]], start: float, end: float
) -> dict[str, Any]:
    """hours_recorded, hours_expected and completeness of `cameras` over [start, end)."""
    by_site: dict[str, list[str]] = {}
    expected = 0.0
    for cam in cameras:
        by_site.setdefault(cam["site_id"], []).append(cam["camera_id"])
        expected += expected_seconds(cam["created_at"], start, end)
    lo = math.ceil(start / HOUR) * HOUR
    hi = math.floor(end / HOUR) * HOUR
    recorded = 0.0
    for site, cams in by_site.items():
        if lo >= hi:
            recorded += _partial(db, site, cams, start, end)
            continue
        row = db.execute(
            "select coalesce(sum(recorded_s), 0) from health_hourly "
            "where site_id = ? and hour >= ? and hour < ?",
            [site, lo, hi],
        ).fetchone()
        recorded += float(row[0])
        if start < lo:
            recorded += _partial(db, site, cams, start, lo)
        if hi < end:
            recorded += _partial(db, site, cams, hi, end)
    return {
        "hours_recorded": round(recorded / HOUR, 2),
        "hours_expected": round(expected / HOUR, 2),
        "completeness": ratio(recorded, expected),
    }


def _partial(db: Any, site: str, cams: list[str], start: float, end: float) -> float:
    """Recorded seconds in [start, end), inside one hour: raw samples, else the hour pro rata."""
    samples = [
        (r[0], r[1], json.loads(r[2]))
        for r in db.execute(
            "select ts, interval_s, cameras from heartbeat_samples "
            "where site_id = ? and ts > ? and ts < ? order by ts",
            [site, start, end + MAX_CREDIT_S],
        )
    ]
    if samples:
        return sum(
            recorded_seconds(
                ((ts, iv, bool(flags.get(camera))) for ts, iv, flags in samples), start, end
            )
            for camera in cams
        )
    hour = math.floor(start / HOUR) * HOUR
    row = db.execute(
        "select recorded_s from health_hourly where site_id = ? and hour = ?", [site, hour]
    ).fetchone()
    return float(row[0]) * (end - start) / HOUR if row else 0.0
