"""Tables of the regulator side (organisations, users, alerts, push, audit, public links).

They live in central's one database beside the ingest tables, under their own migration set
so the two sets evolve independently. Every row that belongs to an organisation carries that
organisation's materialised path (`org_path`), which is what scope.py filters on.
"""

from __future__ import annotations

import json
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

    def read(self) -> AbstractContextManager[sqlite_utils.Database]:
        """A read-only connection that never holds the write lock."""
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


# The open alerts of each camera, kept by triggers on every write of `alerts`, so the live
# wall reads one row per camera instead of counting alerts.
_OPEN_ALERT_TRIGGERS = (
    """create trigger alerts_open_insert after insert on alerts
    when new.state != 'closed' and new.camera_id is not null begin
      insert into camera_open_alerts (site_id, camera_id, open)
      values (new.site_id, new.camera_id, 1)
      on conflict (site_id, camera_id) do update set open = open + 1;
    end""",
    """create trigger alerts_open_update after update of state, site_id, camera_id on alerts
    begin
      update camera_open_alerts set open = open - 1
      where old.state != 'closed' and site_id = old.site_id and camera_id = old.camera_id;
      insert into camera_open_alerts (site_id, camera_id, open)
      select new.site_id, new.camera_id, 1
      where new.state != 'closed' and new.camera_id is not null
      on conflict (site_id, camera_id) do update set open = open + 1;
    end""",
    """create trigger alerts_open_delete after delete on alerts
    when old.state != 'closed' begin
      update camera_open_alerts set open = open - 1
      where site_id = old.site_id and camera_id = old.camera_id;
    end""",
)

# Each heartbeat sample credits `interval_s` before it to the hours it covers (at most two,
# since the credit is capped far below an hour); the report reads these hourly rows.
_HOUR = "(cast(new.ts / 3600 as integer) * 3600)"
_RECORDING = "(select count(*) from json_each(new.cameras) where value = 1)"
_ROLLUP_TRIGGER = f"""create trigger heartbeat_samples_rollup after insert on heartbeat_samples
begin
  insert into health_hourly (site_id, hour, recorded_s, samples, retention_days, last_ts)
  values (new.site_id, {_HOUR},
          {_RECORDING} * min(new.interval_s, new.ts - {_HOUR}), 1, new.retention_days, new.ts)
  on conflict (site_id, hour) do update set
    recorded_s = recorded_s + excluded.recorded_s,
    samples = samples + 1,
    retention_days = case when last_ts is null or excluded.last_ts >= last_ts
                          then excluded.retention_days else retention_days end,
    last_ts = max(coalesce(last_ts, 0), excluded.last_ts);
  insert into health_hourly (site_id, hour, recorded_s, samples)
  select new.site_id, {_HOUR} - 3600,
         {_RECORDING} * (new.interval_s - (new.ts - {_HOUR})), 0
  where new.interval_s > new.ts - {_HOUR}
  on conflict (site_id, hour) do update set recorded_s = recorded_s + excluded.recorded_s;
end"""


@migrations()
def m006_scale(db: sqlite_utils.Database) -> None:
    """Open-alert counters per camera, hourly health rollups and indexes of the big reads."""
    db.execute(
        """create table camera_open_alerts (
            site_id text not null, camera_id text not null, open integer not null,
            primary key (site_id, camera_id)
        )"""
    )
    db.execute(
        "insert into camera_open_alerts (site_id, camera_id, open) "
        "select site_id, camera_id, count(*) from alerts "
        "where state != 'closed' and camera_id is not null group by site_id, camera_id"
    )
    for trigger in _OPEN_ALERT_TRIGGERS:
        db.execute(trigger)
    db.execute(
        """create table health_hourly (
            site_id text not null, hour integer not null, recorded_s real not null,
            samples integer not null, retention_days real, last_ts real,
            primary key (site_id, hour)
        )"""
    )
    db.execute(_ROLLUP_TRIGGER)
    # Rows written before the rollup existed: replay them through the trigger.
    db.execute("create temp table old_samples as select * from heartbeat_samples")
    db.execute("delete from heartbeat_samples")
    db.execute(
        "insert into heartbeat_samples (id, site_id, ts, interval_s, retention_days, cameras) "
        "select id, site_id, ts, interval_s, retention_days, cameras from old_samples order by ts"
    )
    db.execute("drop table old_samples")
    db.table("heartbeat_samples").create_index(["ts"])
    db.table("alerts").create_index(["org_path", "start"])
    db.table("alerts").create_index(["created_at"])
    db.table("cameras").create_index(["org_path"])
    db.table("deliveries").create_index(["created_at"])


@migrations()
def m007_push_jobs(db: sqlite_utils.Database) -> None:
    """Deliveries become durable jobs: pending until delivered, failed or expired."""
    db.execute("alter table deliveries add column next_at float")
    db.execute("alter table deliveries add column expires_at float")
    db.execute("alter table deliveries add column urgent integer not null default 0")
    db.table("deliveries").create_index(["status", "urgent", "next_at"])


@migrations()
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
        "expires_at = min(expires_at, created_at + 90 * 86400) "
        "where kind = 'bearer' and coalesce(label, '') != 'login'"
    )
    db.execute("update user_sessions set token_id = lower(hex(randomblob(8)))")
    db.table("user_sessions").create_index(["token_id"], unique=True)
    db.table("user_sessions").create_index(["user_id", "purpose"])


@migrations()
def m009_first_clip(db: sqlite_utils.Database) -> None:
    """An alert's first clip (pre-roll plus the first seconds), before the full one."""
    db.execute("alter table alerts add column first_clip text")


@migrations()
def m010_report_indexes(db: sqlite_utils.Database) -> None:
    """Covering indexes of the report: alerts grouped in index order, hourly health summed."""
    db.execute(
        "create index idx_alerts_report on alerts (org_path, kind, station, state, start, "
        "created_at, acknowledged_at, requested_at, submitted_at, deadline)"
    )
    db.execute("create index idx_health_hourly_sum on health_hourly (site_id, hour, recorded_s)")


@migrations()
def m011_labels(db: sqlite_utils.Database) -> None:
    """Inspectors' verdicts on alerts as training labels, and each site's class map."""
    db.table("alert_labels").create(
        {
            "alert_id": str,
            "site_id": str,
            "verdict": str,
            "boxes": str,
            "user_id": int,
            "username": str,
            "labelled_at": float,
        },
        pk="alert_id",
        not_null={"alert_id", "site_id", "verdict", "boxes", "labelled_at"},
        foreign_keys=[("alert_id", "alerts", "id")],
    )
    db.table("site_class_maps").create(
        {"site_id": str, "classes": str, "updated_by": str, "updated_at": float},
        pk="site_id",
        not_null={"site_id", "classes", "updated_at"},
    )


@migrations()
def m012_models(db: sqlite_utils.Database) -> None:
    """The model registry (signed versions with their cards) and rollouts to sites."""
    db.table("models").create(
        {
            "name": str,
            "version": str,
            "sha256": str,
            "bytes": int,
            "path": str,
            "classes": str,
            "card": str,
            "key_id": str,
            "signature": str,
            "uploaded_by": str,
            "uploaded_at": float,
        },
        pk=("name", "version"),
        not_null={"sha256", "bytes", "path", "classes", "card", "signature", "uploaded_at"},
    )
    db.table("model_rollouts").create(
        {
            "request_id": str,
            "site_id": str,
            "action": str,
            "name": str,
            "version": str,
            "cameras": str,
            "requested_by": str,
            "requested_at": float,
        },
        pk="request_id",
        not_null={"site_id", "action", "cameras", "requested_at"},
    )
    db.table("model_rollouts").create_index(["site_id", "requested_at"])


@migrations()
def m013_alert_frame_and_model(db: sqlite_utils.Database) -> None:
    """An alert's clean frame (what labels are drawn on) and the model that raised it."""
    db.execute("alter table alerts add column frame text")
    db.execute("alter table alerts add column model text")


@migrations()
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


@migrations()
def m015_samples(db: sqlite_utils.Database) -> None:
    """Sample frames asked of the edges for labelling, the frames stored, and their labels."""
    db.table("sample_requests").create(
        {
            "batch_id": str,
            "request_id": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "count": int,
            "mode": str,
            "requested_by": str,
            "requested_at": float,
        },
        pk="batch_id",
        not_null={"request_id", "site_id", "camera_id", "org_path", "count", "requested_at"},
    )
    db.table("sample_frames").create(
        {
            "batch_id": str,
            "name": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "ts": float,
            "sha256": str,
            "stored_at": float,
        },
        pk=("batch_id", "name"),
        not_null={"site_id", "camera_id", "org_path", "ts", "sha256", "stored_at"},
    )
    db.table("sample_frames").create_index(["org_path", "ts"])
    db.table("sample_labels").create(
        {
            "batch_id": str,
            "name": str,
            "site_id": str,
            "verdict": str,
            "boxes": str,
            "user_id": int,
            "username": str,
            "labelled_at": float,
        },
        pk=("batch_id", "name"),
        not_null={"site_id", "verdict", "boxes", "labelled_at"},
    )


# A camera's recording record, kept with each heartbeat sample (central.alerts.hooks): when it
# was first and last sampled, and the last time it was seen not recording or not reported
# for longer than a sample may vouch for (a gap). The dashboard reads it per camera.
RECORDING_GAP_S = 600.0  # = central.alerts.hooks.MAX_CREDIT_S
CAMERA_RECORDING_UPSERT = f"""insert into camera_recording
    (site_id, camera_id, first_ts, last_ts, last_gap_ts) values (?, ?, ?, ?, ?)
  on conflict (site_id, camera_id) do update set
    last_gap_ts = case when excluded.last_gap_ts is not null
                         or excluded.last_ts - last_ts > {RECORDING_GAP_S}
                       then excluded.last_ts else last_gap_ts end,
    last_ts = max(last_ts, excluded.last_ts)"""


@migrations()
def m016_camera_recording(db: sqlite_utils.Database) -> None:
    """Per-camera recording record (first/last sample, last gap), replayed from raw samples."""
    db.execute(
        """create table camera_recording (
            site_id text not null, camera_id text not null, first_ts real not null,
            last_ts real not null, last_gap_ts real,
            primary key (site_id, camera_id)
        )"""
    )
    rows = db.execute("select site_id, ts, cameras from heartbeat_samples order by ts, id")
    for site_id, ts, cameras in rows.fetchall():
        try:
            flags = json.loads(cameras or "{}")
        except ValueError:
            continue
        for camera, recording in flags.items():
            gap = None if recording else ts
            db.execute(CAMERA_RECORDING_UPSERT, [site_id, camera, ts, ts, gap])


@migrations()
def m017_admin_indexes(db: sqlite_utils.Database) -> None:
    """Indexes the audit log pages and the webhook delivery counts read along."""
    db.execute("create index idx_audit_action_ts on audit_log (action, ts)")
    db.execute("create index idx_audit_username_ts on audit_log (username, ts)")
    db.execute("create index idx_audit_target_ts on audit_log (target, ts)")
    db.execute(
        "create index idx_deliveries_target on deliveries (target, target_id, status, updated_at)"
    )
