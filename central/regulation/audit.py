"""The append-only audit log: who did what, when, to what, and from where."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from central.regulation.audit_search import AuditFilter, AuditSearch
from central.regulation.scope import Scope
from central.schema import LockedDb

# The actions written to the log; a test checks that each one is produced by its route.
AUDITED_ACTIONS = (
    "login",
    "login_failed",
    "logout",
    "token_created",
    "token_revoked",
    "token_used",
    "alert_transition",
    "evidence_view",
    "live_view",
    "replay",
    "clip_export",
    "org_create",
    "org_update",
    "org_move",
    "site_create",
    "site_credentials_reset",
    "camera_update",
    "user_create",
    "user_update",
    "webhook_create",
    "webhook_update",
    "webhook_test",
    "webhook_delete",
    "public_link_create",
    "public_link_revoke",
    "public_view",
    "inspection_record",
    "push_subscribe",
    "report_view",
    "audit_export",
    "footage_tampered",
    "evidence_refused",
    "integrity_audit",
    "alert_label",
    "class_map_set",
    "sample_request",
    "sample_label",
    "model_install",
    "model_rollback",
)
# Written by central itself (ingest, integrity checks), not by a user's request.
SYSTEM_ACTIONS = ("footage_tampered", "evidence_refused", "integrity_audit")


@dataclass(frozen=True)
class AuditEntry:
    """One thing to write to the log."""

    action: str
    target: str = ""
    detail: dict[str, Any] | None = None
    user_id: int | None = None
    username: str = ""
    ip: str = ""
    org_path: str | None = None


def insert_entry(db: Any, entry: AuditEntry, ts: float | None = None) -> int:
    """Append one entry inside the caller's transaction; returns its id."""
    if entry.action not in AUDITED_ACTIONS:
        raise ValueError(f"unknown audit action {entry.action!r}")
    cur = db.execute(
        "insert into audit_log (ts, user_id, username, action, target, detail, ip, org_path) "
        "values (?, ?, ?, ?, ?, ?, ?, ?) returning id",
        [
            time.time() if ts is None else ts,
            entry.user_id,
            entry.username,
            entry.action,
            entry.target,
            json.dumps(entry.detail or {}, ensure_ascii=False, default=str),
            entry.ip,
            entry.org_path,
        ],
    )
    return int(cur.fetchone()[0])


class AuditLog:
    """Writes and reads audit entries; the table's triggers refuse updates and deletes."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    def write(self, entry: AuditEntry) -> int:
        """Append one entry; returns its id."""
        with self._ldb.transaction() as db:
            return insert_entry(db, entry)

    def query(
        self,
        scope: Scope,
        *,
        action: str | None = None,
        username: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The newest page of entries about `scope` (see audit_search for filters and paging)."""
        f = AuditFilter(actor=username, action=action, since=since, until=until)
        return AuditSearch(self._ldb).page(scope, f, None, limit).as_json(limit)
