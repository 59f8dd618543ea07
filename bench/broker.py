"""One Mosquitto under a province's site connections (central's shipped broker policy).

Starts Mosquitto as bench/fleet.py does (password file, ACL, one login per site with
use_username_as_clientid, the shipped limits), then central's own MQTT client
(central.ingest.broker_client.BrokerClient: main session and live lane, persistent sessions,
manual acks) and `--sites` site clients, each a real MQTT 5 connection under its own login
behaving as the edge agent's link does: persistent session, last will, retained `online`
state and the command subscription on every connect, a heartbeat (the edge's own
build_heartbeat, 10 cameras) every 30 s at QoS 0, and events at QoS 1 on the live lane at
2 per site and hour (random, exponential gaps). The sites run in `--procs` processes, each
driving its clients from one asyncio loop through paho's socket callbacks (no thread per
client), so what is measured is the broker.

Per step, once every site is connected and after `--warmup-s`: the broker's CPU (% of one
core, /proc/PID/stat over `--window-s`) and RSS, publish → central latency (timestamps in
the payloads: heartbeat `ts`, event `created_at`), heartbeats lost in the window; then a
connect storm: the broker is restarted (clean stop, persistence kept) and every site
reconnects at once with the edge's back-off (1 s, doubling): seconds until central has a
fresh `online` state from every site. QoS 1 events sent over the whole run (storm included)
must all reach central. Prints a table and writes bench/results/broker.json.

    .venv/bin/python bench/broker.py [--sites 500,2000,5000] [--window-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import logging
import multiprocessing
import os
import queue
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fleet import CENTRAL_PASSWORD, site_credentials, start_fleet_broker  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from bench.scale import event, pct  # noqa: E402
from central.config import MqttConfig as CentralMqttConfig  # noqa: E402
from central.ingest.broker_client import BrokerClient, RawMessage  # noqa: E402
from edge_agent.mqtt.heartbeat import build_heartbeat  # noqa: E402
from edge_agent.mqtt.settings import MqttConfig as EdgeMqttConfig  # noqa: E402
from fsv_contract import encode, topics  # noqa: E402
from fsv_contract.payloads import AgentStatePayload  # noqa: E402

RESULTS = REPO / "bench" / "results" / "broker.json"
CAMERAS = 10
EDGE = EdgeMqttConfig(host="127.0.0.1", tls=None)  # the edge's defaults: keepalive, back-off
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the site processes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """A recorder's figures as the edge's heartbeat reads them."""

    camera: str
    state: str = "online"
    fps: float = 25.0
    bitrate_bps: float = 4_000_000.0
    last_segment_end: float | None = None


def heartbeat_bytes(now: float, started: float) -> bytes:
    """The edge's heartbeat (build_heartbeat) of a 10-camera site, stamped `now`."""
    cams = [Camera(f"cam{c}", last_segment_end=now - 2.0) for c in range(CAMERAS)]
    return encode(build_heartbeat(now, started, (4 * 10**12, 10**12), None, cams, 20.0, 40.0,
                                  (0, 0)))  # fmt: skip


def micros(ts: float) -> int:
    return int(round(ts * 1e6))


class Site:
    """One site's MQTT 5 connection, driven by the process's asyncio loop (paho socket
    callbacks), reconnecting as the edge's link does (back-off from 1 s, doubling)."""

    def __init__(self, fleet: SiteFleet, site: str, password: str) -> None:
        self.fleet = fleet
        self.site = site
        self.connected = False
        self.delay = EDGE.reconnect_min_s
        self.connects = 0
        self.unacked: set[int] = set()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{site}",
                             protocol=mqtt.MQTTv5)  # fmt: skip
        client.username_pw_set(site, password)
        client.will_set(topics.agent_state(site), self.state("offline"), qos=1, retain=True)
        client.max_inflight_messages_set(EDGE.outbox.inflight)
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_publish = self.on_publish
        client.on_socket_open = self.on_socket_open
        client.on_socket_close = self.on_socket_close
        client.on_socket_register_write = self.on_register_write
        client.on_socket_unregister_write = self.on_unregister_write
        self.client = client

    def state(self, state: str) -> bytes:
        now = datetime.now(UTC)
        return encode(AgentStatePayload(state=state, version="bench", started_at=now, since=now))

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = EDGE.session_expiry_s
        try:
            self.client.connect("127.0.0.1", self.fleet.port, keepalive=EDGE.keepalive_s,
                                clean_start=False, properties=props)  # fmt: skip
        except OSError:
            self.retry()

    def retry(self) -> None:
        """The next attempt after the back-off, which doubles up to the edge's maximum."""
        self.fleet.loop.call_later(self.delay, self.reconnect)
        self.delay = min(self.delay * 2, EDGE.reconnect_max_s)

    def reconnect(self) -> None:
        if self.fleet.closing or self.connected:
            return
        try:
            self.client.reconnect()
        except OSError:
            self.retry()

    # paho callbacks (the loop's thread)
    def on_connect(self, client: mqtt.Client, _u: object, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.retry()
            return
        self.connected = True
        self.delay = EDGE.reconnect_min_s
        self.connects += 1
        client.publish(topics.agent_state(self.site), self.state("online"), qos=1, retain=True)
        client.subscribe(topics.command_filter(self.site), qos=1)
        self.fleet.on_site_connected(self)

    def on_disconnect(self, _c: mqtt.Client, _u: object, _f: Any, _rc: Any, _p: Any) -> None:
        self.connected = False
        if not self.fleet.closing:
            self.retry()

    def on_publish(self, _c: mqtt.Client, _u: object, mid: int, _rc: Any, _p: Any) -> None:
        self.unacked.discard(mid)

    def on_socket_open(self, client: mqtt.Client, _u: object, sock: Any) -> None:
        self.fleet.loop.add_reader(sock, client.loop_read)

    def on_socket_close(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        self.fleet.loop.remove_reader(sock)
        self.fleet.loop.remove_writer(sock)

    def on_register_write(self, client: mqtt.Client, _u: object, sock: Any) -> None:
        self.fleet.loop.add_writer(sock, client.loop_write)

    def on_unregister_write(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        self.fleet.loop.remove_writer(sock)


class SiteFleet:
    """The sites of one process: connect them all, then publish at the edge's rates."""

    def __init__(self, port: int, creds: dict[str, str], hb_s: float, events_per_h: float,
                 ctrl: Connection) -> None:  # fmt: skip
        self.port = port
        self.hb_s = hb_s
        self.events_per_h = events_per_h
        self.ctrl = ctrl
        self.loop = asyncio.get_running_loop()
        self.closing = False
        self.sites = [Site(self, s, p) for s, p in creds.items()]
        self.pending_first = len(self.sites)
        self.all_connected = asyncio.Event()
        self.started = time.time()
        self.sent: list[tuple[str, str, Any, float]] = []  # (kind, site, key, sent_at)
        self.rng = random.Random(os.getpid())

    def on_site_connected(self, site: Site) -> None:
        if site.connects == 1:
            self.pending_first -= 1
            if self.pending_first == 0:
                self.all_connected.set()

    async def misc(self) -> None:
        """paho's timers (keepalive pings, retries) for every client, once a second."""
        while not self.closing:
            for site in self.sites:
                if site.connected:
                    site.client.loop_misc()
            await asyncio.sleep(1.0)

    async def publish(self) -> None:
        """Heartbeats every hb_s (phases spread), events at exponential gaps (QoS 1, live
        lane); a site that is not connected skips its heartbeat and holds its event."""
        now = time.time()
        rate = self.events_per_h / 3600.0
        due: list[tuple[float, int, str, int]] = []
        for i in range(len(self.sites)):
            due.append((now + self.rng.random() * self.hb_s, 0, "hb", i))
            if rate > 0:
                due.append((now + self.rng.expovariate(rate), 1, "ev", i))
        heapq.heapify(due)
        while not self.closing:
            now = time.time()
            while due and due[0][0] <= now:
                _, order, kind, i = heapq.heappop(due)
                site = self.sites[i]
                if kind == "hb":
                    if site.connected:
                        t = time.time()
                        site.client.publish(topics.heartbeat(site.site),
                                            heartbeat_bytes(t, self.started), qos=0)  # fmt: skip
                        stamp = datetime.fromtimestamp(t, UTC).timestamp()  # as in the payload
                        self.sent.append(("hb", site.site, micros(stamp), t))
                    heapq.heappush(due, (now + self.hb_s, order, kind, i))
                elif not site.connected:
                    heapq.heappush(due, (now + 1.0, order, kind, i))
                else:
                    e = event(site.site, "no_mask", datetime.now(UTC), f"cam{i % CAMERAS}")
                    info = site.client.publish(topics.camera_live_event(site.site, e.camera),
                                               encode(e), qos=1)  # fmt: skip
                    site.unacked.add(info.mid)
                    assert e.created_at is not None
                    self.sent.append(("ev", site.site, str(e.event_id), e.created_at.timestamp()))
                    heapq.heappush(due, (now + self.rng.expovariate(rate), order, kind, i))
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        t0 = time.time()
        for n, site in enumerate(self.sites):
            site.connect()
            if n % 50 == 49:
                await asyncio.sleep(0)  # let CONNACKs in while connecting
        misc = asyncio.create_task(self.misc())
        await self.all_connected.wait()
        self.ctrl.send(("connected", t0, time.time()))
        publisher = asyncio.create_task(self.publish())
        await self.loop.run_in_executor(None, self.ctrl.recv)  # "stop"
        self.closing = True
        await publisher
        # QoS 1 messages still unacknowledged get their acks (or a reconnect resends them)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(s.unacked for s in self.sites):
            for s in self.sites:
                s.client.loop_misc()
            await asyncio.sleep(0.2)
        self.ctrl.send(("sent", self.sent, sum(s.connects for s in self.sites)))
        for s in self.sites:
            s.client.disconnect()
        await asyncio.sleep(0.5)
        misc.cancel()


def site_process(port: int, creds: dict[str, str], hb_s: float, events_per_h: float,
                 ctrl: Connection) -> None:  # fmt: skip
    """A process running `creds`' sites on one asyncio loop."""

    async def main() -> None:
        await SiteFleet(port, creds, hb_s, events_per_h, ctrl).run()

    asyncio.run(main())


# --- central's side -------------------------------------------------------------------------


class Central:
    """Central's own broker client (main session and live lane); each message is parsed
    for its timestamp on a thread of its own and acknowledged, as central acks after
    storing. Keeps the first arrival of each heartbeat and event, and each site's latest
    `online` state time (its `since`)."""

    def __init__(self, port: int) -> None:
        config = CentralMqttConfig(port=port, reconnect_max_s=1)
        self.inbox: queue.SimpleQueue[RawMessage | None] = queue.SimpleQueue()
        self.clients = [BrokerClient(config, CENTRAL_PASSWORD, self.inbox.put, live=live)
                        for live in (False, True)]  # fmt: skip
        self.first: dict[tuple[str, Any], float] = {}  # (kind, key) -> received_at
        self.latency: dict[tuple[str, Any], float] = {}
        self.online_since: dict[str, float] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.consume, name="central", daemon=True)

    def start(self) -> None:
        self.thread.start()
        for c in self.clients:
            c.start()
        deadline = time.monotonic() + 30
        while not all(c.connected.is_set() for c in self.clients):
            if time.monotonic() > deadline:
                raise RuntimeError("central's broker client did not connect")
            time.sleep(0.05)
        time.sleep(0.5)  # the SUBACKs

    def stop(self) -> None:
        for c in self.clients:
            c.stop()
        self.inbox.put(None)
        self.thread.join(10)

    def consume(self) -> None:
        while (msg := self.inbox.get()) is not None:
            parts = msg.topic.split("/")
            tail = parts[-1]
            body = json.loads(msg.payload)
            with self.lock:
                if tail == "heartbeat":
                    ts = datetime.fromisoformat(body["ts"]).timestamp()
                    key: tuple[str, Any] = ("hb", (parts[2], micros(ts)))
                    sent = ts
                elif tail in ("live", "event"):
                    key = ("ev", body["event_id"])
                    sent = datetime.fromisoformat(body["created_at"]).timestamp()
                elif tail == "state" and parts[3] == "agent" and body["state"] == "online":
                    since = datetime.fromisoformat(body["since"]).timestamp()
                    self.online_since[parts[2]] = max(since, self.online_since.get(parts[2], 0))
                    key = ("", None)
                else:
                    key = ("", None)
                if key[0] and key not in self.first:
                    self.first[key] = msg.received_at
                    self.latency[key] = msg.received_at - sent
            self.clients[1 if msg.live else 0].ack(msg.mid, msg.qos)

    def online_after(self, t: float) -> int:
        with self.lock:
            return sum(1 for since in self.online_since.values() if since >= t)


# --- measuring ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


def raise_fd_limit(sites: int) -> int:
    """Raise this process's soft open-files limit to the hard one (the broker and the site
    processes inherit it), as LimitNOFILE does for a service; refuse if it cannot hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < sites + 256:
        raise SystemExit(f"open-files limit {hard} cannot hold {sites} connections")
    return hard


def run_step(args: argparse.Namespace, sites: int) -> dict[str, Any]:
    """One fleet size: connect, warm up, measure a window, restart the broker, check loss."""
    work = Path(tempfile.mkdtemp(prefix="fsv-bench-broker-"))
    site_ids = [f"site-{i}" for i in range(sites)]
    creds = site_credentials(site_ids)
    load_start = [round(x, 2) for x in os.getloadavg()]
    broker = start_fleet_broker(work, creds)
    central = Central(broker.port)
    procs: list[tuple[multiprocessing.Process, Connection]] = []
    try:
        pid = broker.pid
        assert pid is not None
        fd_limit = open_files_limit(pid)
        central.start()
        for i in range(args.procs):
            chunk = {s: creds[s] for s in site_ids[i :: args.procs]}
            here, there = multiprocessing.Pipe()
            p = multiprocessing.Process(target=site_process, args=(
                broker.port, chunk, args.heartbeat_s, args.events_per_hour, there))  # fmt: skip
            procs.append((p, here))
        b0, c0 = cpu_seconds(pid), cpu_seconds(os.getpid())
        for p, _ in procs:
            p.start()
        started = [conn.recv() for _, conn in procs]
        connect_all_s = max(t1 for _, _, t1 in started) - min(t0 for _, t0, _ in started)
        workers = [p.pid for p, _ in procs if p.pid is not None]
        connect_cpu = {  # CPU seconds spent while the fleet connected
            "broker": cpu_seconds(pid) - b0,
            "clients": sum(cpu_seconds(w) for w in workers) + cpu_seconds(os.getpid()) - c0,
        }
        time.sleep(args.warmup_s)
        # the window: broker and client CPU, what was sent and received in it
        w0 = time.time()
        cpu0 = cpu_seconds(pid)
        client0 = sum(cpu_seconds(w) for w in workers) + cpu_seconds(os.getpid())
        rss_samples = []
        while time.time() - w0 < args.window_s:
            time.sleep(min(5.0, args.window_s))
            rss_samples.append(rss_mb(pid))
        w1 = time.time()
        broker_cpu = (cpu_seconds(pid) - cpu0) / (w1 - w0) * 100
        client_cpu = (
            (sum(cpu_seconds(w) for w in workers) + cpu_seconds(os.getpid()) - client0)
            / (w1 - w0) * 100
        )  # fmt: skip
        load_window = [round(x, 2) for x in os.getloadavg()]
        # the connect storm
        t_stop = time.time()
        broker.stop()
        broker.start()
        t_up = time.time()
        pid = broker.pid
        assert pid is not None
        deadline = time.monotonic() + args.storm_timeout_s
        while central.online_after(t_up) < sites and time.monotonic() < deadline:
            time.sleep(0.05)
        storm_done = time.time()
        back = central.online_after(t_up)
        storm_cpu = cpu_seconds(pid)  # the new broker process: all of its CPU so far
        time.sleep(min(args.warmup_s, 10))
        for _, conn in procs:
            conn.send("stop")
        sent: list[tuple[str, str, Any, float]] = []
        connects = 0
        for _, conn in procs:
            _, records, n = conn.recv()
            sent += records
            connects += n
        for p, _ in procs:
            p.join(30)
        time.sleep(args.drain_s)
        rss_after_storm = rss_mb(pid)
    finally:
        for p, _ in procs:
            if p.is_alive():
                p.terminate()
        central.stop()
        broker.close()
    with central.lock:
        received = dict(central.first)
        latency = dict(central.latency)
    return {
        "sites": sites,
        "broker_cpu_percent_of_core": round(broker_cpu, 2),
        "broker_rss_mb": max(rss_samples),
        "broker_rss_mb_after_storm": rss_after_storm,
        "broker_open_files_limit": fd_limit,
        "client_cpu_percent_of_core": round(client_cpu, 1),
        "connect_all_s": round(connect_all_s, 2),
        "broker_cpu_percent_while_connecting": round(
            connect_cpu["broker"] / connect_all_s * 100, 1
        ),
        "client_cpu_percent_while_connecting": round(
            connect_cpu["clients"] / connect_all_s * 100, 1
        ),
        "broker_cpu_percent_in_storm": round(storm_cpu / (storm_done - t_up) * 100, 1),
        "reconnect_storm_s": round(storm_done - t_up, 2) if back == sites else None,
        "reconnect_storm_sites_back": back,
        "broker_restart_s": round(t_up - t_stop, 2),
        **delivery(sent, received, latency, w0, w1),
        "site_connects": connects,
        "window_s": round(w1 - w0, 1),
        "load_avg_at_start": load_start,
        "load_avg_in_window": load_window,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


Sent = list[tuple[str, str, Any, float]]  # (kind, site, key, sent_at)
Arrivals = dict[tuple[str, Any], float]  # (kind, key) -> seconds


def delivery(sent: Sent, received: Arrivals, latency: Arrivals, w0: float, w1: float
             ) -> dict[str, Any]:  # fmt: skip
    """Latency of what was sent in the window [w0, w1), heartbeats lost in it, and events
    lost over the whole run."""
    hb_window = [s for s in sent if s[0] == "hb" and w0 <= s[3] < w1]
    events = [s for s in sent if s[0] == "ev"]
    ev_window = [s for s in events if w0 <= s[3] < w1]
    lat_hb = [latency[("hb", (s[1], s[2]))] * 1000 for s in hb_window
              if ("hb", (s[1], s[2])) in latency]  # fmt: skip
    lat_ev = [latency[("ev", s[2])] * 1000 for s in ev_window if ("ev", s[2]) in latency]
    lat = lat_hb + lat_ev
    return {
        "latency_p50_ms": round(statistics.median(lat), 2) if lat else None,
        "latency_p95_ms": round(pct(lat, 0.95), 2),
        "latency_max_ms": round(max(lat), 2) if lat else None,
        "latency_heartbeat_p50_ms": round(statistics.median(lat_hb), 2) if lat_hb else None,
        "latency_heartbeat_p95_ms": round(pct(lat_hb, 0.95), 2),
        "latency_event_p50_ms": round(statistics.median(lat_ev), 2) if lat_ev else None,
        "latency_event_p95_ms": round(pct(lat_ev, 0.95), 2),
        "heartbeats_in_window": len(hb_window),
        "heartbeats_lost": len(hb_window) - len(lat_hb),
        "events_in_window": len(ev_window),
        "events_sent": len(events),
        "events_lost": sum(1 for s in events if ("ev", s[2]) not in received),
    }


def print_table(steps: list[dict[str, Any]]) -> None:
    cols = [("sites", "sites"), ("broker_cpu_percent_of_core", "cpu %core"),
            ("broker_rss_mb", "rss MB"), ("client_cpu_percent_of_core", "clients %core"),
            ("connect_all_s", "connect s"), ("reconnect_storm_s", "storm s"),
            ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"),
            ("latency_max_ms", "max ms"), ("heartbeats_lost", "hb lost"),
            ("events_sent", "events"), ("events_lost", "ev lost"),
            ("load_avg_in_window", "load 1/5/15")]  # fmt: skip
    print(" | ".join(h for _, h in cols))
    for s in steps:
        print(" | ".join(str(s[k]) for k, _ in cols))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sites", default="500,2000,5000", help="comma-separated steps")
    parser.add_argument("--procs", type=int, default=2, help="site processes")
    parser.add_argument("--heartbeat-s", type=float, default=EDGE.heartbeat_interval_s)
    parser.add_argument("--events-per-hour", type=float, default=2.0, help="per site")
    parser.add_argument("--warmup-s", type=float, default=35.0)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--drain-s", type=float, default=3.0)
    parser.add_argument("--storm-timeout-s", type=float, default=180.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    steps_wanted = [int(x) for x in args.sites.split(",")]
    nofile = raise_fd_limit(max(steps_wanted))
    machine = describe_machine(open_files_limit=nofile, site_processes=args.procs)
    steps = []
    for n in steps_wanted:
        steps.append(run_step(args, n))
        print(json.dumps(steps[-1]), flush=True)
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(steps)
    result = {**steps[-1], "steps": steps, "heartbeat_s": args.heartbeat_s,
              "events_per_site_hour": args.events_per_hour, "machine": machine,
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
