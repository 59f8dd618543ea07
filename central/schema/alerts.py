"""Migrations of the regulator tables: alerts, their transitions and evidence, push
subscriptions, deliveries and the audit log."""

from __future__ import annotations

import sqlite_utils

from central.storage.pg import is_postgres


def m002_alerts(db: sqlite_utils.Database) -> None:
    """Alerts, their transitions and rectification evidence."""
    db.table("alerts").create(
        {
            "id": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "kind": str,
            "station": str,
            "rule": str,
            "severity": str,
            "start": float,
            "end": float,
            "score": float,
            "snapshot": str,
            "clip": str,
            "state": str,
            "deadline": float,
            "created_at": float,
            "updated_at": float,
            "acknowledged_at": float,
            "requested_at": float,
            "submitted_at": float,
            "closed_at": float,
            "hold_request_id": str,
        },
        pk="id",
        not_null={"site_id", "org_path", "kind", "state", "start", "created_at"},
    )
    db.table("alerts").create_index(["org_path", "created_at"])
    db.table("alerts").create_index(["state", "deadline"])
    db.table("alert_transitions").create(
        {
            "id": int,
            "alert_id": str,
            "ts": float,
            "user_id": int,
            "username": str,
            "action": str,
            "from_state": str,
            "to_state": str,
            "note": str,
            "deadline": float,
            "ip": str,
        },
        pk="id",
        not_null={"alert_id", "ts", "action", "from_state", "to_state"},
        foreign_keys=[("alert_id", "alerts", "id")],
    )
    db.table("alert_transitions").create_index(["alert_id", "id"])
    db.table("evidence").create(
        {
            "id": int,
            "alert_id": str,
            "transition_id": int,
            "filename": str,
            "content_type": str,
            "bytes": int,
            "sha256": str,
            "path": str,
            "uploaded_by": int,
            "uploaded_at": float,
        },
        pk="id",
        not_null={"alert_id", "filename", "sha256", "path", "uploaded_at"},
        foreign_keys=[("alert_id", "alerts", "id")],
    )


def m003_push_audit_public(db: sqlite_utils.Database) -> None:
    """Push subscriptions, webhooks, deliveries, the audit log and public links."""
    db.table("push_subscriptions").create(
        {
            "id": int,
            "user_id": int,
            "endpoint": str,
            "p256dh": str,
            "auth": str,
            "created_at": float,
            "failures": int,
        },
        pk="id",
        not_null={"user_id", "endpoint", "p256dh", "auth", "created_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
    db.table("push_subscriptions").create_index(["endpoint"], unique=True)
    db.table("webhooks").create(
        {
            "id": int,
            "org_id": int,
            "org_path": str,
            "url": str,
            "format": str,
            "secret": str,
            "filters": str,
            "enabled": int,
            "created_at": float,
        },
        pk="id",
        not_null={"org_id", "org_path", "url", "format", "created_at"},
    )
    db.table("deliveries").create(
        {
            "id": int,
            "alert_id": str,
            "target": str,
            "target_id": int,
            "status": str,
            "attempts": int,
            "last_error": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="id",
        not_null={"alert_id", "target", "status", "created_at"},
    )
    db.table("deliveries").create_index(["alert_id"])
    db.table("audit_log").create(
        {
            "id": int,
            "ts": float,
            "user_id": int,
            "username": str,
            "action": str,
            "target": str,
            "detail": str,
            "ip": str,
            "org_path": str,
        },
        pk="id",
        not_null={"ts", "action"},
    )
    db.table("audit_log").create_index(["ts"])
    # Append-only: the database itself refuses to change or remove an audit entry.
    if is_postgres(db):
        db.execute(
            "create function audit_log_append_only() returns trigger language plpgsql as "
            "$$ begin raise exception 'audit log is append-only'; end $$"
        )
        db.execute(
            "create trigger audit_log_no_change before update or delete on audit_log "
            "for each row execute function audit_log_append_only()"
        )
    else:
        db.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )
        db.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )
    db.table("public_links").create(
        {
            "id": int,
            "token": str,
            "org_id": int,
            "org_path": str,
            "cameras": str,
            "label": str,
            "created_by": int,
            "created_at": float,
            "revoked_at": float,
        },
        pk="id",
        not_null={"token", "org_id", "org_path", "cameras", "created_at"},
    )
    db.table("public_links").create_index(["token"], unique=True)


def m007_push_jobs(db: sqlite_utils.Database) -> None:
    """Deliveries become durable jobs: pending until delivered, failed or expired."""
    db.execute("alter table deliveries add column next_at float")
    db.execute("alter table deliveries add column expires_at float")
    db.execute("alter table deliveries add column urgent integer not null default 0")
    db.table("deliveries").create_index(["status", "urgent", "next_at"])


def m009_first_clip(db: sqlite_utils.Database) -> None:
    """An alert's first clip (pre-roll plus the first seconds), before the full one."""
    db.execute("alter table alerts add column first_clip text")


def m013_alert_frame_and_model(db: sqlite_utils.Database) -> None:
    """An alert's clean frame (what labels are drawn on) and the model that raised it."""
    db.execute("alter table alerts add column frame text")
    db.execute("alter table alerts add column model text")
