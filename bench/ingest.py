"""Central ingest through a real Mosquitto: sustained events/s into central's database, and
edge-created → row-visible latency (p50/p95) of events sent by the real edge outbox path.

Starts a broker with the shipped policy (configs/mosquitto), a `central-server run`
process, and:
  1. throughput: `--sites` generator processes, each a site publishing `--events` events
     at QoS 1 as fast as it can; the rate is rows / (last - first ingest stamp) at central;
     then how long after the last row the alert feed (regulator hooks) caught up;
  2. backlog drain: the same with central stopped while they publish, then started: how
     fast central catches up with what the broker queued in its persistent session. This
     is `events_per_s`: central's sustained rate into its database, measured without the
     generators competing for the same cores (in phase 1 they run beside it);
  3. latency: one edge (Outbox + MqttLink + OutboxPublisher, as in the agent) putting
     `--rate` events/s for `--seconds`; a poller sees each row appear in central's DB.
Prints the figures and writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--sites 4] [--events 10000] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fleet import (  # noqa: E402
    CentralRun,
    publish_all,
    site_credentials,
    start_fleet_broker,
)
from bench.machine import describe_machine  # noqa: E402
from edge_agent.credentials import Credential  # noqa: E402
from edge_agent.mqtt.link import MqttLink  # noqa: E402
from edge_agent.mqtt.outbox import Outbox  # noqa: E402
from edge_agent.mqtt.publisher import OutboxPublisher  # noqa: E402
from edge_agent.mqtt.settings import MqttConfig  # noqa: E402
from fsv_contract import EventPayload, encode, topics  # noqa: E402
from testbed.central_admin import AdminReader, create_admin  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ingest.json"


def event(site: str, n: int, cameras: int = 8) -> EventPayload:
    """One start-phase event as a detector makes it."""
    now = datetime.now(UTC)
    return EventPayload(
        event_id=uuid.uuid4(), site=site, camera=f"cam-{n % cameras}", phase="start",
        kind="no_chef_hat", station="kitchen_prep", rule="hat", start=now, score=0.87,
        boxes=[{"x": 0.1, "y": 0.2, "w": 0.1, "h": 0.3, "label": "person", "score": 0.87}],
        details={"n": n}, created_at=now,
    )  # fmt: skip


def generate(port: int, site: str, password: str, count: int) -> None:
    """A generator process: publish `count` pre-encoded events at QoS 1, wait for the acks."""
    payloads = [(topics.camera_event(site, f"cam-{n % 8}"), encode(event(site, n)))
                for n in range(count)]  # fmt: skip
    publish_all(port, site, password, payloads)


class Central(CentralRun):
    """A `central-server run` process, read through the admin API and its database."""

    def __init__(self, workdir: Path, broker_port: int) -> None:
        super().__init__(workdir, broker_port)
        create_admin(self.config)
        self.admin = AdminReader(f"http://127.0.0.1:{self.port}")

    def mqtt_connected(self) -> bool:
        return bool(self.admin.get("/api/v1/ingest/stats", timeout=2)["mqtt_connected"])

    def wait_rows(self, site_like: str, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        sql = "select count(*) from events where site like ?"
        while self.query(sql, (site_like,))[0][0] < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"central got fewer than {expected} rows for {site_like}")
            time.sleep(0.2)

    def feed_behind(self) -> int:
        """Event changes the alert feed has not handed to the regulator hooks yet."""
        cursor = self.query("select value from ingest_counters where name = 'feed_cursor'")
        last = self.query("select coalesce(max(change_seq), 0) from events")[0][0]
        return int(last - (cursor[0][0] if cursor else 0))

    def wait_feed(self, timeout: float) -> float:
        """Seconds until the alert feed has caught up with every stored event."""
        started = time.monotonic()
        while self.feed_behind() > 0:
            if time.monotonic() > started + timeout:
                raise RuntimeError("the alert feed did not catch up")
            time.sleep(0.2)
        return time.monotonic() - started

    def rate(self, site_like: str) -> float:
        first, last, n = self.query(
            "select min(ingested_at), max(ingested_at), count(*) from events where site like ?",
            (site_like,),
        )[0]
        return (n - 1) / (last - first) if last > first else float("inf")


def run_generators(port: int, sites: dict[str, str], count: int) -> float:
    procs = [multiprocessing.Process(target=generate, args=(port, s, p, count), name=s)
             for s, p in sites.items()]  # fmt: skip
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - started


def measure_latency(port: int, central: Central, password: str, rate: float,
                    seconds: float, workdir: Path) -> list[float]:  # fmt: skip
    """The agent's own path: outbox put (durable) → publisher → broker → central row."""
    outbox = Outbox(workdir / "outbox.db", "lat")
    link = MqttLink(MqttConfig(host="127.0.0.1", port=port, tls=None), "lat",
                    Credential("lat", password), "bench")  # fmt: skip
    publisher = OutboxPublisher(outbox, link)
    link.start()
    publisher.start()
    link.connected.wait(10)
    total = int(rate * seconds)
    seen: dict[str, float] = {}
    created: dict[str, float] = {}
    last_id = central.query("select coalesce(max(id), 0) from events")[0][0]
    started = time.monotonic()
    sent = 0
    while len(seen) < total and time.monotonic() < started + seconds + 30:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while sent < due:
            e = event("lat", sent)
            outbox.put_event(e)
            sent += 1
        rows = central.query(
            "select id, event_id, created_at from events where id > ? and site = 'lat'",
            (last_id,),
        )
        now = time.time()
        for row_id, event_id, created_at in rows:
            last_id = max(last_id, row_id)
            seen.setdefault(event_id, now)
            created[event_id] = created_at
        time.sleep(0.005)
    publisher.stop()
    link.stop()
    outbox.close()
    return [seen[e] - created[e] for e in seen]


def mosquitto_version() -> str:
    """The first line of `mosquitto -h` (its version)."""
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=4, help="generator processes (sites)")
    parser.add_argument("--events", type=int, default=10_000, help="events per generator")
    parser.add_argument("--rate", type=float, default=200.0, help="latency phase events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency phase length")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="fsv-bench-ingest-"))
    sites = site_credentials(f"gen-{i}" for i in range(args.sites))
    drain_sites = site_credentials(f"drain-{i}" for i in range(args.sites))
    lat_password = site_credentials(["lat"])["lat"]
    broker = start_fleet_broker(work, {**sites, **drain_sites, "lat": lat_password})
    central = Central(work / "central", broker.port)
    central.start()
    try:
        total = args.sites * args.events
        gen_s = run_generators(broker.port, sites, args.events)
        central.wait_rows("gen-%", total, 600)
        live = central.rate("gen-%")
        feed_lag = central.wait_feed(600)

        central.stop()
        run_generators(broker.port, drain_sites, args.events)
        central.start()
        central.wait_rows("drain-%", total, 600)
        drain = central.rate("drain-%")

        lat = measure_latency(broker.port, central, lat_password, args.rate, args.seconds, work)
    finally:
        central.stop()
        broker.close()
    lat.sort()
    p50 = statistics.median(lat)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    result = {
        # Central's sustained rate into its database: draining what the broker queued. The
        # live figure also shares this machine's cores with the generator processes.
        "events_per_s": round(drain, 1),
        "events_per_s_live": round(live, 1),
        "events_per_s_backlog_drain": round(drain, 1),
        "generators": args.sites,
        "events_per_generator": args.events,
        "generator_wall_s": round(gen_s, 2),
        "alerts_caught_up_after_s": round(feed_lag, 1),
        "latency_p50_s": round(p50, 4),
        "latency_p95_s": round(p95, 4),
        "latency_max_s": round(lat[-1], 4),
        "latency_events": len(lat),
        "latency_rate_per_s": args.rate,
        "machine": describe_machine(platform=platform.platform(), mosquitto=mosquitto_version()),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
