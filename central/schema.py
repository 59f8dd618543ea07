"""Tables of the regulator side (organisations, users, alerts, push, audit, public links).

They live in central's one database beside the ingest tables, under their own migration set
so the two sets evolve independently. Every row that belongs to an organisation carries that
organisation's materialised path (`org_path`), which is what scope.py filters on.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Protocol

import sqlite_utils

migrations = sqlite_utils.Migrations("central.regulators")


class LockedDb(Protocol):
    """A sqlite-utils database shared between threads under one lock."""

    db: sqlite_utils.Database
    lock: threading.RLock

    def transaction(self) -> AbstractContextManager[sqlite_utils.Database]:
        """Hold the lock and run the block in one transaction."""
        ...


def apply_migrations(ldb: LockedDb) -> None:
    """Create or upgrade the regulator tables."""
    with ldb.lock:
        migrations.apply(ldb.db)


@migrations()
def m001_orgs_users(db: sqlite_utils.Database) -> None:
    """Organisation tree, sites, cameras, users and sessions."""
    db.table("orgs").create(
        {
            "id": int,
            "parent_id": int,
            "level": str,
            "name": str,
            "org_path": str,
            "enterprise_type": str,
            "address": str,
            "licence_no": str,
            "contact": str,
            "phone": str,
            "public_info": str,
            "created_at": float,
        },
        pk="id",
        not_null={"level", "name", "org_path", "created_at"},
        foreign_keys=[("parent_id", "orgs", "id")],
    )
    db.table("orgs").create_index(["org_path"], unique=True)
    db.table("sites").create(
        {
            "id": str,
            "org_id": int,
            "org_path": str,
            "name": str,
            "mqtt_username": str,
            "created_at": float,
        },
        pk="id",
        not_null={"org_id", "org_path", "name", "created_at"},
        foreign_keys=[("org_id", "orgs", "id")],
    )
    db.table("cameras").create(
        {
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "name": str,
            "station": str,
            "created_at": float,
        },
        pk=("site_id", "camera_id"),
        not_null={"org_path", "name", "station", "created_at"},
        foreign_keys=[("site_id", "sites", "id")],
    )
    db.table("users").create(
        {
            "id": int,
            "username": str,
            "display_name": str,
            "role": str,
            "org_id": int,
            "org_path": str,
            "password_hash": str,
            "push_filters": str,
            "disabled": int,
            "created_at": float,
        },
        pk="id",
        not_null={"username", "role", "password_hash", "created_at"},
        foreign_keys=[("org_id", "orgs", "id")],
    )
    db.table("users").create_index(["username"], unique=True)
    db.table("user_sessions").create(
        {
            "token_hash": str,
            "user_id": int,
            "kind": str,
            "label": str,
            "csrf": str,
            "created_at": float,
            "expires_at": float,
            "last_used_at": float,
        },
        pk="token_hash",
        not_null={"user_id", "kind", "created_at", "expires_at"},
        foreign_keys=[("user_id", "users", "id")],
    )


@migrations()
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


@migrations()
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


@migrations()
def m004_health_history(db: sqlite_utils.Database) -> None:
    """Sampled heartbeats, for the recording and retention reports (ingest keeps only the last)."""
    db.table("heartbeat_samples").create(
        {
            "id": int,
            "site_id": str,
            "ts": float,
            "interval_s": float,
            "retention_days": float,
            "cameras": str,
        },
        pk="id",
        not_null={"site_id", "ts", "interval_s", "cameras"},
    )
    db.table("heartbeat_samples").create_index(["site_id", "ts"])


@migrations()
def m005_camera_reported(db: sqlite_utils.Database) -> None:
    """A camera's name and station as the site reports them, apart from the regulator's."""
    cameras = db.table("cameras")
    cameras.add_column("reported_name", str)
    cameras.add_column("reported_station", str)
    cameras.add_column("name_by_regulator", int, not_null_default=0)
    cameras.add_column("station_by_regulator", int, not_null_default=0)
