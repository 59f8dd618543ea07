"""What the live wall shows per camera: name, station, enterprise, online state, open alerts."""

from __future__ import annotations

import json
from typing import Any

from central.regulation.scope import Scope, scope_filter
from central.schema import LockedDb

# One row per camera; the open alerts come from the counter kept on write (no count here).
WALL_SQL = """
    select c.site_id, c.camera_id, c.name, c.station, c.org_path,
           o.name as enterprise, o.id as enterprise_id,
           st.state, st.since as state_since,
           coalesce(n.open, 0) as open_alerts
    from cameras c
    join sites s on s.id = c.site_id
    join orgs o on o.id = s.org_id
    left join camera_status st on st.site = c.site_id and st.camera = c.camera_id
    left join camera_open_alerts n on n.site_id = c.site_id and n.camera_id = c.camera_id
    where {where}
    order by o.name, c.site_id, c.camera_id
"""


def _wall_where(scope: Scope, under: str | None, station: str | None) -> tuple[str, list[Any]]:
    where, args = scope_filter(scope, "c.org_path")
    clauses, params = [where], list[Any](args)
    if under is not None:
        sub, sub_args = scope_filter(Scope(under), "c.org_path")
        clauses.append(sub)
        params += sub_args
    if station:
        clauses.append("c.station = ?")
        params.append(station)
    return " and ".join(clauses), params


def wall_cameras(
    ldb: LockedDb, scope: Scope, under: str | None = None, station: str | None = None
) -> list[dict[str, Any]]:
    """Cameras in scope (optionally under an org path, of one station), enterprise first."""
    where, params = _wall_where(scope, under, station)
    with ldb.read() as db:
        return [dict(r) for r in db.query(WALL_SQL.format(where=where), params)]


def wall_plan(ldb: LockedDb, scope: Scope) -> list[str]:
    """SQLite's query plan of the wall query (for checks that it stays indexed)."""
    where, params = _wall_where(scope, None, None)
    sql = WALL_SQL.format(where=where)
    with ldb.read() as db:
        return [str(r[3]) for r in db.execute(f"explain query plan {sql}", params).fetchall()]


def reported_uplinks(ldb: LockedDb, scope: Scope) -> dict[str, float | None]:
    """Each site's uplink rate as its last heartbeat reported it (bits/s; None if unknown)."""
    where, args = scope_filter(scope, "s.org_path")
    sql = (
        "select s.id, a.heartbeat from sites s left join agent_status a on a.site = s.id "
        f"where {where}"
    )
    out: dict[str, float | None] = {}
    with ldb.read() as db:
        rows = [dict(r) for r in db.query(sql, args)]
    for row in rows:
        try:
            beat = json.loads(row["heartbeat"]) if row["heartbeat"] else {}
        except ValueError:
            beat = {}
        rate = beat.get("uplink_bps")
        out[row["id"]] = float(rate) if isinstance(rate, int | float) else None
    return out
