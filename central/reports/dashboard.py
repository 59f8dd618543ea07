"""What the monitoring centre's big screen shows for one organisation of the caller's scope.

For the organisation in focus: its children (the next level down, or the enterprise's cameras)
with camera online/offline counts and open and overdue alerts; the daily alert trend and the
split by kind over recent days (days of the site's time zone); enterprise rankings by open
alerts, overdue rectifications and online rate; the latest alerts. Everything is read inside
the caller's scope (``scope_filter``) and then narrowed to the focus.

Recording complete: a camera whose recording had no gap in the last 24 hours. Central samples
each site's heartbeat every 5 minutes; the camera counts as complete when it has been sampled
for at least 24 hours, every sample of the last 24 hours found it recording (a segment ended
within 5 minutes of the heartbeat), no two of its samples in that time lay more than 10
minutes apart (lost heartbeats are a gap), and its last sample is at most 10 minutes old. The
per-camera record (first and last sample, last gap) is kept on write (`camera_recording`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from central.alerts.workflow import State
from central.regulation.capability import camera_sub_lane, heartbeat_of
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb

TREND_DAYS = 14
COMPLETE_WINDOW_S = 86400.0  # recording complete: no gap in this long
SAMPLE_FRESH_S = 600.0  # ... and sampled at most this long ago
RANK_SIZE = 10
LATEST = 15


@dataclass(frozen=True)
class Focus:
    """The organisation the screen shows (None: the whole tree, for an administrator)."""

    org: dict[str, Any] | None

    @property
    def path(self) -> str | None:
        """Its org path, or None for the whole tree."""
        return None if self.org is None else str(self.org["org_path"])


def day_starts(now: float, timezone: str, days: int) -> list[tuple[str, float]]:
    """The last `days` local days up to today: (YYYY-MM-DD, UTC start), oldest first."""
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        out.append((day.isoformat(), start.timestamp()))
    return out


def recording_complete(cam: dict[str, Any], now: float) -> bool:
    """True if the camera's recording had no gap in the last 24 h (see the module text)."""
    first, last, gap = cam.get("first_ts"), cam.get("last_ts"), cam.get("last_gap_ts")
    if first is None or last is None:
        return False
    since = now - COMPLETE_WINDOW_S
    return bool(first <= since and last >= now - SAMPLE_FRESH_S and (gap is None or gap <= since))


def _under(scope: Scope, focus: Focus, column: str) -> tuple[str, list[Any]]:
    where, args = scope_filter(scope, column)
    if focus.path is not None:
        sub, sub_args = scope_filter(Scope(focus.path), column)
        where, args = f"{where} and {sub}", [*args, *sub_args]
    return where, args


def build_dashboard(
    ldb: LockedDb, scope: Scope, focus: Focus, now: float, timezone: str
) -> dict[str, Any]:
    """The big screen's data for `focus` (already checked to lie in `scope`)."""
    days = day_starts(now, timezone, TREND_DAYS)
    org_where, org_args = _under(scope, focus, "org_path")
    cam_where, cam_args = _under(scope, focus, "c.org_path")
    # A read-only connection: the big screen never waits on (or holds up) ingest's writes.
    with ldb.read() as db:
        orgs = [dict(r) for r in db.query(f"select * from orgs where {org_where}", org_args)]
        cameras = [
            dict(r)
            for r in db.query(
                "select c.site_id, c.camera_id, c.name, c.station, c.org_path, st.state, "
                "r.first_ts, r.last_ts, r.last_gap_ts "
                "from cameras c left join camera_status st "
                "on st.site = c.site_id and st.camera = c.camera_id "
                "left join camera_recording r "
                "on r.site_id = c.site_id and r.camera_id = c.camera_id "
                f"where {cam_where}",
                cam_args,
            )
        ]
        for cam in cameras:
            cam["complete"] = recording_complete(cam, now)
        if focus.org is not None and focus.org["level"] == "enterprise":
            # An enterprise's children are its cameras: each with its sub lane recorder.
            sites = sorted({c["site_id"] for c in cameras})
            marks = ", ".join("?" for _ in sites)
            beats = {
                r["site"]: heartbeat_of(r["heartbeat"])
                for r in db.query(
                    f"select site, heartbeat from agent_status where site in ({marks})", sites
                )
            } if sites else {}  # fmt: skip
            for cam in cameras:
                cam["sub_lane"] = camera_sub_lane(beats.get(cam["site_id"], {}), cam["camera_id"])
        trail = _breadcrumb(db, scope, focus)
        alerts = [
            dict(r)
            for r in db.query(
                "select id, org_path, site_id, camera_id, kind, station, severity, state, "
                f"start, deadline from alerts where {org_where} and "
                "(state != ? or start >= ?) order by start desc",
                [*org_args, State.CLOSED.value, days[0][1]],
            )
        ]
    return {
        "focus": _focus_info(focus),
        "breadcrumb": trail,
        "children": _children(focus, orgs, cameras, alerts, now),
        "totals": _counts(cameras, alerts, now),
        "trend": _trend(alerts, days),
        "by_kind": dict(Counter(a["kind"] for a in alerts if a["start"] >= days[0][1])),
        "rankings": _rankings(orgs, cameras, alerts, now),
        "latest": _latest(orgs, alerts),
        "timezone": timezone,
        "generated_at": now,
    }


def _breadcrumb(db: Any, scope: Scope, focus: Focus) -> list[dict[str, Any]]:
    """The focus and its ancestors that the caller may open, top first."""
    if focus.path is None:
        return []
    ids = [int(x) for x in focus.path.strip("/").split("/")]
    rows = db.query(
        f"select id, name, level, org_path from orgs where id in ({', '.join('?' for _ in ids)})",
        ids,
    )
    seen = {r["id"]: dict(r) for r in rows if in_scope(scope, r["org_path"])}
    return [{k: seen[i][k] for k in ("id", "name", "level")} for i in ids if i in seen]


def _focus_info(focus: Focus) -> dict[str, Any] | None:
    if focus.org is None:
        return None
    keep = ("id", "name", "level", "org_path", "parent_id", "enterprise_type")
    return {k: focus.org.get(k) for k in keep}


def _is_open(alert: dict[str, Any]) -> bool:
    return bool(alert["state"] != State.CLOSED.value)


def _is_overdue(alert: dict[str, Any], now: float) -> bool:
    return (
        alert["state"] == State.RECTIFICATION_REQUESTED.value
        and alert["deadline"] is not None
        and alert["deadline"] < now
    )


def _counts(
    cameras: list[dict[str, Any]], alerts: list[dict[str, Any]], now: float
) -> dict[str, int]:
    online = sum(1 for c in cameras if c["state"] == "online")
    return {
        "cameras": len(cameras),
        "online": online,
        "offline": len(cameras) - online,
        "recording_complete": sum(1 for c in cameras if c.get("complete")),
        "open_alerts": sum(1 for a in alerts if _is_open(a)),
        "overdue": sum(1 for a in alerts if _is_overdue(a, now)),
    }


def _children(
    focus: Focus,
    orgs: list[dict[str, Any]],
    cameras: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    now: float,
) -> list[dict[str, Any]]:
    """The next level down with its counts; an enterprise's children are its cameras."""
    if focus.org is not None and focus.org["level"] == "enterprise":
        return [
            {
                "kind": "camera",
                "name": c["name"],
                "site_id": c["site_id"],
                "camera_id": c["camera_id"],
                "station": c["station"],
                "state": c["state"] or "unknown",
                "sub_lane": c.get("sub_lane"),
                **_counts(
                    [c],
                    [
                        a
                        for a in alerts
                        if a["site_id"] == c["site_id"] and a["camera_id"] == c["camera_id"]
                    ],
                    now,
                ),
            }
            for c in cameras
        ]
    parent = None if focus.org is None else focus.org["id"]
    ids = {o["id"] for o in orgs}
    # An admin's top: orgs without a parent; a scoped user's top: orgs whose parent is unseen.
    kids = [
        o
        for o in orgs
        if (o["parent_id"] == parent)
        or (parent is None and focus.org is None and o["parent_id"] not in ids)
    ]
    out = []
    for org in sorted(kids, key=lambda o: o["name"]):
        path = org["org_path"]
        mine_c = [c for c in cameras if c["org_path"].startswith(path)]
        mine_a = [a for a in alerts if a["org_path"].startswith(path)]
        enterprises = sum(
            1 for o in orgs if o["level"] == "enterprise" and o["org_path"].startswith(path)
        )
        out.append(
            {
                "kind": "org",
                "id": org["id"],
                "name": org["name"],
                "level": org["level"],
                "enterprises": enterprises,
                **_counts(mine_c, mine_a, now),
            }
        )
    return out


def _trend(alerts: list[dict[str, Any]], days: list[tuple[str, float]]) -> dict[str, Any]:
    starts = [start for _day, start in days]
    total = [0] * len(days)
    critical = [0] * len(days)
    for a in alerts:
        if a["start"] < starts[0]:
            continue
        i = max(i for i, s in enumerate(starts) if a["start"] >= s)
        total[i] += 1
        if a["severity"] == "critical":
            critical[i] += 1
    return {"days": [day for day, _start in days], "total": total, "critical": critical}


def _rankings(
    orgs: list[dict[str, Any]],
    cameras: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    now: float,
) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for org in orgs:
        if org["level"] != "enterprise":
            continue
        path = org["org_path"]
        cams = [c for c in cameras if c["org_path"] == path]
        mine = [a for a in alerts if a["org_path"] == path]
        online = sum(1 for c in cams if c["state"] == "online")
        rows.append(
            {
                "id": org["id"],
                "name": org["name"],
                "open_alerts": sum(1 for a in mine if _is_open(a)),
                "overdue": sum(1 for a in mine if _is_overdue(a, now)),
                "cameras": len(cams),
                "online_rate": online / len(cams) if cams else None,
            }
        )
    by_open = sorted((r for r in rows if r["open_alerts"]), key=lambda r: -r["open_alerts"])
    by_overdue = sorted((r for r in rows if r["overdue"]), key=lambda r: -r["overdue"])
    rated = [r for r in rows if r["online_rate"] is not None]
    rated.sort(key=lambda r: float(r["online_rate"]))
    return {
        "open_alerts": by_open[:RANK_SIZE],
        "overdue": by_overdue[:RANK_SIZE],
        "online_rate": rated[:RANK_SIZE],  # the worst first: who needs a call
    }


def _latest(orgs: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {o["org_path"]: o["name"] for o in orgs}
    keep = ("id", "kind", "station", "severity", "state", "start", "site_id", "camera_id")
    return [
        {**{k: a[k] for k in keep}, "enterprise": names.get(a["org_path"], a["site_id"])}
        for a in alerts[:LATEST]
    ]
