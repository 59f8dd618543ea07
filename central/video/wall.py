"""What the live wall shows per camera: name, station, enterprise, online state, open alerts."""

from __future__ import annotations

import json
from typing import Any

from central.regulation.scope import Scope, scope_filter
from central.schema import LockedDb

_OPEN = ("closed",)


def wall_cameras(
    ldb: LockedDb, scope: Scope, under: str | None = None, station: str | None = None
) -> list[dict[str, Any]]:
    """Cameras in scope (optionally under an org path, of one station), enterprise first."""
    where, args = scope_filter(scope, "c.org_path")
    clauses, params = [where], list[Any](args)
    if under is not None:
        sub, sub_args = scope_filter(Scope(under), "c.org_path")
        clauses.append(sub)
        params += sub_args
    if station:
        clauses.append("c.station = ?")
        params.append(station)
    sql = f"""
        select c.site_id, c.camera_id, c.name, c.station, c.org_path,
               o.name as enterprise, o.id as enterprise_id,
               st.state, st.since as state_since,
               (select count(*) from alerts a where a.site_id = c.site_id
                  and a.camera_id = c.camera_id and a.state not in (?)) as open_alerts
        from cameras c
        join sites s on s.id = c.site_id
        join orgs o on o.id = s.org_id
        left join camera_status st on st.site = c.site_id and st.camera = c.camera_id
        where {" and ".join(clauses)}
        order by o.name, c.site_id, c.camera_id
    """
    with ldb.lock:
        return [dict(r) for r in ldb.db.query(sql, [*_OPEN, *params])]


def reported_uplinks(ldb: LockedDb, scope: Scope) -> dict[str, float | None]:
    """Each site's uplink rate as its last heartbeat reported it (bits/s; None if unknown)."""
    where, args = scope_filter(scope, "s.org_path")
    sql = (
        "select s.id, a.heartbeat from sites s left join agent_status a on a.site = s.id "
        f"where {where}"
    )
    out: dict[str, float | None] = {}
    with ldb.lock:
        rows = [dict(r) for r in ldb.db.query(sql, args)]
    for row in rows:
        try:
            beat = json.loads(row["heartbeat"]) if row["heartbeat"] else {}
        except ValueError:
            beat = {}
        rate = beat.get("uplink_bps")
        out[row["id"]] = float(rate) if isinstance(rate, int | float) else None
    return out
