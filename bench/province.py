"""A province on PostgreSQL and several central nodes, one node killed mid-run.

Starts a real PostgreSQL server (testbed.postgres: a temporary folder, a random port), one
Mosquitto under central's shipped policy (bench.fleet) and `--nodes` `central-server run`
processes (`python -m central run -c ...`, as the systemd unit starts it) on that database,
each with its own node id and the shared ingest (MQTT 5 shared subscriptions). `--sites`
sites are registered in bulk: one `central-server import sites.csv --out DIR` (org tree,
sites, broker credentials, one broker reload); each site then logs in with the credentials
of its enrolment file. The sites are real MQTT 5 clients behaving as the edge agent's link
does (bench.broker's site processes: a heartbeat of 10 cameras every `--heartbeat-s`,
events at QoS 1 on the live lane at `--alerts-per-hour` per site), driven from `--procs`
processes.

After `--warmup-s` and `--before-s` of steady load, the node holding the alert feed's lease
is killed with SIGKILL; the load runs on for `--after-s`, then the sites stop and central
gets `--drain-s` to store what is left. Then:
  - every QoS 1 event published (by event id) is looked up in the events and alerts tables:
    `node_kill_lost_events` = published - stored, `duplicates_stored`, alerts missing;
  - ingest lag (event created -> stored, `ingested_at - created_at`) p50/p95 of the events
    created before the kill and after it;
  - seconds until the surviving nodes held every lease the killed node held;
  - CPU (% of one core) of each node, PostgreSQL, the broker and the site processes, before
    and after the kill.
With `--restart-killed` the killed node is started again under its node id afterwards and
the events are counted once more (what its broker session still held).
Writes the figures under the `province` key of bench/results/scale.json (other keys kept).

    .venv/bin/python bench/province.py [--sites 5000] [--nodes 3] [--alerts-per-hour 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.broker import cpu_seconds, raise_fd_limit, rss_mb, site_process  # noqa: E402
from bench.fleet import SHIPPED_SETTINGS, CentralRun, start_fleet_broker  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from bench.scale import pct  # noqa: E402
from testbed.mosquitto import Broker  # noqa: E402
from testbed.postgres import PostgresServer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.json"
CORES_NOTE = (
    "the machine's cores are shared by PostgreSQL, the broker, every central node and the "
    "site processes (and by other work on this machine: see the load averages)"
)
Sent = list[tuple[str, str, Any, float]]  # (kind, site, key, sent_at), as bench.broker sends


class Node(CentralRun):
    """One `central-server run` process of the cluster; up once its /metrics (read from
    this host, no login) says the broker connection is up."""

    start_timeout_s = 180.0
    poll_s = 0.5

    def __init__(self, workdir: Path, broker_port: int, extra: dict[str, Any]) -> None:
        super().__init__(workdir, broker_port, extra)
        self.node_id: str = extra["cluster"]["node_id"]

    def metrics(self) -> dict[str, float]:
        """The node's Prometheus figures, by sample name with labels."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def mqtt_connected(self) -> bool:
        return self.metrics().get("fsv_mqtt_connected", 0.0) == 1.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def node_config(work: Path, url: str, node: str, nodes: int, broker: Broker) -> dict[str, Any]:
    """What one node's YAML adds to bench.fleet's (database, cluster, broker files).

    The test broker reads copies of the files in its own folder: the reload command copies
    them there (keeping the copies' owner and mode) before the SIGHUP, as Broker.reload does.
    """
    copy = " && ".join(f"cp {work / f} {broker.workdir / f}" for f in ("passwd", "acl"))
    return {
        "database": url,
        "cluster": {"node_id": node, "nodes": nodes, "shared_ingest": True},
        "broker": {
            "password_file": str(work / "passwd"), "acl_file": str(work / "acl"),
            "reload_command": ["sh", "-c", f"{copy} && kill -HUP {broker.pid}"],
        },
    }  # fmt: skip


def write_sites_csv(path: Path, sites: int) -> list[str]:
    """A province of 10 cities of 10 counties, one canteen enterprise per site."""
    ids = [f"site-{i:05d}" for i in range(sites)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["province", "city", "county", "enterprise", "enterprise_type", "site_id"])
        for i, site in enumerate(ids):
            city, county = i % 10, (i // 10) % 10
            w.writerow(["Province", f"City {city}", f"County {city}-{county}",
                        f"Canteen {i}", "canteen", site])  # fmt: skip
    return ids


def read_credentials(out: Path, sites: list[str]) -> dict[str, str]:
    """Each site's broker password from its enrolment file (SITE.credentials.yaml)."""
    creds = {}
    for site in sites:
        doc = yaml.safe_load((out / f"{site}.credentials.yaml").read_text())
        creds[site] = doc["mqtt"]["password"]
    return creds


def pg_cpu_seconds(data: Path) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and its backends (living ones)."""
    master = int((data / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(master)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == master:
                    total += cpu_seconds(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return total


class Cpu:
    """CPU seconds of named processes between two readings, as % of one core."""

    def __init__(self, readers: dict[str, Any]) -> None:
        self.readers = readers
        self.t0 = time.time()
        self.c0 = {k: self._read(f) for k, f in readers.items()}

    @staticmethod
    def _read(f: Any) -> float | None:
        try:
            return float(f())
        except (OSError, ValueError):
            return None

    def percent(self) -> dict[str, float | None]:
        dt = time.time() - self.t0
        out: dict[str, float | None] = {}
        for k, f in self.readers.items():
            c1, c0 = self._read(f), self.c0[k]
            out[k] = None if c1 is None or c0 is None else round((c1 - c0) / dt * 100, 1)
        return out


class LeaseWatch:
    """Polls node_leases after the kill: when each lease the killed node held is held
    (unexpired) by another node."""

    def __init__(self, url: str, killed: str, held: list[str], t_kill: float) -> None:
        self.url, self.killed, self.held, self.t_kill = url, killed, held, t_kill
        self.taken: dict[str, tuple[str, float]] = {}
        self.thread = threading.Thread(target=self.run, name="leases", daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while len(self.taken) < len(self.held) and time.time() - self.t_kill < 300:
                    now = time.time()
                    for name, holder in conn.execute(
                        "select name, holder from node_leases where expires_at >= %s", [now]
                    ):
                        if name in self.held and name not in self.taken and holder != self.killed:
                            self.taken[name] = (holder, round(now - self.t_kill, 2))
                    time.sleep(0.1)
        except psycopg.Error:
            pass  # the server stopped: what was seen so far stands


def lease_holders(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select name, holder from node_leases where expires_at >= %s", [time.time()]
        ).fetchall()
    return {str(n): str(h) for n, h in rows}


def stored(url: str, ids: set[str]) -> dict[str, Any]:
    """What the database holds of the published events `ids`."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select event_id, created_at, ingested_at from events").fetchall()
        alert_ids = [r[0] for r in conn.execute("select id from alerts")]
        dup_events = conn.execute(
            "select count(*) - count(distinct event_id) from events").fetchone()  # fmt: skip
        counts = conn.execute(
            "select (select count(*) from alerts), (select count(*) from heartbeat_samples), "
            "(select count(*) from health_hourly)"
        ).fetchone()  # fmt: skip
    assert dup_events is not None and counts is not None
    events = {str(r[0]): (float(r[1]), float(r[2])) for r in rows if str(r[0]) in ids}
    alerts = [a for a in alert_ids if str(a) in ids]
    return {
        "events": events,
        "events_stored": len(events),
        "alerts_stored": len(set(alerts)),
        "duplicates_stored": int(dup_events[0]) + len(alerts) - len(set(alerts)),
        "alerts_in_db": int(counts[0]),
        "health_rows": int(counts[1]) + int(counts[2]),
    }


def missing_alert_detail(url: str, ids: set[str], t_kill: float) -> dict[str, Any]:
    """The stored events that have no alert: when they were created (s after the kill),
    their change_seq, and how many events share a change_seq with another event (the
    alert feed follows change_seq)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select e.event_id, e.created_at, e.change_seq from events e "
            "left join alerts a on a.id = e.event_id where a.id is null"
        ).fetchall()
        shared = conn.execute(
            "select count(*) from events where change_seq in "
            "(select change_seq from events group by change_seq having count(*) > 1)"
        ).fetchone()
    assert shared is not None
    mine = [r for r in rows if str(r[0]) in ids]
    return {
        "created_s_after_kill": sorted(round(float(r[1]) - t_kill, 1) for r in mine)[:20],
        "change_seq": sorted(int(r[2]) for r in mine)[:20],
        "events_sharing_a_change_seq": int(shared[0]),
    }


def wait_stored(url: str, ids: set[str], timeout_s: float) -> tuple[dict[str, Any], float]:
    """Poll until every event and its alert is stored or `timeout_s` passed (or no progress
    for 20 s once time is up to half); returns the last count and seconds waited."""
    t0 = time.time()
    last, last_change = -1, t0
    while True:
        got = stored(url, ids)
        done = got["events_stored"] + got["alerts_stored"]
        if done != last:
            last, last_change = done, time.time()
        waited = time.time() - t0
        if done == 2 * len(ids) or waited > timeout_s:
            return got, waited
        if waited > timeout_s / 2 and time.time() - last_change > 20:
            return got, waited
        time.sleep(2.0)


def lag_figures(events: dict[str, tuple[float, float]], t0: float, t1: float) -> dict[str, Any]:
    lags = [ing - created for created, ing in events.values() if t0 <= created < t1]
    return {
        "p50_s": round(statistics.median(lags), 3) if lags else None,
        "p95_s": round(pct(lags, 0.95), 3) if lags else None,
        "max_s": round(max(lags), 3) if lags else None,
        "events": len(lags),
    }


def restart_and_count(victim: Node, url: str, ids: set[str], drain_s: float) -> dict[str, Any]:
    """Start the killed node again under its node id and count the events once more."""
    victim.start()
    again, waited = wait_stored(url, ids, drain_s)
    return {
        "node_kill_lost_events_after_restart": len(ids) - again["events_stored"],
        "alerts_missing_after_restart": len(ids) - again["alerts_stored"],
        "duplicates_stored_after_restart": again["duplicates_stored"],
        "restart_drain_s": round(waited, 1),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    load_start = [round(x, 2) for x in os.getloadavg()]
    pg = PostgresServer().start()
    names = [f"node-{i + 1}" for i in range(args.nodes)]
    # the shipped policy, use_username_as_clientid included: each node has its own login
    broker = start_fleet_broker(work, {}, SHIPPED_SETTINGS, names)
    nodes: list[Node] = []
    procs: list[tuple[multiprocessing.Process, Connection]] = []
    try:
        url = pg.create_database()
        assert broker.pid is not None
        nodes = [Node(work / name, broker.port,
                      node_config(work, url, name, args.nodes, broker))
                 for name in names]  # fmt: skip
        # bulk registration: one import (org tree, sites, credentials), one broker reload
        site_ids = write_sites_csv(work / "sites.csv", args.sites)
        t0 = time.time()
        imported = subprocess.run(
            [sys.executable, "-m", "central", "import", "-c", str(nodes[0].config),
             str(work / "sites.csv"), "--out", str(work / "enrol")],
            cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        import_s = time.time() - t0
        print(imported.stdout.strip(), flush=True)
        creds = read_credentials(work / "enrol", site_ids)
        t0 = time.time()
        for node in nodes:
            node.start()
        nodes_start_s = time.time() - t0
        # the sites
        for i in range(args.procs):
            chunk = {s: creds[s] for s in site_ids[i :: args.procs]}
            here, there = multiprocessing.Pipe()
            p = multiprocessing.Process(target=site_process, args=(
                broker.port, chunk, args.heartbeat_s, args.alerts_per_hour, there))  # fmt: skip
            procs.append((p, here))
        for p, _ in procs:
            p.start()
        started = [conn.recv() for _, conn in procs]
        connect_all_s = max(t1 for _, _, t1 in started) - min(t0 for _, t0, _ in started)
        print(f"{args.sites} sites connected in {connect_all_s:.1f} s", flush=True)
        time.sleep(args.warmup_s)
        readers: dict[str, Any] = {n.node_id: (lambda pid=n.pid: cpu_seconds(pid)) for n in nodes}
        readers["postgresql"] = lambda: pg_cpu_seconds(pg.data)
        readers["broker"] = lambda: cpu_seconds(broker.pid or 0)
        workers = [p.pid for p, _ in procs if p.pid is not None]
        readers["sites"] = lambda: sum(cpu_seconds(w) for w in workers)
        w0 = time.time()
        cpu = Cpu(readers)
        time.sleep(args.before_s)
        cpu_before = cpu.percent()
        load_before = [round(x, 2) for x in os.getloadavg()]
        # the kill: the node that leads the alert feed (else the first)
        holders = lease_holders(url)
        victim = next((n for n in nodes if n.node_id == holders.get("alert-feed")), nodes[0])
        # the singletons it leads, and the adoption of its broker sessions (central.ingest.adopt:
        # its own node:{id} lease runs out, another node takes adopt:{id})
        held = sorted(n for n, h in holders.items() if h == victim.node_id and ":" not in n)
        held.append(f"adopt:{victim.node_id}")
        t_kill = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.proc is not None
        victim.proc.wait()
        victim.proc = None
        print(f"killed {victim.node_id} (leases {held})", flush=True)
        watch = LeaseWatch(url, victim.node_id, held, t_kill)
        readers.pop(victim.node_id)
        cpu = Cpu(readers)
        time.sleep(args.after_s)
        cpu_after = cpu.percent()
        load_after = [round(x, 2) for x in os.getloadavg()]
        t_end = time.time()
        for _, conn in procs:
            conn.send("stop")
        sent: Sent = []
        for _, conn in procs:
            sent += conn.recv()[1]
        for p, _ in procs:
            p.join(60)
        events = [s for s in sent if s[0] == "ev"]
        ids = {str(s[2]) for s in events}
        got, drained_s = wait_stored(url, ids, args.drain_s)
        survivors = [n for n in nodes if n is not victim]
        missing_alerts = missing_alert_detail(url, ids, t_kill)
        watch.thread.join(1)
        after_restart = (
            restart_and_count(victim, url, ids, args.drain_s) if args.restart_killed else {}
        )
        lag_window = lag_figures(got["events"], w0, t_kill)
        lag_after = lag_figures(got["events"], t_kill, t_end)
        rss = {n.node_id: rss_mb(n.pid) for n in survivors}
    finally:
        for p, _ in procs:
            if p.is_alive():
                p.terminate()
        for n in nodes:
            if n.proc is not None:
                n.proc.kill()
                n.proc.wait()
        broker.close()
        pg.stop()
    lost = len(ids) - got["events_stored"]
    takeover = [t for _, t in watch.taken.values()]
    return {
        "sites": args.sites, "cameras": args.sites * 10, "nodes": args.nodes,
        "database": "postgresql", "broker": "one Mosquitto, shipped policy",
        "node_kill_lost_events": lost, "events_published": len(ids),
        "events_stored": got["events_stored"], "duplicates_stored": got["duplicates_stored"],
        "alerts_missing": len(ids) - got["alerts_stored"],
        "alerts_missing_detail": missing_alerts, "drain_s": round(drained_s, 1),
        **after_restart,
        "killed_node": victim.node_id, "killed_node_leases": held,
        "lease_takeover_s": max(takeover) if len(takeover) == len(held) and held else None,
        "lease_takeover": {k: {"by": h, "s": t} for k, (h, t) in watch.taken.items()},
        "ingest_lag_p50_s_before_kill": lag_window["p50_s"],
        "ingest_lag_p95_s_before_kill": lag_window["p95_s"],
        "ingest_lag_p50_s_after_kill": lag_after["p50_s"],
        "ingest_lag_p95_s_after_kill": lag_after["p95_s"],
        "ingest_lag_before_kill": lag_window, "ingest_lag_after_kill": lag_after,
        "cpu_percent_of_core_before_kill": cpu_before,
        "cpu_percent_of_core_after_kill": cpu_after,
        "node_rss_mb_at_end": rss,
        "alerts_in_db": got["alerts_in_db"], "health_rows": got["health_rows"],
        "import_s": round(import_s, 1), "nodes_start_s": round(nodes_start_s, 1),
        "connect_all_s": round(connect_all_s, 1),
        "heartbeat_s": args.heartbeat_s, "alerts_per_site_hour": args.alerts_per_hour,
        "before_s": args.before_s, "after_s": args.after_s, "site_processes": args.procs,
        "load_avg_at_start": load_start, "load_avg_before_kill": load_before,
        "load_avg_after_kill": load_after,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2, help="site processes")
    parser.add_argument("--heartbeat-s", type=float, default=30.0)
    parser.add_argument("--alerts-per-hour", type=float, default=2.0, help="events per site")
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--before-s", type=float, default=60.0, help="load before the kill")
    parser.add_argument("--after-s", type=float, default=60.0, help="load after the kill")
    parser.add_argument("--drain-s", type=float, default=120.0, help="wait for the stores")
    parser.add_argument("--restart-killed", action="store_true",
                        help="start the killed node again and count once more")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on `timeout`
    nofile = raise_fd_limit(args.sites)
    machine = describe_machine(note=CORES_NOTE, open_files_limit=nofile,
                               postgresql_settings="testbed.postgres: fsync off, "
                               "shared_buffers 64MB")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="fsv-bench-province-"))
    try:
        figures = run(args, work)
    except BaseException:
        print(f"the nodes' logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)  # the sites' credentials and the nodes' logs
    result = {**figures, "machine": machine,
              "command": " ".join(["bench/province.py", *sys.argv[1:]]),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    # bench/scale.py and bench/viewers.py write the other keys of the same file: keep them
    data = json.loads(args.output.read_text()) if args.output.exists() else {}
    data["province"] = result
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
