"""A city on one central node (SQLite or PostgreSQL) while regulators use it.

Preloads central's database directly (org tree, `--sites` sites with 10 cameras each,
`--alerts` alerts over 90 days, 90 days of hourly health rollups plus two days of raw
heartbeat samples; in bulk, leaving the rows central's own writes would: see `preload`),
starts a real Mosquitto and a `central-server run` process, then:
  1. steady load: every site is a real MQTT client (site login, ACL) sending a heartbeat
     every `--heartbeat-s` and alerts at `--alerts-per-hour`, plus a probe site sending
     2 events/s; meanwhile a city wall, a county wall and the city's 90-day report are
     requested over and over (each waiting for its previous answer);
  2. burst: `--burst` backlog events (started 2 hours ago, as flushed after an outage) from
     4 generator processes, and `--fresh-probes` live alerts (one site each, 0.5 s apart,
     the first 1 s into it, sent on the live lane as an edge does): how long until each is in
     the inbox (alerts table) and its webhook arrives; then a second process writes 2 s
     every 5 s (as a bulk CLI write does: on SQLite it holds central.db's write lock, on
     PostgreSQL the lock that numbers event changes) and the probes run again, each saying
     whether it overlapped one of those windows;
  3. every alert of the run that a webhook wants must arrive (`pushes_lost`).
With `--database postgres` central runs on a PostgreSQL server started in a temporary
folder (testbed.postgres: fsync off), removed afterwards. Prints the figures and writes
bench/results/scale.json: the SQLite run's at the top level, the PostgreSQL run's under
the `postgresql` key (the other keys of the file are kept). Load averages are noted at the
start, at the end of the steady load, after the burst and at the end.

    .venv/bin/python bench/scale.py [--database sqlite|postgres] [--sites 500]
        [--alerts 2000000] [--steady-s 60]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fleet import (  # noqa: E402
    CentralRun,
    publish_all,
    site_client,
    site_credentials,
    start_fleet_broker,
    stop_client,
)
from bench.machine import describe_machine  # noqa: E402
from central.alerts.push_rules import PushFilters  # noqa: E402
from central.config import load_config  # noqa: E402
from central.ingest.store import CHANGE_SEQ_LOCK  # noqa: E402
from central.regulation.scope import Scope  # noqa: E402
from central.schema.health import alert_days_fill_sql, health_days_fill_sql  # noqa: E402
from central.services import build_services  # noqa: E402
from central.storage import pg  # noqa: E402
from central.storage.db import CentralDatabase  # noqa: E402
from fsv_contract import EventPayload, HeartbeatPayload, encode, topics  # noqa: E402
from testbed.ports import free_port  # noqa: E402
from testbed.postgres import PostgresServer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.json"
PASSWORD = "bench-user-password-1"
CAMERAS = 10
DAY = 86400.0
KINDS = ("no_chef_hat", "no_mask", "smoking", "rodent", "no_uniform")


# --- preloading -----------------------------------------------------------------------------


def build_tree(config_path: Path, sites: int, counties: int, hook_url: str) -> dict[str, Any]:
    """Org tree, sites, users and the city's webhook through central's own stores."""
    config = load_config(config_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    database = CentralDatabase(config.database_url)
    try:
        svc = build_services(database, config.web, config.push, config.data_dir, None)
        every = Scope.everything()
        province = svc.orgs.create_org(every, None, "province", name="Province")
        city = svc.orgs.create_org(every, province["id"], "city", name="City")
        county_ids = [
            svc.orgs.create_org(every, city["id"], "county", name=f"County {c}")["id"]
            for c in range(counties)
        ]
        site_paths: dict[str, str] = {}
        for i in range(sites):
            ent = svc.orgs.create_org(
                every, county_ids[i % counties], "enterprise", name=f"Canteen {i}",
                enterprise_type="canteen",
            )  # fmt: skip
            site = svc.orgs.create_site(every, ent["id"], f"site-{i}", f"Canteen {i} NVR")
            site_paths[site["id"]] = site["org_path"]
        for username, role, org in (
            ("admin", "admin", None),
            ("city", "city_monitor", city["id"]),
            ("county", "county_inspector", county_ids[0]),
        ):
            svc.users.create_user(every, username=username, password=PASSWORD, role=role,
                                  org_id=org)  # fmt: skip
        svc.push.add_webhook(every, city["id"], hook_url, "json", "", PushFilters(kinds=["rodent"]))
    finally:
        database.close()
    return {"city_id": city["id"], "site_paths": site_paths}


ALERT_COLUMNS = (
    "id", "site_id", "camera_id", "org_path", "kind", "station", "rule", "severity", "start",
    "score", "state", "created_at", "updated_at", "acknowledged_at", "closed_at",
)  # fmt: skip
ALERTS_CHUNK = 100_000
CAMERAS_SQL = (
    "insert into cameras (site_id, camera_id, org_path, name, station, created_at) "
    "values (?, ?, ?, ?, 'kitchen_prep', ?) on conflict do nothing"
)
CAMERA_STATUS_SQL = (
    "insert into camera_status (site, camera, state, since, reason, updated_at) "
    "values (?, ?, 'online', ?, '', ?) on conflict do nothing"
)
STATE_LOG_SQL = (
    "insert into camera_state_log (site, camera, state, since, reason, received_at) "
    "values (?, ?, 'online', ?, '', ?)"
)
RECORDING_SQL = (
    "insert into camera_recording (site_id, camera_id, first_ts, last_ts, last_gap_ts) "
    "values (?, ?, ?, ?, null) on conflict do nothing"
)
# Hourly rollups for the 88 days before the raw samples: one row per site and hour.
HOURLY_SQL = {
    "sqlite": "with recursive h(x) as (select ? union all select x + 3600 from h "
    "where x + 3600 < ?) "
    "insert into health_hourly (site_id, hour, recorded_s, samples, retention_days, last_ts) "
    "select s.id, h.x, ?, 12, 120.0, h.x + 3599 from sites s, h",
    "postgres": "insert into health_hourly "
    "(site_id, hour, recorded_s, samples, retention_days, last_ts) "
    "select s.id, h.x, ?, 12, 120.0, h.x + 3599 from sites s, "
    "generate_series(?::bigint, ?::bigint - 1, 3600) as h(x)",
}


def alert_chunks(
    site_paths: dict[str, str], alerts: int, now: float
) -> Iterator[list[tuple[Any, ...]]]:
    """`alerts` alerts over 90 days (3 % still open), in chunks of ALERTS_CHUNK rows."""
    rng = random.Random(1)
    sites = list(site_paths)
    for lo in range(0, alerts, ALERTS_CHUNK):
        rows = []
        for _ in range(min(ALERTS_CHUNK, alerts - lo)):
            site = rng.choice(sites)
            start = now - rng.random() * 90 * DAY
            closed = rng.random() < 0.97
            rows.append((
                str(uuid.UUID(int=rng.getrandbits(128), version=4)), site,
                f"cam{rng.randrange(CAMERAS)}", site_paths[site], rng.choice(KINDS),
                "kitchen_prep", "r", "warning", start, 0.9, "closed" if closed else "new",
                start + 5, start + 5, start + 300, start + 9000 if closed else None,
            ))  # fmt: skip
        yield rows


def camera_rows(site_paths: dict[str, str], now: float) -> dict[str, list[tuple[Any, ...]]]:
    """The cameras, their status and state log, and their recording records (statement: rows)."""
    cams = [(s, f"cam{c}") for s in site_paths for c in range(CAMERAS)]
    raw_from = int((now - 2 * DAY) // 3600 * 3600)
    last_raw = max(range(raw_from + 300, int(now), 300))
    return {
        CAMERAS_SQL: [(s, c, site_paths[s], f"Camera {c[3:]}", now - 100 * DAY) for s, c in cams],
        CAMERA_STATUS_SQL: [(s, c, now - 95 * DAY, now) for s, c in cams],
        STATE_LOG_SQL: [(s, c, now - 95 * DAY, now) for s, c in cams],
        RECORDING_SQL: [(s, c, now - 90 * DAY, float(last_raw)) for s, c in cams],
    }


def sample_rows(sites: list[str], now: float) -> list[tuple[Any, ...]]:
    """Raw heartbeat samples every 5 minutes for the last 2 days (all cameras recording)."""
    raw_from = int((now - 2 * DAY) // 3600 * 3600)
    flags = json.dumps({f"cam{c}": True for c in range(CAMERAS)})
    return [(s, float(t), 300.0, 120.0, flags)
            for s in sites for t in range(raw_from + 300, int(now), 300)]  # fmt: skip


SAMPLES_SQL = (
    "insert into heartbeat_samples (site_id, ts, interval_s, retention_days, cameras) "
    "values (?, ?, ?, ?, ?)"
)


def preload(target: Path | str, site_paths: dict[str, str], alerts: int, now: float) -> int:
    """Cameras, alerts over 90 days, hourly health for 90 days and 2 days of raw samples,
    as central's own writes leave them: the open-alert counters, the daily alert rollup and
    the hourly rollups of the raw samples are what central's triggers make of these rows.
    Returns the health rows.

    The alerts go in bulk: the indexes of `alerts` are dropped first and built again after
    (the same definitions, read back from the database)."""
    if pg.is_postgres_url(target):
        return preload_postgres(str(target), site_paths, alerts, now)
    return preload_sqlite(Path(target), site_paths, alerts, now)


def preload_sqlite(path: Path, site_paths: dict[str, str], alerts: int, now: float) -> int:
    db = sqlite3.connect(path)
    db.execute("pragma synchronous = off")  # setup only: nothing to keep if it crashes
    db.execute("pragma cache_size = -1000000")  # 1 GB while loading
    for sql, rows in camera_rows(site_paths, now).items():
        db.executemany(sql, rows)
    indexes = db.execute(
        "select name, sql from sqlite_master where type = 'index' and tbl_name = 'alerts' "
        "and sql is not null"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'drop index "{name}"')
    insert = (f"insert into alerts ({', '.join(ALERT_COLUMNS)}) "
              f"values ({', '.join('?' * len(ALERT_COLUMNS))})")  # fmt: skip
    for chunk in alert_chunks(site_paths, alerts, now):
        db.executemany(insert, chunk)  # the triggers count them per camera and per day
    for _, sql in indexes:
        db.execute(sql)
    raw_from = int((now - 2 * DAY) // 3600 * 3600)
    first_hour = int((now - 90 * DAY) // 3600 * 3600)
    db.execute(HOURLY_SQL["sqlite"], [first_hour, raw_from, 3600.0 * CAMERAS])
    db.executemany(SAMPLES_SQL, sample_rows(list(site_paths), now))  # rolled up by the trigger
    db.commit()
    health = db.execute("select count(*) from health_hourly").fetchone()[0]
    raw = db.execute("select count(*) from heartbeat_samples").fetchone()[0]
    db.close()
    return int(health + raw)


def preload_postgres(url: str, site_paths: dict[str, str], alerts: int, now: float) -> int:
    """The same rows through COPY. The alerts and the hourly health rows go in with the
    triggers off (the session as a replica); the open-alert counters and the daily alert and
    health rollups are then filled in one statement each, as m006, m022 and m024 do."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set maintenance_work_mem = '512MB'")
        with conn.cursor() as cur:
            for sql, rows in camera_rows(site_paths, now).items():
                cur.executemany(pg.translate(sql), rows)
        indexes = conn.execute(
            "select indexname, indexdef from pg_indexes where tablename = 'alerts' "
            "and indexname not in (select conname from pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'drop index "{name}"')
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            with conn.cursor().copy(f"copy alerts ({', '.join(ALERT_COLUMNS)}) from stdin") as copy:
                for chunk in alert_chunks(site_paths, alerts, now):
                    for row in chunk:
                        copy.write_row(row)
            conn.execute(
                'insert into camera_open_alerts (site_id, camera_id, "open") '
                "select site_id, camera_id, count(*) from alerts "
                "where state != 'closed' and camera_id is not null group by site_id, camera_id "
                'on conflict (site_id, camera_id) do update set "open" = '
                'camera_open_alerts."open" + excluded."open"'
            )
            conn.execute(alert_days_fill_sql(postgres=True))  # the daily rollup, as m022 does
        for _, sql in indexes:
            conn.execute(sql)
        raw_from = int((now - 2 * DAY) // 3600 * 3600)
        first_hour = int((now - 90 * DAY) // 3600 * 3600)
        with conn.transaction():  # the daily health rollup filled once, as m024 does
            conn.execute("set local session_replication_role = replica")
            conn.execute(pg.translate(HOURLY_SQL["postgres"]),
                         [3600.0 * CAMERAS, first_hour, raw_from])  # fmt: skip
            conn.execute(health_days_fill_sql(postgres=True))
        cols = "site_id, ts, interval_s, retention_days, cameras"
        with conn.cursor().copy(f"copy heartbeat_samples ({cols}) from stdin") as copy:
            for row in sample_rows(list(site_paths), now):  # rolled up by the trigger
                copy.write_row(row)
        # What autovacuum does to freshly loaded tables within a minute or so, done now:
        # statistics for the planner, and the visibility map that index-only scans need.
        conn.execute("vacuum analyze")
        counts = conn.execute("select (select count(*) from health_hourly), "
                              "(select count(*) from heartbeat_samples)").fetchone()  # fmt: skip
    assert counts is not None
    return int(counts[0] + counts[1])


# --- load -----------------------------------------------------------------------------------


def event(site: str, kind: str, start: datetime, camera: str = "cam0") -> EventPayload:
    """One start-phase event as a detector makes it."""
    return EventPayload(
        event_id=uuid.uuid4(), site=site, camera=camera, phase="start", kind=kind,
        station="kitchen_prep", rule="r", start=start, score=0.9,
        created_at=datetime.now(UTC),
    )  # fmt: skip


def heartbeat() -> HeartbeatPayload:
    now = datetime.now(UTC)
    return HeartbeatPayload(
        ts=now, uptime_s=1000.0, disk_free_bytes=10**12, disk_total_bytes=4 * 10**12,
        retention_days_available=120.0, cpu_percent=20.0,
        cameras=[{"camera": f"cam{c}", "state": "online", "last_segment_end": now}
                 for c in range(CAMERAS)],
    )  # fmt: skip


def site_clients(port: int, creds: dict[str, str], seconds: float, hb_s: float, per_h: float,
                 probe: bool) -> None:  # fmt: skip
    """A process of site clients: heartbeats and rodent alerts at the agent's real rates."""
    clients = {site: site_client(port, site, password) for site, password in creds.items()}
    rng = random.Random(os.getpid())
    next_hb = {s: time.monotonic() + rng.random() * hb_s for s in clients}
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        now = time.monotonic()
        for site, c in clients.items():
            if now >= next_hb[site]:
                c.publish(topics.heartbeat(site), encode(heartbeat()), qos=0)
                next_hb[site] = now + hb_s
            if probe or rng.random() < per_h / 3600 * 0.5:
                e = event(site, "rodent", datetime.now(UTC), f"cam{rng.randrange(CAMERAS)}")
                c.publish(topics.camera_event(site, e.camera), encode(e), qos=1)
        time.sleep(0.5)
    for c in clients.values():
        stop_client(c)


def burst(port: int, site: str, password: str, count: int) -> None:
    """A generator process: `count` backlog events (started 2 h ago) at QoS 1, as fast as it can."""
    start = datetime.now(UTC) - timedelta(hours=2)
    payloads = [(topics.camera_event(site, "cam0"), encode(event(site, "no_chef_hat", start)))
                for _ in range(count)]  # fmt: skip
    publish_all(port, site, password, payloads)


# --- observers ------------------------------------------------------------------------------


class Hooks(BaseHTTPRequestHandler):
    """The webhook receiver: notes each alert id and when it arrived."""

    got: dict[str, float] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        alert_id = json.loads(body)["alert"]["id"]
        with self.lock:
            self.got.setdefault(alert_id, time.time())
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the API's name
        pass


class CentralProcess(CentralRun):
    """A `central-server run` process and a signed-in HTTP client of it."""

    start_timeout_s = 120.0
    poll_s = 0.2
    stop_timeout_s = 60.0

    def __init__(self, workdir: Path, broker_port: int, database_url: str | None = None) -> None:
        push = {"allow_networks": ["127.0.0.1/32"], "concurrency": 16}
        extra: dict[str, Any] = {"push": push}
        if database_url is not None:
            extra["database"] = database_url
        super().__init__(workdir, broker_port, extra)
        self.database_url = database_url
        self.tokens: dict[str, str] = {}

    @property
    def database(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL."""
        return self.database_url or self.db_path

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.database_url is None:
            return super().query(sql, args)
        with pg.connect(self.database_url, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(pg.translate(sql), args).fetchall()]

    def mqtt_connected(self) -> bool:
        return bool(self.get("admin", "/api/v1/ingest/stats")["mqtt_connected"])

    def get(self, user: str, path: str, timeout: float = 600) -> Any:
        if user not in self.tokens:
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/v1/auth/login", method="POST",
                data=json.dumps({"username": user, "password": PASSWORD, "kind": "bearer"})
                .encode(), headers={"Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                self.tokens[user] = json.loads(resp.read())["token"]
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())


def keep_requesting(central: CentralProcess, user: str, path: str, stop: threading.Event,
                    times: list[float]) -> None:  # fmt: skip
    """One page open: the next request only after the previous answer."""
    while not stop.is_set():
        t0 = time.perf_counter()
        central.get(user, path)
        times.append(time.perf_counter() - t0)
        stop.wait(1.0)


def second_writer(
    target: Path | str, stop: threading.Event, held: list[tuple[float, float]]
) -> None:
    """Another process's bulk write, 2 s every 5 s (windows noted). On SQLite it holds the
    database's write lock; on PostgreSQL, where writers only lock their own rows, it holds
    the lock that numbers event changes (as a CLI write storing events would, until commit)."""
    if pg.is_postgres_url(target):
        with psycopg.connect(str(target), autocommit=True) as conn:
            while not stop.wait(3.0):
                with conn.transaction():
                    conn.execute("select pg_advisory_xact_lock(%s)", [CHANGE_SEQ_LOCK])
                    began = time.time()
                    time.sleep(2.0)
                held.append((began, time.time()))
        return
    db = sqlite3.connect(target, timeout=60, isolation_level=None)
    while not stop.wait(3.0):
        db.execute("begin immediate")
        began = time.time()
        time.sleep(2.0)
        db.execute("rollback")
        held.append((began, time.time()))
    db.close()


def run_probes(
    central: CentralProcess, port: int, sites: list[str], creds: dict[str, str]
) -> list[dict[str, float]]:
    """One live alert per site, 0.5 s apart, each timed on its own thread."""
    fresh: list[dict[str, float]] = []
    probes = []
    for site in sites:
        probes.append(threading.Thread(target=lambda s=site: fresh.append(
            fresh_alert(central, port, s, creds[s]))))  # fmt: skip
        probes[-1].start()
        time.sleep(0.5)
    for t in probes:
        t.join()
    return fresh


def fresh_figures(
    fresh: list[dict[str, float]], name: str, held: list[tuple[float, float]] | None = None
) -> dict[str, Any]:
    """Median and worst live alert (the later of inbox and push); with `held`, each probe
    says whether it overlapped a window where the second process held the write lock."""
    probes: list[dict[str, Any]] = []
    for f in sorted(fresh, key=lambda f: f["sent"]):
        took = max(f["inbox_s"], f["push_s"])
        probe: dict[str, Any] = {k: f[k] for k in ("received_s", "stored_s", "inbox_s", "push_s")}
        probe["s"] = took
        if held is not None:
            probe["during_foreign_lock"] = any(
                a < f["sent"] + took and b > f["sent"] for a, b in held
            )
        probes.append(probe)
    took_all = [p["s"] for p in probes]
    return {
        f"{name}_s": round(statistics.median(took_all), 3),
        f"{name}_s_max": round(max(took_all), 3),
        f"{name}_probes": probes,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else 0.0


# --- the run --------------------------------------------------------------------------------


def fresh_alert(central: CentralProcess, port: int, site: str, password: str) -> dict[str, float]:
    """Publish one live alert on the live lane (as an edge sends an event's start within the
    live window); seconds until it is in the inbox and until its webhook came."""
    client = site_client(port, site, password)
    e = event(site, "rodent", datetime.now(UTC))
    sent = time.time()
    client.publish(topics.camera_live_event(site, "cam0"), encode(e), qos=1).wait_for_publish(30)
    inbox = push = None
    deadline = time.monotonic() + 300
    while (inbox is None or push is None) and time.monotonic() < deadline:
        if inbox is None and central.query("select 1 from alerts where id = ?", (str(e.event_id),)):
            inbox = time.time() - sent
        with Hooks.lock:
            if push is None and str(e.event_id) in Hooks.got:
                push = Hooks.got[str(e.event_id)] - sent
        time.sleep(0.02)
    stop_client(client)
    row = central.query(
        "select received_at, ingested_at from events where event_id = ?", (str(e.event_id),)
    )
    received, stored = (row[0][0] - sent, row[0][1] - sent) if row else (-1.0, -1.0)
    return {"sent": sent, "received_s": round(received, 3), "stored_s": round(stored, 3),
            "inbox_s": round(inbox if inbox is not None else -1, 3),
            "push_s": round(push if push is not None else -1, 3)}  # fmt: skip


def wait_settled(central: CentralProcess, since: float, timeout: float) -> dict[str, int]:
    """Wait for the alert feed and push to finish; count wanted pushes that never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor = central.query("select value from ingest_counters where name = 'feed_cursor'")
        last = central.query("select coalesce(max(change_seq), 0) from events")[0][0]
        pending = central.query("select count(*) from deliveries where status = 'pending'")[0][0]
        if cursor and cursor[0][0] >= last and pending == 0:
            break
        time.sleep(1.0)
    wanted = {r[0] for r in central.query(
        "select id from alerts where kind = 'rodent' and created_at >= ? and org_path != '/'",
        (since,))}  # fmt: skip
    events = central.query(
        "select count(*) from events where kind = 'rodent' and created_at >= ?", (since,)
    )[0][0]
    with Hooks.lock:
        got = set(Hooks.got)
    return {"wanted": len(wanted), "rodent_events": int(events), "lost": len(wanted - got),
            "alerts_missing": int(events) - len(wanted)}  # fmt: skip


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.sites
    # after the n sites: the 2 events/s probe site, then one site per live-alert probe
    site_ids = [f"site-{i}" for i in range(n + 1 + args.fresh_probes)]
    creds = site_credentials([*site_ids, *(f"burst-{i}" for i in range(4))])
    broker = start_fleet_broker(work, creds)
    hook_port = free_port()
    hooks = ThreadingHTTPServer(("127.0.0.1", hook_port), Hooks)
    threading.Thread(target=hooks.serve_forever, name="webhook", daemon=True).start()
    server = PostgresServer().start() if args.database == "postgres" else None
    url = server.create_database() if server is not None else None
    central = CentralProcess(work / "central", broker.port, url)
    procs: list[multiprocessing.Process] = []
    load: dict[str, list[float]] = {}
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        t0 = time.perf_counter()
        tree = build_tree(
            central.config, len(site_ids), max(1, n // 25), f"http://127.0.0.1:{hook_port}/h"
        )
        health_rows = preload(central.database, tree["site_paths"], args.alerts, time.time())
        preload_s = time.perf_counter() - t0
        central.start()
        since = time.time()
        load_s = args.steady_s + args.burst_window_s
        chunks = [site_ids[i:n:4] for i in range(4)]
        for chunk in chunks:
            procs.append(multiprocessing.Process(target=site_clients, args=(
                broker.port, {s: creds[s] for s in chunk}, load_s, args.heartbeat_s,
                args.alerts_per_hour, False)))  # fmt: skip
        procs.append(
            multiprocessing.Process(
                target=site_clients,
                args=(
                    broker.port,
                    {site_ids[n]: creds[site_ids[n]]},
                    load_s,
                    args.heartbeat_s,
                    0,
                    True,
                ),
            )
        )
        for p in procs:
            p.start()
        now = datetime.now(UTC)
        period = f"from={(now - timedelta(days=90)).isoformat()}&to={now.isoformat()}"
        times: dict[str, list[float]] = {"city": [], "county": [], "report": []}
        held: list[tuple[float, float]] = []
        for name, user, path in (
            ("city", "city", "/api/v1/video/wall"),
            ("county", "county", "/api/v1/video/wall"),
            ("report", "city", "/api/v1/reports?" + period.replace("+", "%2B")),
        ):
            threads.append(
                threading.Thread(
                    target=keep_requesting, name=name, args=(central, user, path, stop, times[name])
                )
            )
        for t in threads:
            t.start()
        time.sleep(args.steady_s)
        load["load_avg_steady"] = loadavg()
        burst_at = time.time()
        bursts = [
            multiprocessing.Process(
                target=burst, args=(broker.port, f"burst-{i}", creds[f"burst-{i}"], args.burst // 4)
            )
            for i in range(4)
        ]
        for p in bursts:
            p.start()
        time.sleep(1.0)
        probe_sites = site_ids[n + 1 :]
        fresh = run_probes(central, broker.port, probe_sites, creds)
        # Then another process takes the write lock now and then (a bulk CLI write): pushes
        # must still all arrive, and live alerts meanwhile wait for the lock at worst.
        writer = threading.Thread(target=second_writer, name="writer",
                                  args=(central.database, stop, held))  # fmt: skip
        writer.start()
        threads.append(writer)
        fresh_locked = run_probes(central, broker.port, probe_sites, creds)
        for p in [*bursts, *procs]:
            p.join()
        load["load_avg_after_burst"] = loadavg()
        stop.set()
        for t in threads:
            t.join()
        settled = wait_settled(central, since, 300)
        lag_sql = ("select ingested_at - created_at from events where site like 'site-%' "
                   "and created_at >= ? and created_at < ?")  # fmt: skip
        lags = [r[0] for r in central.query(lag_sql, (since, burst_at))]
        burst_lags = [r[0] for r in central.query(lag_sql, (burst_at, time.time()))]
        alerts_in_db = central.query("select count(*) from alerts")[0][0]
        counts = central.query("select (select count(*) from health_hourly), "
                               "(select count(*) from heartbeat_samples)")[0]  # fmt: skip
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.terminate()
        central.stop()
        hooks.shutdown()
        broker.close()
        if server is not None:
            server.stop()
    return {
        "sites": n, "cameras": n * CAMERAS, "nodes": 1,
        "database": "postgresql" if server is not None else "sqlite",
        "alerts_in_db": alerts_in_db, "alerts_preloaded": args.alerts,
        "health_rows": int(counts[0] + counts[1]), "health_rows_hourly": counts[0],
        "health_rows_raw": counts[1], "health_rows_preloaded": health_rows,
        "ingest_lag_p50_s": round(statistics.median(lags), 4) if lags else None,
        "ingest_lag_p95_s": round(pct(lags, 0.95), 4), "ingest_lag_events": len(lags),
        "ingest_lag_p95_s_during_burst": round(pct(burst_lags, 0.95), 4),
        "wall_s_city": round(statistics.median(times["city"]), 3),
        "wall_s_city_max": round(max(times["city"]), 3), "wall_requests_city": len(times["city"]),
        "wall_s_county": round(statistics.median(times["county"]), 3),
        "report_90d_s_city": round(statistics.median(times["report"]), 3),
        "report_90d_s_city_max": round(max(times["report"]), 3),
        "reports_run": len(times["report"]),
        **fresh_figures(fresh, "fresh_alert_during_burst"),
        **fresh_figures(fresh_locked, "fresh_alert_during_foreign_writes", held),
        "burst_events": args.burst, "pushes_wanted": settled["wanted"],
        "pushes_lost": settled["lost"], "alerts_missing": settled["alerts_missing"],
        "second_writer_locks_s": round(sum(b - a for a, b in held), 1),
        "steady_s": args.steady_s, "heartbeat_s": args.heartbeat_s,
        "alerts_per_site_hour": args.alerts_per_hour, "preload_s": round(preload_s, 1),
        **load,
    }  # fmt: skip


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="postgres: a PostgreSQL server started in a temporary folder "
                        "(testbed.postgres), removed afterwards")  # fmt: skip
    parser.add_argument("--alerts", type=int, default=2_000_000, help="alerts preloaded")
    parser.add_argument("--steady-s", type=float, default=60.0, help="steady load before the burst")
    parser.add_argument("--burst-window-s", type=float, default=30.0, help="load during the burst")
    parser.add_argument("--burst", type=int, default=20_000, help="backlog events in the burst")
    parser.add_argument("--fresh-probes", type=int, default=5, help="live alerts in the burst")
    parser.add_argument("--heartbeat-s", type=float, default=30.0)
    parser.add_argument("--alerts-per-hour", type=float, default=2.0, help="per site")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="fsv-bench-scale-"))
    extra: dict[str, Any] = {"sqlite": sqlite3.sqlite_version}
    if args.database == "postgres":
        extra["postgresql_settings"] = "testbed.postgres: fsync off, shared_buffers 64MB"
    machine = describe_machine(platform=platform.platform(), **extra)
    try:
        figures = run(args, work)
    except BaseException:
        print(f"central's data and log are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)  # central's database (gigabytes at 2 M alerts)
    result = {**figures, "machine": machine,
              "command": " ".join(["bench/scale.py", *sys.argv[1:]]),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    result["machine"]["load_avg_at_end"] = loadavg()
    print(json.dumps(result, indent=2))
    old = json.loads(args.output.read_text()) if args.output.exists() else {}
    if args.database == "postgres":
        # The PostgreSQL run sits beside the SQLite one, under its own key.
        old["postgresql"] = result
        result = old
    else:
        # bench/viewers.py, bench/province.py and the PostgreSQL run of this benchmark write
        # their figures into the same file: keep them.
        result.update(
            {
                k: v
                for k, v in old.items()
                if k.startswith("viewers_one_core") or k in ("province", "postgresql")
            }
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
