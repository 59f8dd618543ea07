"""On-site inspections of enterprises: the result and rating regulators record after a visit.

The latest one is what a canteen's public kitchen page shows (result of the routine
supervision check and the dynamic rating, as the canteen plan's 共治 module asks).
"""

from __future__ import annotations

import time
from typing import Any, Literal, get_args

from central.errors import InvalidInputError, NotFoundError
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb

# 符合 / 基本符合 / 不符合: the routine supervision check's verdict.
Result = Literal["compliant", "basically_compliant", "non_compliant"]
# 优秀 / 良好 / 一般: the dynamic rating shown on the door (smiling, plain, frowning faces).
Rating = Literal["excellent", "good", "fair"]
RESULTS: tuple[str, ...] = get_args(Result)
RATINGS: tuple[str, ...] = get_args(Rating)


class Inspections:
    """Record and read inspections within a scope."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    def record(
        self,
        scope: Scope,
        org_id: int,
        *,
        result: str,
        rating: str | None,
        inspected_at: float,
        note: str,
        inspector_id: int,
    ) -> dict[str, Any]:
        """Store an inspection of the enterprise `org_id` (in scope); returns the row."""
        if result not in RESULTS:
            raise InvalidInputError(f"result must be one of {', '.join(RESULTS)}")
        if rating is not None and rating not in RATINGS:
            raise InvalidInputError(f"rating must be one of {', '.join(RATINGS)}")
        now = time.time()
        if inspected_at > now + 300:
            raise InvalidInputError("inspected_at lies in the future")
        with self._ldb.transaction() as db:
            org = list(db.query("select org_path, level from orgs where id = ?", [org_id]))
            if not org or not in_scope(scope, org[0]["org_path"]):
                raise NotFoundError(f"organisation {org_id} not found")
            if org[0]["level"] != "enterprise":
                raise InvalidInputError("only an enterprise is inspected")
            row = {
                "org_id": org_id,
                "org_path": org[0]["org_path"],
                "inspected_at": inspected_at,
                "result": result,
                "rating": rating,
                "note": note,
                "inspector_id": inspector_id,
                "created_at": now,
            }
            pk = db.table("inspections").insert(row).last_pk
        return {"id": pk, **row}

    def list_for(self, scope: Scope, org_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """Inspections of one enterprise in scope, newest first; NotFoundError outside it."""
        where, args = scope_filter(scope)
        with self._ldb.read() as db:
            org = db.execute("select org_path from orgs where id = ?", [org_id]).fetchone()
            if org is None or not in_scope(scope, org[0]):
                raise NotFoundError(f"organisation {org_id} not found")
            rows = db.execute(
                f"select id, org_id, inspected_at, result, rating, note from inspections "
                f"where org_id = ? and {where} order by inspected_at desc limit ?",
                [org_id, *args, limit],
            ).fetchall()
        keys = ("id", "org_id", "inspected_at", "result", "rating", "note")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def latest_public(db: Any, org_id: int) -> dict[str, Any] | None:
    """The newest inspection of `org_id` as the public sees it (no note, no inspector)."""
    row = db.execute(
        "select inspected_at, result, rating from inspections where org_id = ? "
        "order by inspected_at desc, id desc limit 1",
        [org_id],
    ).fetchone()
    if row is None:
        return None
    return {"inspected_at": row[0], "result": row[1], "rating": row[2]}
