"""Migrations of the regulator tables: health history and its hourly rollups, per-camera
recording records, and the counters and indexes the big reads (live wall, reports) use."""

from __future__ import annotations

import json

import sqlite_utils

from central.storage.pg import is_postgres


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


# The same counters and rollups on PostgreSQL, as plpgsql trigger functions.
_PG_OPEN_ALERTS = (
    """create function alerts_open_count() returns trigger language plpgsql as $$
    begin
      if tg_op in ('UPDATE', 'DELETE') and old.state != 'closed' then
        update camera_open_alerts set "open" = camera_open_alerts."open" - 1
        where site_id = old.site_id and camera_id = old.camera_id;
      end if;
      if tg_op in ('INSERT', 'UPDATE') and new.state != 'closed' and new.camera_id is not null then
        insert into camera_open_alerts (site_id, camera_id, "open")
        values (new.site_id, new.camera_id, 1)
        on conflict (site_id, camera_id) do update set "open" = camera_open_alerts."open" + 1;
      end if;
      return null;
    end $$""",
    "create trigger alerts_open_insert after insert or delete on alerts "
    "for each row execute function alerts_open_count()",
    "create trigger alerts_open_update after update of state, site_id, camera_id on alerts "
    "for each row execute function alerts_open_count()",
)
_PG_ROLLUP = (
    """create function heartbeat_samples_rollup() returns trigger language plpgsql as $$
    declare
      v_hour bigint := trunc(new.ts / 3600)::bigint * 3600;
      v_rec bigint := (select count(*) from json_each(new.cameras::json)
                       where value::text in ('1', 'true'));
    begin
      insert into health_hourly (site_id, hour, recorded_s, samples, retention_days, last_ts)
      values (new.site_id, v_hour, v_rec * least(new.interval_s, new.ts - v_hour), 1,
              new.retention_days, new.ts)
      on conflict (site_id, hour) do update set
        recorded_s = health_hourly.recorded_s + excluded.recorded_s,
        samples = health_hourly.samples + 1,
        retention_days = case when health_hourly.last_ts is null
                                or excluded.last_ts >= health_hourly.last_ts
                              then excluded.retention_days else health_hourly.retention_days end,
        last_ts = greatest(coalesce(health_hourly.last_ts, 0), excluded.last_ts);
      if new.interval_s > new.ts - v_hour then
        insert into health_hourly (site_id, hour, recorded_s, samples)
        values (new.site_id, v_hour - 3600, v_rec * (new.interval_s - (new.ts - v_hour)), 0)
        on conflict (site_id, hour) do update
        set recorded_s = health_hourly.recorded_s + excluded.recorded_s;
      end if;
      return null;
    end $$""",
    "create trigger heartbeat_samples_rollup after insert on heartbeat_samples "
    "for each row execute function heartbeat_samples_rollup()",
)


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
    for trigger in _PG_OPEN_ALERTS if is_postgres(db) else _OPEN_ALERT_TRIGGERS:
        db.execute(trigger)
    db.execute(
        """create table health_hourly (
            site_id text not null, hour integer not null, recorded_s real not null,
            samples integer not null, retention_days real, last_ts real,
            primary key (site_id, hour)
        )"""
    )
    for trigger in _PG_ROLLUP if is_postgres(db) else (_ROLLUP_TRIGGER,):
        db.execute(trigger)
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


def m010_report_indexes(db: sqlite_utils.Database) -> None:
    """Covering indexes of the report: alerts grouped in index order, hourly health summed."""
    db.execute(
        "create index idx_alerts_report on alerts (org_path, kind, station, state, start, "
        "created_at, acknowledged_at, requested_at, submitted_at, deadline)"
    )
    db.execute("create index idx_health_hourly_sum on health_hourly (site_id, hour, recorded_s)")


# A camera's recording record, kept with each heartbeat sample (central.alerts.hooks): when it
# was first and last sampled, and the last time it was seen not recording or not reported
# for longer than a sample may vouch for (a gap). The dashboard reads it per camera.
RECORDING_GAP_S = 600.0  # = central.alerts.hooks.MAX_CREDIT_S
CAMERA_RECORDING_UPSERT = f"""insert into camera_recording
    (site_id, camera_id, first_ts, last_ts, last_gap_ts) values (?, ?, ?, ?, ?)
  on conflict (site_id, camera_id) do update set
    last_gap_ts = case when excluded.last_gap_ts is not null
                         or excluded.last_ts - camera_recording.last_ts > {RECORDING_GAP_S}
                       then excluded.last_ts else camera_recording.last_gap_ts end,
    last_ts = case when excluded.last_ts > camera_recording.last_ts then excluded.last_ts
                   else camera_recording.last_ts end"""


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


# Alerts per UTC day of their start, organisation, kind, station and state, with the sums the
# report's response times need, kept by triggers on every write of `alerts` (an update takes
# the old row's contributions out and puts the new row's in), so a report reads whole days
# here instead of every alert. A station may be missing: `station` then holds '' and
# `station_set` 0, so the key has no NULL (a primary key compares NULLs as distinct).
_ALERT_DAY_COLUMNS = (
    "day, org_path, kind, station, station_set, state, n, ack_sum, ack_n, fix_sum, fix_n"
)
_ALERT_DAY_SQLITE = "(cast({r}.start / 86400 as integer) * 86400)"
_ALERT_DAY_PG = "(trunc({r}.start / 86400)::bigint * 86400)"


def _alert_day_values(day: str, r: str) -> str:
    """The key and contributions of one alert row `r` (new or old), in _ALERT_DAY_COLUMNS order."""
    return (
        f"{day.format(r=r)}, {r}.org_path, {r}.kind, coalesce({r}.station, ''), "
        f"case when {r}.station is null then 0 else 1 end, {r}.state, 1, "
        f"coalesce({r}.acknowledged_at - {r}.created_at, 0), "
        f"case when {r}.acknowledged_at is null then 0 else 1 end, "
        f"coalesce({r}.submitted_at - {r}.requested_at, 0), "
        f"case when {r}.submitted_at - {r}.requested_at is null then 0 else 1 end"
    )


def _alert_day_subtract(day: str, r: str = "old") -> str:
    return f"""update alert_days set n = alert_days.n - 1,
        ack_sum = alert_days.ack_sum - coalesce({r}.acknowledged_at - {r}.created_at, 0),
        ack_n = alert_days.ack_n - case when {r}.acknowledged_at is null then 0 else 1 end,
        fix_sum = alert_days.fix_sum - coalesce({r}.submitted_at - {r}.requested_at, 0),
        fix_n = alert_days.fix_n
                - case when {r}.submitted_at - {r}.requested_at is null then 0 else 1 end
      where day = {day.format(r=r)} and org_path = {r}.org_path and kind = {r}.kind
        and station = coalesce({r}.station, '')
        and station_set = case when {r}.station is null then 0 else 1 end
        and state = {r}.state;"""


def _alert_day_add(day: str, r: str = "new") -> str:
    return f"""insert into alert_days ({_ALERT_DAY_COLUMNS})
      values ({_alert_day_values(day, r)})
      on conflict (day, org_path, kind, station, station_set, state) do update set
        n = alert_days.n + 1, ack_sum = alert_days.ack_sum + excluded.ack_sum,
        ack_n = alert_days.ack_n + excluded.ack_n, fix_sum = alert_days.fix_sum + excluded.fix_sum,
        fix_n = alert_days.fix_n + excluded.fix_n;"""


_ALERT_DAY_UPDATED = (
    "start, org_path, kind, station, state, created_at, acknowledged_at, requested_at, submitted_at"
)
_ALERT_DAYS_TRIGGERS = (
    f"""create trigger alerts_days_insert after insert on alerts begin
      {_alert_day_add(_ALERT_DAY_SQLITE)}
    end""",
    f"""create trigger alerts_days_update after update of {_ALERT_DAY_UPDATED} on alerts begin
      {_alert_day_subtract(_ALERT_DAY_SQLITE)}
      {_alert_day_add(_ALERT_DAY_SQLITE)}
    end""",
    f"""create trigger alerts_days_delete after delete on alerts begin
      {_alert_day_subtract(_ALERT_DAY_SQLITE)}
    end""",
)
_PG_ALERT_DAYS = (
    f"""create function alerts_days_count() returns trigger language plpgsql as $$
    begin
      if tg_op in ('UPDATE', 'DELETE') then
        {_alert_day_subtract(_ALERT_DAY_PG)}
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        {_alert_day_add(_ALERT_DAY_PG)}
      end if;
      return null;
    end $$""",
    "create trigger alerts_days_insert after insert or delete on alerts "
    "for each row execute function alerts_days_count()",
    f"create trigger alerts_days_update after update of {_ALERT_DAY_UPDATED} on alerts "
    "for each row execute function alerts_days_count()",
)


def alert_days_fill_sql(postgres: bool) -> str:
    """One statement adding every row of `alerts` to `alert_days` (a bulk load's fill)."""
    day = (_ALERT_DAY_PG if postgres else _ALERT_DAY_SQLITE).format(r="a")
    return f"""insert into alert_days ({_ALERT_DAY_COLUMNS})
      select {day}, a.org_path, a.kind, coalesce(a.station, ''),
             case when a.station is null then 0 else 1 end, a.state, count(*),
             coalesce(sum(a.acknowledged_at - a.created_at), 0), count(a.acknowledged_at),
             coalesce(sum(a.submitted_at - a.requested_at), 0),
             count(a.submitted_at - a.requested_at)
      from alerts a group by 1, 2, 3, 4, 5, 6
      on conflict (day, org_path, kind, station, station_set, state) do update set
        n = alert_days.n + excluded.n, ack_sum = alert_days.ack_sum + excluded.ack_sum,
        ack_n = alert_days.ack_n + excluded.ack_n, fix_sum = alert_days.fix_sum + excluded.fix_sum,
        fix_n = alert_days.fix_n + excluded.fix_n"""


def m022_alert_days(db: sqlite_utils.Database) -> None:
    """Daily alert rollups kept on write (filled from the alerts already there), and the index
    of the report's alerts by start (the partial first and last days of a period)."""
    db.execute(
        """create table alert_days (
            day integer not null, org_path text not null, kind text not null,
            station text not null, station_set integer not null, state text not null,
            n integer not null, ack_sum real not null, ack_n integer not null,
            fix_sum real not null, fix_n integer not null,
            primary key (day, org_path, kind, station, station_set, state)
        )"""
    )
    db.execute(alert_days_fill_sql(is_postgres(db)))
    for trigger in _PG_ALERT_DAYS if is_postgres(db) else _ALERT_DAYS_TRIGGERS:
        db.execute(trigger)
    db.table("alerts").create_index(["start"])


def m023_alert_days_report_index(db: sqlite_utils.Database) -> None:
    """Covering index of the report's read of the daily alert rollup: a scope's rows in group
    order (no sort of the rows, no lookup of each in the table)."""
    db.execute(
        "create index idx_alert_days_report on alert_days (org_path, kind, station, "
        "station_set, state, day, n, ack_sum, ack_n, fix_sum, fix_n)"
    )


# Recorded seconds per site and UTC day, kept by triggers on every write of `health_hourly`
# (which the heartbeat samples' trigger keeps): the report reads a period's whole days here
# (a city's quarter: a row per site and day instead of 24) and only its edge hours there.
_HEALTH_DAY_SQLITE = "(cast({r}.hour / 86400 as integer) * 86400)"
_HEALTH_DAY_PG = "(({r}.hour / 86400) * 86400)"


def _health_day_change(day: str, r: str, recorded: str) -> str:
    return f"""insert into health_days (site_id, day, recorded_s)
      values ({r}.site_id, {day.format(r=r)}, {recorded})
      on conflict (site_id, day) do update
      set recorded_s = health_days.recorded_s + excluded.recorded_s;"""


_HEALTH_DAY_SAME_KEY = "new.site_id = old.site_id and new.hour = old.hour"
_HEALTH_DAYS_TRIGGERS = (
    f"""create trigger health_hourly_days_insert after insert on health_hourly begin
      {_health_day_change(_HEALTH_DAY_SQLITE, "new", "new.recorded_s")}
    end""",
    # A sample adding to its hour (every heartbeat): one upsert of the difference.
    f"""create trigger health_hourly_days_update after update of recorded_s on health_hourly
    when {_HEALTH_DAY_SAME_KEY} and new.recorded_s != old.recorded_s begin
      {_health_day_change(_HEALTH_DAY_SQLITE, "new", "new.recorded_s - old.recorded_s")}
    end""",
    f"""create trigger health_hourly_days_move after update of site_id, hour on health_hourly
    when not ({_HEALTH_DAY_SAME_KEY}) begin
      {_health_day_change(_HEALTH_DAY_SQLITE, "old", "-old.recorded_s")}
      {_health_day_change(_HEALTH_DAY_SQLITE, "new", "new.recorded_s")}
    end""",
    f"""create trigger health_hourly_days_delete after delete on health_hourly begin
      {_health_day_change(_HEALTH_DAY_SQLITE, "old", "-old.recorded_s")}
    end""",
)
_PG_HEALTH_DAYS = (
    f"""create function health_hourly_days() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and {_HEALTH_DAY_SAME_KEY} then
        if new.recorded_s != old.recorded_s then
          {_health_day_change(_HEALTH_DAY_PG, "new", "new.recorded_s - old.recorded_s")}
        end if;
        return null;
      end if;
      if tg_op in ('UPDATE', 'DELETE') then
        {_health_day_change(_HEALTH_DAY_PG, "old", "-old.recorded_s")}
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        {_health_day_change(_HEALTH_DAY_PG, "new", "new.recorded_s")}
      end if;
      return null;
    end $$""",
    "create trigger health_hourly_days_insert after insert or delete on health_hourly "
    "for each row execute function health_hourly_days()",
    "create trigger health_hourly_days_update after update of site_id, hour, recorded_s "
    "on health_hourly for each row execute function health_hourly_days()",
)


def health_days_fill_sql(postgres: bool) -> str:
    """One statement adding every row of `health_hourly` to `health_days` (a bulk load's fill)."""
    day = (_HEALTH_DAY_PG if postgres else _HEALTH_DAY_SQLITE).format(r="h")
    return f"""insert into health_days (site_id, day, recorded_s)
      select h.site_id, {day}, sum(h.recorded_s) from health_hourly h group by 1, 2
      on conflict (site_id, day) do update
      set recorded_s = health_days.recorded_s + excluded.recorded_s"""


def m024_health_days(db: sqlite_utils.Database) -> None:
    """Daily recording rollups per site, kept on write (filled from the hourly ones already
    there)."""
    db.execute(
        """create table health_days (
            site_id text not null, day integer not null, recorded_s real not null,
            primary key (site_id, day)
        )"""
    )
    db.execute(health_days_fill_sql(is_postgres(db)))
    for trigger in _PG_HEALTH_DAYS if is_postgres(db) else _HEALTH_DAYS_TRIGGERS:
        db.execute(trigger)
