"""Live viewers one relay core holds, measured with real WebSocket viewers.

One 1080p testbed camera (RTSP) → edge agent → central, as in bench/video.py. Central (the
relay) is pinned to core 0, every thread of it; the viewers, the edge, the camera and the
broker to the other cores. Viewer processes (`--procs`, each an asyncio loop of raw
WebSocket clients that read frame headers and skip the payload bytes, answering pings) open
the main stream N times over, N stepping up (`--steps`) until the relay falls behind.

Falls behind, for a step: over its `--seconds` window, a viewer
  - missed a fragment (a gap in its media timeline: the relay dropped frames for it), or
  - received a fragment more than 1 s after the first viewer that got it (p99 of every
    viewer's fragments: `behind_first_viewer_p99_s`; the edge's own delays drop out), or
  - could not connect or got no fragment at all.
`viewers_one_core_measured` is the largest step that held. Each step also reports the
relay's CPU (share of its core) and the viewer processes' CPU, so a step where the clients
rather than the relay ran out of CPU is visible as such.

Writes the `viewers_one_core_measured` key (and its details) into bench/results/scale.json.

    .venv/bin/python bench/viewers.py [--steps 1,50,100,200,300,400,500,600,800,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "browser")]
from video_system import CAMERA, SITE, VideoSystem, wait_until  # type: ignore[import-not-found]  # noqa: E402,I001

from bench.machine import describe_machine  # noqa: E402
from testbed.footage import ensure_footage  # noqa: E402
from testbed.rtsp import RtspServer, camera_paths  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.json"
LIVE_MAIN = f"/api/v1/video/live/{SITE}/{CAMERA}?stream=main"
HEADER = struct.Struct("!BBxxqIq")  # the uplink/viewer frame header (fsv_contract.video)
FRAGMENT = 2
LAG_LIMIT_S = 1.0
RELAY_CORE = 0


# --- the viewer client -----------------------------------------------------------------------


class Viewer(asyncio.BufferedProtocol):
    """One WebSocket viewer: reads frame headers, skips payloads, notes each fragment."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.request = (
            f"GET {LIVE_MAIN} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Authorization: Bearer {token}\r\nOrigin: http://{host}:{port}\r\n\r\n"
        ).encode()
        self.buf = bytearray(1 << 18)
        self.view = memoryview(self.buf)
        self.filled = 0
        self.skip = 0
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.recording = False
        self.fragments = 0
        self.arrivals: list[tuple[int, float]] = []  # (media_us, arrival) per fragment
        self.lags: list[float] = []  # arrival - capture (wall_ms) per fragment
        self.gaps = 0
        self.next_media_us: int | None = None
        self.texts: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buf) - self.filled < 65536:
            self.buf.extend(bytes(len(self.buf)))
            self.view = memoryview(self.buf)
        return self.view[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        pos = 0 if self.upgraded else self._handshake()
        if pos < 0:
            return
        pos = self._frames(pos)
        rest = self.filled - pos
        if pos:
            self.buf[:rest] = self.buf[pos : self.filled]
            self.filled = rest

    def _handshake(self) -> int:
        end = self.buf.find(b"\r\n\r\n", 0, self.filled)
        if end < 0:
            return -1
        if not self.buf.startswith(b"HTTP/1.1 101"):
            self.texts.append(bytes(self.buf[: min(end, 200)]).decode(errors="replace"))
            assert self.transport is not None
            self.transport.close()
            return -1
        self.upgraded = True
        return end + 4

    def _frames(self, pos: int) -> int:
        end = self.filled
        while True:
            if self.skip:
                take = min(self.skip, end - pos)
                pos += take
                self.skip -= take
                if self.skip:
                    return pos
            frame = self._frame_header(pos)
            if frame is None:
                return pos
            opcode, size, head = frame
            if opcode == 2:
                if end - pos < head + HEADER.size:
                    return pos
                self._media(pos + head)
                pos += head
                self.skip = size
                continue
            if end - pos < head + size:
                return pos  # control and text frames are small: wait for all of it
            payload = bytes(self.buf[pos + head : pos + head + size])
            pos += head + size
            if not self._control(opcode, payload):
                return pos

    def _frame_header(self, pos: int) -> tuple[int, int, int] | None:
        """(opcode, payload size, header size) of the frame at `pos`; None if incomplete."""
        buf, have = self.buf, self.filled - pos
        if have < 2:
            return None
        opcode, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
        if size == 126:
            return (opcode, int.from_bytes(buf[pos + 2 : pos + 4]), 4) if have >= 4 else None
        if size == 127:
            return (opcode, int.from_bytes(buf[pos + 2 : pos + 10]), 10) if have >= 10 else None
        return opcode, size, 2

    def _control(self, opcode: int, payload: bytes) -> bool:
        """A ping, text or close frame; False once the socket is closing."""
        if opcode == 9:
            self._pong(payload)
        elif opcode == 1 and len(self.texts) < 20:
            self.texts.append(payload.decode(errors="replace")[:300])
        elif opcode == 8:
            assert self.transport is not None
            self.transport.close()
            return False
        return True

    def _media(self, at: int) -> None:
        kind, _flags, media_us, duration_us, wall_ms = HEADER.unpack_from(self.buf, at)
        if kind != FRAGMENT:
            self.next_media_us = None  # a new init: a new timeline
            return
        if self.recording:
            self.fragments += 1
            now = time.time()
            self.arrivals.append((media_us, now))
            if wall_ms:
                self.lags.append(now - wall_ms / 1000)
            if self.next_media_us is not None and media_us > self.next_media_us + duration_us // 2:
                self.gaps += 1
        self.next_media_us = media_us + duration_us

    def _pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)


async def _viewer_group(
    host: str, port: int, token: str, count: int, seconds: float, conn: Connection
) -> None:
    loop = asyncio.get_running_loop()
    viewers: list[Viewer] = []
    failed = 0
    for i in range(count):
        try:
            _, viewer = await loop.create_connection(lambda: Viewer(host, port, token), host, port)
            viewers.append(viewer)
        except OSError:
            failed += 1
        if i % 20 == 19:
            await asyncio.sleep(0.05)  # do not flood the relay's accept queue
    conn.send("connected")
    conn.recv()  # the parent says when to start
    me = psutil.Process()
    cpu0 = me.cpu_times()
    for v in viewers:
        v.recording = True
    await asyncio.sleep(seconds)
    for v in viewers:
        v.recording = False
    cpu1 = me.cpu_times()
    conn.send({
        "failed": failed + sum(1 for v in viewers if not v.upgraded),
        "fragments": [v.fragments for v in viewers],
        "gaps": [v.gaps for v in viewers],
        "lags": [sorted(v.lags) for v in viewers],
        "arrivals": [v.arrivals for v in viewers],
        "texts": [t for v in viewers for t in v.texts][:5],
        "cpu_s": cpu1.user + cpu1.system - cpu0.user - cpu0.system,
    })  # fmt: skip
    for v in viewers:
        if v.transport is not None:
            v.transport.close()
    await asyncio.sleep(0.2)


def viewer_process(
    host: str, port: int, token: str, count: int, seconds: float, conn: Connection, cores: set[int]
) -> None:
    """A process of `count` viewers on `cores`."""
    os.sched_setaffinity(0, cores)
    asyncio.run(_viewer_group(host, port, token, count, seconds, conn))


# --- the run -----------------------------------------------------------------------------------


def pin(pid: int, cores: set[int]) -> None:
    """Pin every thread of `pid` (and of its children) to `cores`, as `taskset -a` does."""
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), cores)
            except (ProcessLookupError, PermissionError):
                pass


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else 0.0


def run_step(
    system: VideoSystem, count: int, procs: int, seconds: float, client_cores: set[int],
) -> dict[str, Any]:  # fmt: skip
    """`count` viewers in `procs` processes for `seconds`; the step's figures."""
    token = system.token("inspector-a")
    central = next(p for name, p in system.procs if name == "central")
    n_procs = max(1, min(procs, count))
    shares = [count // n_procs + (1 if i < count % n_procs else 0) for i in range(n_procs)]
    pipes, workers = [], []
    for share in shares:
        mine, theirs = multiprocessing.Pipe()
        worker = multiprocessing.Process(
            target=viewer_process,
            args=("127.0.0.1", system.port, token, share, seconds, theirs, client_cores),
        )
        worker.start()
        pipes.append(mine)
        workers.append(worker)
    for conn in pipes:
        if not conn.poll(120) or conn.recv() != "connected":
            raise RuntimeError("a viewer process did not connect")
    pin(central.pid, {RELAY_CORE})  # threads started meanwhile too
    time.sleep(3.0)  # every viewer got its first keyframe
    relay0, t0 = cpu_s(central.pid), time.monotonic()
    for conn in pipes:
        conn.send("go")
    reports = [conn.recv() for conn in pipes]
    elapsed = time.monotonic() - t0
    relay_busy = (cpu_s(central.pid) - relay0) / elapsed
    for worker in workers:
        worker.join(30)
    fragments = [f for r in reports for f in r["fragments"]]
    lags = [lag for r in reports for v in r["lags"] for lag in v]
    gaps = [g for r in reports for g in r["gaps"]]
    failed = sum(r["failed"] for r in reports)
    lag_median = statistics.median(lags) if lags else float("nan")
    # The relay's own lag: how much later than the first viewer each viewer got a fragment
    # (the edge's and camera's delays, the same for everyone, drop out).
    first: dict[int, float] = {}
    for r in reports:
        for v in r["arrivals"]:
            for media_us, at in v:
                first[media_us] = min(at, first.get(media_us, at))
    spread = [at - first[m] for r in reports for v in r["arrivals"] for m, at in v]
    spread_p99 = pct(spread, 0.99)
    held = (
        failed == 0 and bool(fragments) and min(fragments) > 0 and max(gaps, default=0) == 0
        and spread_p99 <= LAG_LIMIT_S
    )  # fmt: skip
    return {
        "viewers": count,
        "held": held,
        "failed_connections": failed,
        "fragments_per_viewer_min": min(fragments, default=0),
        "fragments_per_viewer_median": statistics.median(fragments) if fragments else 0,
        "viewers_with_gaps": sum(1 for g in gaps if g),
        "behind_first_viewer_p99_s": round(spread_p99, 3),
        "behind_first_viewer_max_s": round(max(spread, default=0.0), 3),
        "capture_to_viewer_median_s": round(lag_median, 3),
        "capture_to_viewer_p99_s": round(pct(lags, 0.99), 3),
        "relay_cpu_core_fraction": round(relay_busy, 3),
        "viewer_procs_cpu_core_fraction": round(sum(r["cpu_s"] for r in reports) / elapsed, 3),
        "window_s": round(elapsed, 1),
        "refusals": [t for r in reports for t in r["texts"] if '"error"' in t][:3],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    cores = set(range(os.cpu_count() or 2))
    client_cores = (cores - {RELAY_CORE}) or cores
    footage = ensure_footage()
    steps: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, RtspServer(camera_paths(footage)) as rtsp:
        system = VideoSystem(Path(tmp) / "system", rtsp)
        system.start()
        try:
            os.sched_setaffinity(0, client_cores)
            for name, proc in system.procs:
                if name != "central":
                    pin(proc.pid, client_cores)
            wait_until(system.camera_listed, 60, "the camera at central")
            # Warm-up, not counted: the first viewer starts the upstream, whose first
            # fragments arrive in a burst (the edge catching up); later steps join it while
            # it lingers between them.
            run_step(system, 1, 1, args.seconds, client_cores)
            for count in [int(x) for x in args.steps.split(",")]:
                step = run_step(system, count, args.procs, args.seconds, client_cores)
                step["load_1min"] = round(os.getloadavg()[0], 2)
                print(json.dumps(step), flush=True)
                steps.append(step)
                if not step["held"]:
                    break
                time.sleep(2.0)
        finally:
            system.stop()
    held = [s["viewers"] for s in steps if s["held"]]
    return {
        "viewers_one_core_measured": max(held) if held else 0,
        "viewers_one_core_detail": {
            "stream": "main 1920x1080 H.264 4 Mbit/s 25 fps, fMP4 fragment per frame",
            "relay_core": RELAY_CORE,
            "viewer_cores": sorted(client_cores),
            "viewer_procs": args.procs,
            "falls_behind": "a viewer missed a fragment (gap in its media timeline), or the p99 "
            "over all viewers' fragments of (arrival at the viewer - arrival at the first viewer "
            f"that got the fragment) exceeds {LAG_LIMIT_S} s, or a viewer could not connect "
            "or got nothing",
            "stopped_at": None if not steps or steps[-1]["held"] else steps[-1]["viewers"],
            "steps": steps,
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "machine": describe_machine(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", default="1,50,100,200,300,400,500,600,800,1000")
    parser.add_argument("--procs", type=int, default=4, help="viewer processes")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per step")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = measure(args)
    print(json.dumps(result, indent=2))
    data = json.loads(args.output.read_text()) if args.output.exists() else {}
    data.update(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
