"""Uplink figures over a shaped link: edge and central in two network namespaces.

Two namespaces made for the run (and removed after it) are joined by a veth pair with
addresses that exist only inside them; the edge's side is shaped with `tc tbf rate 4mbit`
and a small delaying TCP proxy on the edge adds round-trip time (netem does not work in
this kernel). Central, its broker and the viewer run in one namespace; the RTSP cameras and
the edge agent (uplink budget 3.6 Mbit/s, archive policy `sub` or `main`) in the other.

An outage backlog: before the agent starts, the edge's storage gets `--backlog-min` minutes
of every camera's archived stream (policy `sub`: its sub lane) just before now, as if the
line had been down that long while the box recorded: real 10-s segment files cut from the
testbed's clip (the clip's 8 distinct 10-s pieces in turn), indexed with their true
timestamps and chained like the recorder's own, so the agent anchors them and central's
archive asks for them, oldest first, like after a real outage. It is made in seconds, not
waited for.

Measures, while the archive transfers that backlog: click → first frame of the live sub
stream, cold (no upstream) and warm (the upstream runs); how long archive bytes still arrive
after a click (archive pause) and how long until they flow again after the viewer leaves;
archive Mbit/s with nobody watching; and catch-up: hours of footage the archive stored per
hour of wall time over that idle window (its own index: sum of stored segments' durations),
measured directly, not derived from byte rates. Then the same on plain loopback (no tbf, no
delay, no budget) for comparison, unless --no-loopback. Writes bench/results/uplink.json.
Needs root (ip netns, tc).

    .venv/bin/python bench/uplink.py [--cameras 8] [--policy sub] [--backlog-min 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "bench" / "results" / "uplink.json"
SITE = "demo-canteen-a"
NET = "10.231.77"  # exists only inside the two namespaces of the run
CENTRAL_IP, EDGE_IP = f"{NET}.1", f"{NET}.2"


def sh(*cmd: str) -> None:
    """Run a command; raise with its output if it fails."""
    subprocess.run(cmd, check=True, capture_output=True, text=True)


# --- the delaying TCP proxy ----------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def later() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(later())
    try:
        while data := await reader.read(65536):
            await queue.put((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    await queue.put((0.0, b""))
    await asyncio.gather(task, return_exceptions=True)


def start_proxy(listen: tuple[str, int], target: tuple[str, int], one_way_s: float) -> None:
    """Forward `listen` to `target` on a thread, each direction delayed by `one_way_s`."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection(*target)
        except OSError:
            w.close()
            return
        await asyncio.gather(_pipe(r, tw, one_way_s), _pipe(tr, w, one_way_s))

    async def serve() -> None:
        server = await asyncio.start_server(handle, *listen)
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), name="proxy", daemon=True).start()


def wait_file(path: Path, timeout: float = 120.0) -> dict[str, Any]:
    """The JSON a side wrote, once it exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} did not appear")
        time.sleep(0.2)
    time.sleep(0.1)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- the edge's namespace ------------------------------------------------------------------------


SEGMENT_S = 10.0
IDLE_S = 30.0  # the window nobody watches: archive rate and catch-up


def make_backlog(storage: Path, index_path: Path, clip: Path, lanes: list[str], minutes: float,
                 until: float) -> int:  # fmt: skip
    """`minutes` of 10-s segments per lane ending at `until`, indexed and chained; files."""
    import av

    from edge_agent.recording.index import SegmentIndex, SegmentInfo
    from edge_agent.recording.paths import segment_relpath
    from edge_agent.recording.segment_writer import SegmentFile
    from fsv_common.digest import file_sha256

    pieces: list[tuple[Path, SegmentInfo]] = []
    work = storage.parent / "backlog-pieces"
    with av.open(str(clip)) as src:  # the clip cut into 10-s segment files, as recorded
        video = src.streams.video[0]
        tb = float(video.time_base or 0)
        segment: SegmentFile | None = None
        first = 0
        for packet in src.demux(video):
            if packet.dts is None or not packet.size:
                continue
            if packet.is_keyframe and (segment is None or (packet.dts - first) * tb >= SEGMENT_S):
                if segment is not None:
                    closed = segment.close(end=len(pieces) * SEGMENT_S + SEGMENT_S)
                    pieces.append((closed.path, closed.seal()))
                first = packet.dts
                segment = SegmentFile(work, "piece", len(pieces) * SEGMENT_S, video, None)
            if segment is not None:
                packet.stream = segment.video_out
                segment.container.mux_one(packet)
        if segment is not None:
            segment.container.close()  # the clip's last, shorter piece: not used
    index = SegmentIndex(index_path)
    count = int(minutes * 60 / SEGMENT_S)
    start0 = until - count * SEGMENT_S
    files = 0
    for k in range(count):  # oldest first, lane by lane within each 10 s: the chain order
        for lane in lanes:
            piece, info = pieces[k % len(pieces)]
            start = start0 + k * SEGMENT_S
            rel = segment_relpath(lane, start)
            (storage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(piece, storage / rel)
            index.add_segment(SegmentInfo(lane, rel, start, start + SEGMENT_S, info.bytes,
                                          info.codec, info.width, info.height, None,
                                          file_sha256(storage / rel)))  # fmt: skip
            files += 1
    index.close()
    shutil.rmtree(work, ignore_errors=True)
    return files


def edge_side(d: Path, cameras: int, rtt_ms: float, policy: str, backlog_min: float,
              shaped: bool) -> None:  # fmt: skip
    """Cameras, the proxy towards central and the edge agent, until `stop` appears."""
    import socket

    import yaml

    from testbed.footage import ensure_footage
    from testbed.ports import free_port
    from testbed.processes import spawn_python, terminate
    from testbed.rtsp import RtspServer

    footage = ensure_footage()
    paths: dict[str, Path] = {}
    for i in range(1, cameras + 1):
        paths[f"cam{i}"], paths[f"cam{i}_sub"] = footage.main_h264, footage.sub_h264
    rtsp = RtspServer(paths)
    rtsp.start()
    central = wait_file(d / "central.json")
    http_port, mqtt_port = free_port(), free_port()
    one_way = rtt_ms / 2000 if shaped else 0.0
    start_proxy(("127.0.0.1", http_port), (CENTRAL_IP, central["http_port"]), one_way)
    start_proxy(("127.0.0.1", mqtt_port), (CENTRAL_IP, central["mqtt_port"]), one_way)
    time.sleep(0.5)
    rtts = []
    for _ in range(10):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
            s.sendall(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
            s.recv(1)
        rtts.append(time.monotonic() - t0)
    (d / "rtt.json").write_text(json.dumps({"rtt_ms": 1000 * statistics.median(rtts)}))
    config = {
        "site_id": SITE,
        "storage": {"path": str(d / "recordings"), "segment_seconds": 10},
        "data_dir": str(d / "edge-state"),
        "central_url": f"http://127.0.0.1:{http_port}",
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "tls": None, "heartbeat_interval_s": 5,
                 "reconnect_max_s": 2, "anchor_interval_s": 5},
        "uplink": {"budget_bytes_per_s": 450_000 if shaped else None,
                   "archive": {"poll_interval_s": 3, "batch": 200}},
        "detection": {"enabled": False},
        "cameras": [
            {"id": f"cam{i}", "name": f"cam{i}", "station": "kitchen_prep",
             "main_url": rtsp.url(f"cam{i}"), "sub_url": rtsp.url(f"cam{i}_sub"),
             "record_sub": policy == "sub"}
            for i in range(1, cameras + 1)
        ],
    }  # fmt: skip
    (d / "edge.yaml").write_text(yaml.safe_dump(config))
    lanes = [f"cam{i}--sub" if policy == "sub" else f"cam{i}" for i in range(1, cameras + 1)]
    clip = footage.sub_h264 if policy == "sub" else footage.main_h264
    made = time.monotonic()
    files = make_backlog(d / "recordings", d / "edge-state" / "index.db", clip, lanes,
                         backlog_min, time.time())  # fmt: skip
    (d / "backlog.json").write_text(json.dumps({"files": files, "lanes": lanes,
                                                "minutes": backlog_min,
                                                "made_s": time.monotonic() - made}))  # fmt: skip
    env = {**os.environ, "EDGE_CRED_MQTT_USER": SITE,
           "EDGE_CRED_MQTT_PASSWORD": central["site_password"]}  # fmt: skip
    cmd = ["-m", "edge_agent", "run", "-c", str(d / "edge.yaml")]
    agent = spawn_python(cmd, env, d / "edge.log")
    try:
        while not (d / "stop").exists():
            time.sleep(0.5)
    finally:
        terminate(agent, 10)
        rtsp.close()


# --- central's namespace -------------------------------------------------------------------------


def archive_bytes(root: Path) -> int:
    """Bytes of footage the archive holds, finished or in part."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith((".mp4", ".part")):
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
    return total


def central_side(d: Path, cameras: int, policy: str) -> None:
    """Broker, central and the viewer; measures and writes d/figures.json."""
    import yaml

    from testbed.demo import start_site_broker
    from testbed.ports import free_port, port_accepts
    from testbed.processes import spawn_python, terminate

    site = start_site_broker(d / "c", SITE)
    assert site.broker is not None
    mqtt_port = free_port()
    start_proxy((CENTRAL_IP, mqtt_port), ("127.0.0.1", site.broker.port), 0.0)
    http_port = free_port()
    config = {
        "data_dir": str(d / "c" / "central"),
        "http": {"host": "0.0.0.0", "port": http_port},  # inside this namespace only
        "mqtt": {"host": "127.0.0.1", "port": site.broker.port, "reconnect_max_s": 2},
        "broker": {"password_file": str(site.admin.password_file),
                   "acl_file": str(site.admin.acl_file)},
        "web": {"base_url": f"http://127.0.0.1:{http_port}", "cookie_secure": False},
    }  # fmt: skip
    (d / "central.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "CENTRAL_MQTT_PASSWORD": site.central_password}
    seeded = subprocess.run(
        [sys.executable, "-m", "central", "seed-demo", "--json", "-c", str(d / "central.yaml")],
        env=env, capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    users = {u["username"]: u["password"] for u in json.loads(seeded.stdout)["users"]}
    cmd = ["-m", "central", "run", "-c", str(d / "central.yaml")]
    server = spawn_python(cmd, env, d / "central.log")
    try:
        deadline = time.monotonic() + 60
        while not port_accepts(http_port):
            assert time.monotonic() < deadline, "central did not listen"
            time.sleep(0.2)
        (d / "central.json").write_text(
            json.dumps(
                {
                    "http_port": http_port,
                    "mqtt_port": mqtt_port,
                    "site_password": site.site_password,
                }
            )
        )
        figures = asyncio.run(measure(d, http_port, users, cameras, policy))
        (d / "figures.json").write_text(json.dumps(figures))
    finally:
        terminate(server, 10)
        site.broker.stop()


async def _token(http: Any, base: str, user: str, password: str) -> str:
    body = {"username": user, "password": password, "kind": "bearer"}
    async with http.post(f"{base}/api/v1/auth/login", json=body) as r:
        token: str = (await r.json())["token"]
        return token


async def _first_frame(http: Any, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    from fsv_contract.video import FrameKind, unpack_frame

    t0 = time.monotonic()
    ws = await http.ws_connect(url, headers=headers, max_msg_size=0)
    async for msg in ws:
        if msg.type.name == "BINARY" and unpack_frame(msg.data)[0].kind is FrameKind.FRAGMENT:
            return time.monotonic() - t0, ws
        if msg.type.name == "TEXT" and '"error"' in msg.data:
            raise RuntimeError(msg.data)
    raise RuntimeError("the stream ended before its first fragment")


def archived_seconds(db: Path) -> float:
    """Seconds of footage the archive's own index holds as stored (verified) segments."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute('select coalesce(sum("end" - start), 0) from segments').fetchone()
    except sqlite3.Error:
        return 0.0
    return float(row[0])


class ArchiveWatch:
    """Samples the archive's bytes every 50 ms (when they last grew, when they grow again)
    and, every second, the footage seconds its index holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.samples: list[tuple[float, int]] = []
        self.footage: list[tuple[float, float]] = []

    async def run(self) -> None:
        next_footage = 0.0
        while True:
            size = await asyncio.to_thread(archive_bytes, self.root)
            now = time.monotonic()
            self.samples.append((now, size))
            if now >= next_footage:
                held = await asyncio.to_thread(archived_seconds, self.root / "archive.db")
                self.footage.append((time.monotonic(), held))
                next_footage = now + 1.0
            await asyncio.sleep(0.05)

    def footage_rate(self, start: float, end: float) -> float:
        """Footage seconds stored per wall second between two times."""
        inside = [(t, s) for t, s in self.footage if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def last_growth(self, after: float, before: float) -> float | None:
        """The last time in (after, before] the bytes grew."""
        last = None
        for (_, a), (t, b) in zip(self.samples, self.samples[1:], strict=False):
            if after < t <= before and b > a:
                last = t
        return last

    def first_growth(self, after: float) -> float | None:
        """The first time after `after` the bytes grew."""
        for (_, a), (t, b) in zip(self.samples, self.samples[1:], strict=False):
            if t > after and b > a:
                return t
        return None

    def rate(self, start: float, end: float) -> float:
        """Bytes/s between two times."""
        inside = [(t, s) for t, s in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


async def measure(
    d: Path, port: int, users: dict[str, str], cameras: int, policy: str
) -> dict[str, Any]:
    """Archive idle rate, then per camera a cold and a warm click while the archive runs."""
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    root = d / "c" / "central" / "archive"
    watch = ArchiveWatch(root)
    async with aiohttp.ClientSession() as http:
        admin = {"Authorization": f"Bearer {await _token(http, base, 'admin', users['admin'])}"}
        who = "inspector-a"
        viewer = {"Authorization": f"Bearer {await _token(http, base, who, users[who])}"}
        async with http.put(f"{base}/api/v1/archive/policies/{SITE}", json={"policy": policy},
                            headers=admin) as r:  # fmt: skip
            assert r.status == 200, await r.text()
        sampler = asyncio.create_task(watch.run())
        deadline = time.monotonic() + 300
        while archived_seconds(root / "archive.db") < 60:  # the edge anchors, then sends
            assert time.monotonic() < deadline, "the archive received nothing"
            await asyncio.sleep(1.0)
        idle_from = time.monotonic()
        await asyncio.sleep(IDLE_S)
        idle_bps = watch.rate(idle_from, time.monotonic())
        catch_up = watch.footage_rate(idle_from, time.monotonic())
        cold, warm, pauses, resumes = [], [], [], []
        for i in range(1, cameras + 1):
            url = f"{base}/api/v1/video/live/{SITE}/cam{i}"
            click = time.monotonic()
            cold_s, ws1 = await _first_frame(http, url, viewer)
            warm_s, ws2 = await _first_frame(http, url, viewer)
            cold.append(cold_s)
            warm.append(warm_s)
            await asyncio.sleep(6.0)
            last = watch.last_growth(click, time.monotonic())
            pauses.append(0.0 if last is None else last - click)
            await ws1.close()
            await ws2.close()
            left = time.monotonic()
            again = None
            while again is None and time.monotonic() - left < 30.0:  # central lingers 10 s
                await asyncio.sleep(0.5)
                again = watch.first_growth(left)
            if again is not None:
                resumes.append(again - left)
            await asyncio.sleep(2.0)  # archive flowing again before the next click
        sampler.cancel()
    return {
        "first_frame_cold": cold, "first_frame_warm": warm, "archive_pause": pauses,
        "archive_resume": resumes, "archive_bytes_per_s_idle": idle_bps,
        "footage_s_per_s_idle": catch_up, "archived_footage_s": archived_seconds(
            root / "archive.db"),
    }  # fmt: skip


# --- orchestration (the root namespace: only creates and removes the two namespaces) -------------


def run(
    cameras: int, rate_mbit: float, rtt_ms: float, policy: str, backlog_min: float, shaped: bool
) -> dict[str, Any]:
    """Set up the namespaces and the link, run both sides, tear everything down."""
    tag = f"{os.getpid() % 100000}"
    ns_e, ns_c, veth_e, veth_c = f"fsvE{tag}", f"fsvC{tag}", f"fsvE{tag}", f"fsvC{tag}"
    d = Path(tempfile.mkdtemp(prefix="fsv-uplink-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sh("ip", "netns", "add", ns_e)
        sh("ip", "netns", "add", ns_c)
        sh("ip", "link", "add", veth_e, "netns", ns_e, "type", "veth", "peer", "name", veth_c,
           "netns", ns_c)  # fmt: skip
        for ns, dev, ip in ((ns_e, veth_e, EDGE_IP), (ns_c, veth_c, CENTRAL_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        if shaped:
            sh("ip", "netns", "exec", ns_e, "tc", "qdisc", "add", "dev", veth_e, "root", "tbf",
               "rate", f"{rate_mbit}mbit", "burst", "32kbit", "latency", "50ms")  # fmt: skip
        me = [sys.executable, str(Path(__file__).resolve())]
        for ns, side in ((ns_c, "central"), (ns_e, "edge")):
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, *me, "--side", side, "--dir", str(d),
                 "--cameras", str(cameras), "--rtt-ms", str(rtt_ms), "--policy", policy,
                 "--backlog-min", str(backlog_min), *([] if shaped else ["--no-shaping"])],
                cwd=REPO,
            ))  # fmt: skip
        figures = wait_file(d / "figures.json", timeout=900)
        rtt = json.loads((d / "rtt.json").read_text())["rtt_ms"]
        backlog = json.loads((d / "backlog.json").read_text())
        return {**figures, "rtt_ms": rtt, "backlog": backlog}
    finally:
        (d / "stop").touch()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in (ns_e, ns_c):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def summary(f: dict[str, Any], rate_mbit: float | None, cameras: int) -> dict[str, Any]:
    """The result keys of one run (medians over the cameras' clicks)."""
    med = statistics.median
    return {
        "uplink_mbps": rate_mbit,
        "rtt_ms": round(f["rtt_ms"], 1),
        "cameras": cameras,
        "first_frame_cold_s": round(med(f["first_frame_cold"]), 3),
        "first_frame_warm_s": round(med(f["first_frame_warm"]), 3),
        "archive_pause_s": round(med(f["archive_pause"]), 3),
        "archive_resume_s": round(med(f["archive_resume"]), 3) if f["archive_resume"] else None,
        "archive_mbps_idle": round(8 * f["archive_bytes_per_s_idle"] / 1e6, 3),
        # Hours of each camera's footage archived per hour: the lanes' footage seconds gained
        # per wall second over the cameras; 1 keeps pace with recording, above 1 catches up.
        "catch_up_hours_per_hour": round(f["footage_s_per_s_idle"] / cameras, 3),
        "camera_hours_archived_per_hour": round(f["footage_s_per_s_idle"], 3),
        "backlog": f["backlog"],
        "runs": {k: [round(x, 3) for x in v] for k, v in f.items() if isinstance(v, list)},
    }


def load_now() -> str:
    """The machine's load as the run ends (1/5/15-minute averages over its cores)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def main() -> int:
    """Run the benchmark (or one side of it) and write bench/results/uplink.json."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cameras", type=int, default=8)
    p.add_argument("--rate-mbit", type=float, default=4.0)
    p.add_argument("--rtt-ms", type=float, default=100.0)
    p.add_argument("--policy", choices=("sub", "main"), default="sub")
    p.add_argument("--backlog-min", type=float, default=60.0, help="outage backlog, minutes")
    p.add_argument("--no-loopback", action="store_true", help="skip the unshaped comparison")
    p.add_argument("--side", choices=("edge", "central"), help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--no-shaping", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    shaped = not args.no_shaping
    if args.side == "edge":
        edge_side(args.dir, args.cameras, args.rtt_ms, args.policy, args.backlog_min, shaped)
        return 0
    if args.side == "central":
        central_side(args.dir, args.cameras, args.policy)
        return 0
    load_before = load_now()
    result = summary(
        run(args.cameras, args.rate_mbit, args.rtt_ms, args.policy, args.backlog_min, True),
        args.rate_mbit,
        args.cameras,
    )
    result["policy"] = args.policy
    if not args.no_loopback:
        loop = run(args.cameras, args.rate_mbit, 0.0, args.policy, args.backlog_min, False)
        result["unshaped"] = summary(loop, None, args.cameras)
    result["measured"] = (
        f"{args.cameras} testbed cameras recording main and (policy sub) sub streams, archive "
        f"policy {args.policy}; an outage backlog of {args.backlog_min:g} min per camera of "
        "its archived stream pre-recorded into the edge's storage and index before the agent "
        "starts (real segment files cut from the testbed clip, true timestamps, chained; made "
        "faster than real time, not waited for). Live sub stream click -> first fragment at a "
        "viewer in central's namespace (cold: no upstream; warm: second viewer of a running "
        "upstream) while the archive transfers that backlog; archive pause = last growth of "
        "the archive's bytes after the click; resume = first growth after the viewers left "
        "(central keeps an unwatched live upstream 10 s: included); idle archive rate and "
        f"catch-up over {IDLE_S:g} s with nobody watching: camera_hours_archived_per_hour = "
        "footage seconds (all cameras together) the archive's index gained per wall second; "
        "catch_up_hours_per_hour = that over the cameras (1 keeps pace with recording, above "
        "1 the backlog shrinks). `unshaped`: the same with no tbf, no added delay and no "
        "edge budget."
    )
    result["not_measured"] = (
        "draining the whole 1-hour backlog (only its first minutes of catch-up were timed; "
        "the time to drain is not measured), first frame in a browser (this is the first fMP4 "
        "fragment at the socket), replay/export from the archive with the edge stopped over "
        "the shaped link (tested functionally in tests/central/test_archive_transfer.py)"
    )
    result["machine"] = (
        f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, shared with other "
        f"work: {load_before} at the start, {load_now()} at the end"
    )
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        if key not in ("runs", "measured", "not_measured", "unshaped", "backlog"):
            print(f"{key:26} {value}")
    if "unshaped" in result:
        for key in ("first_frame_cold_s", "first_frame_warm_s", "archive_pause_s",
                    "archive_mbps_idle", "catch_up_hours_per_hour"):  # fmt: skip
            print(f"unshaped {key:17} {result['unshaped'][key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
