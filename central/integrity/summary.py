"""What regulators see of a camera's footage integrity: anchored hours, audits, findings."""

from __future__ import annotations

from typing import Any

from central.regulation.scope import Scope, scope_filter
from central.schema import LockedDb


def camera_integrity(ldb: LockedDb, scope: Scope, site: str | None = None) -> list[dict[str, Any]]:
    """Per camera in the scope: anchored segments and hours, audits, last result, findings."""
    where, args = scope_filter(scope, "s.org_path")
    if site is not None:
        where += " and h.site = ?"
        args = [*args, site]
    sql = f"""
        select h.site as site_id, h.camera as camera_id, h.updated_at as last_anchor_at,
          (select count(*) from anchored_segments a where a.site = h.site
             and a.camera = h.camera and a.removed_at is null) as anchored_segments,
          (select coalesce(sum(a."end" - a.start), 0) / 3600.0 from anchored_segments a
             where a.site = h.site and a.camera = h.camera and a.removed_at is null)
             as anchored_hours,
          (select coalesce(sum(a.audited), 0) from anchored_segments a
             where a.site = h.site and a.camera = h.camera) as audited,
          (select max(a.last_audit_at) from anchored_segments a
             where a.site = h.site and a.camera = h.camera) as last_audit_at,
          (select count(*) from integrity_findings f where f.site = h.site
             and f.camera = h.camera) as findings,
          (select max(f.found_at) from integrity_findings f where f.site = h.site
             and f.camera = h.camera) as last_finding_at
        from chain_heads h join sites s on s.id = h.site
        where {where} order by h.site, h.camera"""
    with ldb.lock:
        cur = ldb.db.execute(sql, args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for row in rows:
            row["last_audit_result"] = _last_result(ldb, row)
    return rows


def _last_result(ldb: LockedDb, row: dict[str, Any]) -> str | None:
    """ "ok" or "tampered" by the latest audit of this camera's segments (None: never audited)."""
    if row["last_audit_at"] is None:
        return None
    found = ldb.db.execute(
        "select min(last_audit_ok) from anchored_segments where site = ? and camera = ? "
        "and last_audit_at = ?",
        [row["site_id"], row["camera_id"], row["last_audit_at"]],
    ).fetchone()
    return "ok" if found and found[0] == 1 else "tampered"
