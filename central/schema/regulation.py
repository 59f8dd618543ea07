"""Migrations of the regulator tables: organisations, sites, cameras, users, sessions, API
tokens, public links and inspections, and the audit log's indexes."""

from __future__ import annotations

import sqlite_utils

from central.regulation.passwords import token_digest
from central.storage.pg import is_postgres


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


def m005_camera_reported(db: sqlite_utils.Database) -> None:
    """A camera's name and station as the site reports them, apart from the regulator's."""
    cameras = db.table("cameras")
    cameras.add_column("reported_name", str)
    cameras.add_column("reported_station", str)
    cameras.add_column("name_by_regulator", int, not_null_default=0)
    cameras.add_column("station_by_regulator", int, not_null_default=0)


def m008_api_tokens(db: sqlite_utils.Database) -> None:
    """Sessions and API tokens told apart; tokens named, scoped, listed by a public id.

    Tokens made before this step were full-access and lasted a year: they keep full access
    but expire at most 90 days after they were made.
    """
    db.execute("alter table user_sessions add column purpose text not null default 'session'")
    db.execute("alter table user_sessions add column scope text not null default 'full'")
    db.execute("alter table user_sessions add column token_id text")
    db.execute(
        "update user_sessions set purpose = 'token', "
        "expires_at = case when expires_at < created_at + 90 * 86400 then expires_at "
        "else created_at + 90 * 86400 end "
        "where kind = 'bearer' and coalesce(label, '') != 'login'"
    )
    if is_postgres(db):
        db.execute("update user_sessions set token_id = substr(md5(random()::text), 1, 16)")
    else:
        db.execute("update user_sessions set token_id = lower(hex(randomblob(8)))")
    db.table("user_sessions").create_index(["token_id"], unique=True)
    db.table("user_sessions").create_index(["user_id", "purpose"])


def m014_public_video_inspections(db: sqlite_utils.Database) -> None:
    """Public links gain an expiry and a viewer cap; inspections of enterprises are recorded."""
    links = db.table("public_links")
    links.add_column("expires_at", float)
    links.add_column("max_viewers", int)
    db.table("inspections").create(
        {
            "id": int,
            "org_id": int,
            "org_path": str,
            "inspected_at": float,
            "result": str,
            "rating": str,
            "note": str,
            "inspector_id": int,
            "created_at": float,
        },
        pk="id",
        not_null={"org_id", "org_path", "inspected_at", "result", "created_at"},
        foreign_keys=[("org_id", "orgs", "id")],
    )
    db.table("inspections").create_index(["org_id", "inspected_at"])


def m017_admin_indexes(db: sqlite_utils.Database) -> None:
    """Indexes the audit log pages and the webhook delivery counts read along."""
    db.execute("create index idx_audit_action_ts on audit_log (action, ts)")
    db.execute("create index idx_audit_username_ts on audit_log (username, ts)")
    db.execute("create index idx_audit_target_ts on audit_log (target, ts)")
    db.execute(
        "create index idx_deliveries_target on deliveries (target, target_id, status, updated_at)"
    )


def m025_public_link_token_digests(db: sqlite_utils.Database) -> None:
    """Public links keep only the SHA-256 digest of their token, as sessions do.

    Links handed out before this step keep working: each token is replaced by its digest,
    which is what a visitor's token is looked up by now. SQLite overwrites the freed pages
    (secure_delete) so the old tokens do not linger in the file.
    """
    postgres = is_postgres(db)
    if not postgres:
        secure = db.execute("pragma secure_delete").fetchone()[0]
        db.execute("pragma secure_delete = on")
    db.execute("alter table public_links add column token_hash text")
    for link_id, token in db.execute("select id, token from public_links").fetchall():
        db.execute(
            "update public_links set token_hash = ? where id = ?", [token_digest(token), link_id]
        )
    db.execute("drop index idx_public_links_token")
    db.execute("alter table public_links drop column token")
    db.table("public_links").create_index(["token_hash"], unique=True)
    if not postgres:
        db.execute(f"pragma secure_delete = {int(secure)}")
