"""Reading the audit log in pages: filters, a cursor instead of offsets, a bounded scan.

Every page walks one index newest first (the actor's, the action's, an exact target's, or
time's) and examines at most `scan_limit` entries, whatever the other filters; the page
ends where the walk stopped, and its cursor continues from there. No request counts or
skips the whole table, so a page costs the same with ten entries or ten million.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from central.errors import InvalidInputError
from central.regulation.scope import Scope, in_scope
from central.schema import LockedDb
from central.storage.pg import is_postgres

SCAN_LIMIT = 5000
PAGE_MAX = 1000


@dataclass(frozen=True)
class AuditFilter:
    """What a reader looks for; None (or "") means any."""

    actor: str | None = None  # exact user name
    action: str | None = None  # exact action
    target: str | None = None  # exact ("webhook:3") or a kind of target ("webhook")
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    text: str | None = None  # case-insensitive, in user, action, target, address or detail


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last entry examined, newest-first order (time, then id)."""

    ts: float
    id: int

    def encode(self) -> str:
        """The cursor as the API hands it out: ``"<ts>:<id>"``."""
        return f"{self.ts!r}:{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor handed out earlier; InvalidInputError naming the field otherwise."""
        ts, sep, ident = text.partition(":")
        try:
            cursor = cls(float(ts), int(ident))
        except ValueError:
            cursor = None
        if not sep or cursor is None or cursor.ts != cursor.ts:  # NaN is not a place
            raise InvalidInputError(f"before: not a cursor of this log: {text!r}")
        return cursor


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first, and where to continue (None: nothing older is left)."""

    items: list[dict[str, Any]]
    next: Cursor | None
    scanned: int
    partial: bool  # the scan limit ended the page before it was full

    def as_json(self, limit: int) -> dict[str, Any]:
        """The API's shape of the page."""
        return {
            "items": self.items,
            "limit": limit,
            "next": self.next.encode() if self.next else None,
            "scanned": self.scanned,
            "partial": self.partial,
        }


def _driver(f: AuditFilter) -> tuple[str, str | None, str | None]:
    """(index, column, value) the walk follows: the most selective exact filter given."""
    if f.target and ":" in f.target:
        return "idx_audit_target_ts", "target", f.target
    if f.actor:
        return "idx_audit_username_ts", "username", f.actor
    if f.action:
        return "idx_audit_action_ts", "action", f.action
    return "idx_audit_log_ts", None, None


def walk_sql(
    f: AuditFilter, cursor: Cursor | None, postgres: bool = False
) -> tuple[str, list[Any]]:
    """The one query of a page: one index, newest first, nothing but index conditions.

    SQLite is told the index (`indexed by`); PostgreSQL, which has no such hint, picks it
    from the same conditions and order."""
    index, column, value = _driver(f)
    clauses, params = [], list[Any]()
    if column is not None:
        clauses.append(f"{column} = ?")
        params.append(value)
    if f.since is not None:
        clauses.append("ts >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("ts < ?")
        params.append(f.until)
    if cursor is not None:
        clauses.append("ts <= ?")
        params.append(cursor.ts)
    where = " and ".join(clauses) or "1 = 1"
    hint = "" if postgres else f" indexed by {index}"
    sql = f"select * from audit_log{hint} where {where} order by ts desc, id desc limit ?"
    return sql, params


def matches(row: dict[str, Any], f: AuditFilter, scope: Scope) -> bool:
    """True if an entry passes every filter and lies in the reader's scope."""
    if scope.root is not None and not in_scope(scope, row["org_path"]):
        return False
    if f.actor and row["username"] != f.actor:
        return False
    if f.action and row["action"] != f.action:
        return False
    target = row["target"] or ""
    if f.target and target != f.target and not target.startswith(f"{f.target}:"):
        return False
    if f.text:
        hay = "\n".join(str(row[k] or "") for k in ("username", "action", "target", "ip", "detail"))
        if f.text.casefold() not in hay.casefold():
            return False
    return True


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "detail": json.loads(row["detail"] or "{}")}


class AuditSearch:
    """Pages of the audit log for one reader."""

    def __init__(self, ldb: LockedDb, scan_limit: int = SCAN_LIMIT) -> None:
        self._ldb = ldb
        self.scan_limit = scan_limit

    def page(
        self, scope: Scope, f: AuditFilter, cursor: Cursor | None = None, limit: int = 100
    ) -> AuditPage:
        """Up to `limit` matching entries older than `cursor`, examining at most scan_limit."""
        limit = max(1, min(limit, PAGE_MAX))
        items: list[dict[str, Any]] = []
        scanned, fetched, last = 0, 0, cursor
        with self._ldb.read() as db:
            sql, params = walk_sql(f, cursor, postgres=is_postgres(db))
            rows = db.execute(sql, [*params, self.scan_limit])
            names = [d[0] for d in rows.description]
            for raw in rows:
                fetched += 1
                row = dict(zip(names, raw, strict=True))
                if cursor is not None and row["ts"] == cursor.ts and row["id"] >= cursor.id:
                    continue  # at or after the cursor in (time, id) order: the previous page's
                scanned += 1
                last = Cursor(row["ts"], row["id"])
                if matches(row, f, scope):
                    items.append(_entry(row))
                    if len(items) == limit:
                        return AuditPage(items, last, scanned, False)
        if fetched < self.scan_limit:  # the index range ended: nothing older matches
            return AuditPage(items, None, scanned, False)
        return AuditPage(items, last, scanned, True)

    def export(
        self, scope: Scope, f: AuditFilter, max_rows: int, max_pages: int = 200
    ) -> Iterator[dict[str, Any]]:
        """Every matching entry, newest first, up to `max_rows` (a page at a time)."""
        cursor: Cursor | None = None
        sent = 0
        for _ in range(max_pages):
            page = self.page(scope, f, cursor, min(PAGE_MAX, max_rows - sent))
            yield from page.items
            sent += len(page.items)
            if page.next is None or sent >= max_rows:
                return
            cursor = page.next
