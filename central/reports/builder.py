"""Reports per organisation subtree and period: alerts, response times, online, recording.

Definitions (they are what the numbers mean, so they are written down here):
- alerts counted are those whose event started in [from, to);
- time to acknowledge: first acknowledgement (or rectification request) minus alert creation;
- time to rectify: first rectification submission minus first rectification request;
- camera online rate: online seconds / period seconds over the cameras, from state changes;
- recording completeness: hours recorded / hours expected, from sampled heartbeats (a camera
  is recording at a heartbeat when its last segment ended shortly before it), summed from
  the hourly rollups (raw samples are kept only for a short window, for partial hours);
- retention compliance: sites whose latest heartbeat says the disk holds fewer days than the
  90-day duty are listed as non-compliant.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from central.regulation.scope import Scope, scope_filter
from central.reports.arithmetic import expected_seconds, online_seconds, ratio
from central.reports.recording import recorded_section
from central.schema import LockedDb
from central.storage.pg import is_postgres

RETENTION_DUTY_DAYS = 90.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def build_report(ldb: LockedDb, scope: Scope, start: float, end: float) -> dict[str, Any]:
    """The report of everything in `scope` (already narrowed to the chosen org) for [start, end).

    Every figure is an aggregate in SQL or read from the hourly rollups, on a read-only
    connection: a report over a city's quarter never holds the lock ingest writes under.
    """
    where, args = scope_filter(scope)
    with ldb.read() as db:
        groups = _alert_groups(db, scope, start, end)
        overdue = db.execute(OVERDUE_SQL.format(where=where), [end, *args, start, end])
        overdue_n = int(overdue.fetchone()[0])
        orgs = {r["org_path"]: dict(r) for r in db.query(f"select * from orgs where {where}", args)}
        cameras = [dict(r) for r in db.query(f"select * from cameras where {where}", args)]
        sites = [dict(r) for r in db.query(f"select * from sites where {where}", args)]
        online = _online(db, scope, cameras, start, end)
        recorded = recorded_section(db, scope, cameras, start, end)
        retention = _retention(db, scope, sites, end)
    return {
        "period": {"from": _iso(start), "to": _iso(end)},
        "scope": scope.root or "/",
        "alerts": _alert_section(groups, orgs, overdue_n),
        "cameras": {"count": len(cameras), **online},
        "recording": recorded,
        "retention": retention,
    }


# The period's alerts, grouped; the sections are sums of these groups. Whole UTC days come
# from the daily rollup kept on write (central/schema/health.py), the partial first and last
# days from the alerts themselves (by their start).
ALERT_GROUPS_SQL = """
    select org_path, kind, station, state, count(*) as n,
           sum(acknowledged_at - created_at) as ack_sum, count(acknowledged_at) as ack_n,
           sum(submitted_at - requested_at) as fix_sum,
           count(submitted_at - requested_at) as fix_n
    from alerts where {where} and start >= ? and start < ?
    group by org_path, kind, station, state
"""
ALERT_DAYS_SQL = """
    select org_path, kind, case when station_set = 1 then station end as station, state,
           sum(n) as n, sum(ack_sum) as ack_sum, sum(ack_n) as ack_n,
           sum(fix_sum) as fix_sum, sum(fix_n) as fix_n
    from alert_days where {where} and {day} >= ? and {day} < ?
    group by org_path, kind, alert_days.station, station_set, state
    having sum(n) > 0
"""
# (On SQLite `+day`: not by day, whose rows would then need a sort into groups; a period is
# most of the rollup's days, read in group order from its covering index. PostgreSQL's
# planner cannot estimate `+day` and then sorts on disk: it gets plain `day`.)
# Alerts of the period awaiting rectification past a deadline before its end (the index on
# state and deadline: only those alerts are read).
OVERDUE_SQL = """
    select count(*) from alerts
    where state = 'rectification_requested' and deadline is not null and deadline < ?
      and {where} and start >= ? and start < ?
"""
DAY_S = 86400


def _alert_groups(db: Any, scope: Scope, start: float, end: float) -> list[dict[str, Any]]:
    """The groups of ALERT_GROUPS_SQL over [start, end): whole days from the rollup."""
    where, args = scope_filter(scope)
    first_day = math.ceil(start / DAY_S) * DAY_S
    last_day = math.floor(end / DAY_S) * DAY_S
    spans = [(start, end)]
    groups: list[dict[str, Any]] = []
    if first_day < last_day:
        day = "day" if is_postgres(db) else "+day"
        sql = ALERT_DAYS_SQL.format(where=where, day=day)
        days = db.query(sql, [*args, first_day, last_day])
        groups.extend(dict(r) for r in days)
        spans = [(start, first_day), (last_day, end)]
    # By start, whatever the scope: a day's alerts are few, a city's are all of them.
    where, args = scope_filter(scope, indexed=False)
    sql = ALERT_GROUPS_SQL.format(where=where)
    for lo, hi in spans:
        if lo < hi:
            groups.extend(dict(r) for r in db.query(sql, [*args, lo, hi]))
    return groups


def _ranked(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _alert_section(
    groups: list[dict[str, Any]], orgs: dict[str, dict[str, Any]], overdue: int
) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {k: Counter() for k in ("kind", "station", "state", "org_path")}
    for g in groups:
        for key, counts in by.items():
            counts[str(g[key])] += g["n"]
    by_enterprise = []
    for path, n in _ranked(by["org_path"]).items():
        org = orgs.get(path)
        by_enterprise.append(
            {"org_id": org["id"] if org else None, "name": org["name"] if org else path, "count": n}
        )
    ack_n = sum(g["ack_n"] for g in groups)
    fix_n = sum(g["fix_n"] for g in groups)
    mtta = sum(g["ack_sum"] or 0.0 for g in groups) / ack_n if ack_n else None
    mttr = sum(g["fix_sum"] or 0.0 for g in groups) / fix_n if fix_n else None
    return {
        "total": sum(g["n"] for g in groups),
        "by_kind": _ranked(by["kind"]),
        "by_station": _ranked(by["station"]),
        "by_state": _ranked(by["state"]),
        "by_enterprise": by_enterprise,
        "mean_time_to_acknowledge_s": None if mtta is None else round(mtta, 1),
        "mean_time_to_rectify_s": None if mttr is None else round(mttr, 1),
        "overdue": overdue,
    }


# The state of each camera in scope at a moment: its last change before it (one index seek
# per camera, in one statement: a report over a city's thousands of cameras is one round trip).
STATE_BEFORE_SQL = """
    select c.site_id, c.camera_id,
           (select l.state from camera_state_log l
            where l.site = c.site_id and l.camera = c.camera_id and l.since < ?
            order by l.since desc, l.id desc limit 1) as state
    from cameras c where {where}
"""
# The state changes of the cameras in scope in a period, camera by camera.
STATE_CHANGES_SQL = """
    select l.site, l.camera, l.since, l.state
    from camera_state_log l join cameras c on c.site_id = l.site and c.camera_id = l.camera
    where {where} and l.since >= ? and l.since < ?
    order by l.site, l.camera, l.since, l.id
"""


def _online(
    db: Any, scope: Scope, cameras: list[dict[str, Any]], start: float, end: float
) -> dict[str, Any]:
    """Online rate of `cameras` (those in `scope`) over [start, end), from state changes."""
    where, args = scope_filter(scope, "c.org_path")
    before = {
        (r[0], r[1]): r[2] for r in db.execute(STATE_BEFORE_SQL.format(where=where), [start, *args])
    }
    changes: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for r in db.execute(STATE_CHANGES_SQL.format(where=where), [*args, start, end]):
        changes.setdefault((r[0], r[1]), []).append((r[2], r[3]))
    total_online = total_period = 0.0
    for cam in cameras:
        key = (cam["site_id"], cam["camera_id"])
        period = expected_seconds(cam["created_at"], start, end)
        lo = end - period
        total_online += online_seconds(changes.get(key, []), lo, end, before.get(key))
        total_period += period
    return {"online_rate": ratio(total_online, total_period)}


# Each site's retention at a moment: its last hourly rollup before it that says (one seek
# per site, in one statement).
RETENTION_SQL = """
    select s.id,
           (select h.retention_days from health_hourly h
            where h.site_id = s.id and h.hour < ? and h.retention_days is not null
            order by h.hour desc limit 1) as days
    from sites s where {where}
"""


def _retention(db: Any, scope: Scope, sites: list[dict[str, Any]], end: float) -> dict[str, Any]:
    where, args = scope_filter(scope, "s.org_path")
    before = math.ceil(end)  # an hour (an integer) is before `end` when it is before this
    last = {r[0]: r[1] for r in db.execute(RETENTION_SQL.format(where=where), [before, *args])}
    below, unknown = [], []
    for site in sites:
        days = last.get(site["id"])
        if days is None:
            unknown.append(site["id"])
        elif days < RETENTION_DUTY_DAYS:
            below.append({"site": site["id"], "name": site["name"], "days": round(days, 1)})
    known = len(sites) - len(unknown)
    return {
        "duty_days": RETENTION_DUTY_DAYS,
        "sites": len(sites),
        "sites_below_duty": below,
        "sites_unknown": unknown,
        "compliance_rate": ratio(known - len(below), known),
    }


# A text cell starting with one of these is a formula to spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV value a spreadsheet program shows as written: text that would start a formula
    (a station or name the edge box chose, a user's words) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _SafeWriter:
    """csv.writer whose text cells never start a formula."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV rows `section,key,value` (one figure a row, easy to pivot)."""
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(["section", "key", "value"])
    writer.writerow(["period", "from", report["period"]["from"]])
    writer.writerow(["period", "to", report["period"]["to"]])
    a = report["alerts"]
    writer.writerow(["alerts", "total", a["total"]])
    for section in ("by_kind", "by_station", "by_state"):
        for key, n in a[section].items():
            writer.writerow([f"alerts.{section}", key, n])
    for ent in a["by_enterprise"]:
        writer.writerow(["alerts.by_enterprise", ent["name"], ent["count"]])
    for key in ("mean_time_to_acknowledge_s", "mean_time_to_rectify_s", "overdue"):
        writer.writerow(["alerts", key, "" if a[key] is None else a[key]])
    writer.writerow(["cameras", "count", report["cameras"]["count"]])
    writer.writerow(["cameras", "online_rate", _blank(report["cameras"]["online_rate"])])
    for key, value in report["recording"].items():
        writer.writerow(["recording", key, _blank(value)])
    r = report["retention"]
    writer.writerow(["retention", "sites", r["sites"]])
    writer.writerow(["retention", "compliance_rate", _blank(r["compliance_rate"])])
    for site in r["sites_below_duty"]:
        writer.writerow(["retention.below_duty", site["site"], site["days"]])
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value
