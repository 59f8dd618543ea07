"""Recording benchmark: our recorders vs `ffmpeg -c copy -f segment` on N simulated cameras.

One RTSP server (testbed/rtsp_server.py, Debian's GStreamer) serves N paths of the 1080p
main stream. Our recorders run in a child process (this file with `--child`); N ffmpeg
processes do the same work. By default both run side by side over the same window, so a
busy shared machine disturbs both alike (`--sequential` runs one after the other). For each
we report CPU seconds per stream-minute (psutil, over a steady window after every stream is
up), frames received in that window against 25 fps x window, frames missing inside the
written files (steps in the video timestamps) and bytes written against the source
bitrate. The RTSP server's CPU is measured too but excluded from both figures.

    .venv/bin/python bench/record.py --streams 32 --seconds 60 --repeat 3

`--copy MODE` puts a bare copy in the recorder's place to show what each layer costs:
a PyAV copy (plain, hashed) or a copy loop in C on the `ffmpeg` command line's own FFmpeg
(native, native-unhashed, native-unfragmented; bench/native_copy.c, built here with gcc,
pkg-config, libavformat-dev and libssl-dev).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording_common import load, machine, main_clip, video_steps  # noqa: E402
from testbed.footage import FPS  # noqa: E402
from testbed.ports import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "record.json"
WARMUP_S = 5.0  # after every stream is up, before the CPU window opens
READY_TIMEOUT_S = 90.0


@dataclass
class RunResult:
    """One recorder implementation's figures over the measured window."""

    name: str
    window_s: float
    cpu_s: float
    frames_received: int
    frames_expected: int
    frames_missing_in_files: int = 0
    files: int = 0
    bytes_written: int = 0
    seconds_written: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def per_stream_minute(self, streams: int) -> float:
        """CPU seconds per stream-minute."""
        return self.cpu_s / (streams * self.window_s / 60.0)

    def percent_per_stream(self, streams: int) -> float:
        """Percent of one core per stream."""
        return 100 * self.cpu_s / self.window_s / streams


@dataclass
class Mark:
    """Totals of one implementation at one instant."""

    at: float  # time.monotonic()
    cpu_s: float
    frames: int
    sealing_cpu_s: float = 0.0
    segments_sealed: int = 0


def _serve_marks(online: Callable[[], bool], figures: Callable[[], dict[str, Any]]) -> bool:
    """A child's side of the mark protocol: wait until `online` (False, with the error line
    printed, past READY_TIMEOUT_S), say ready, then answer each "mark" line on stdin with the
    time and `figures` until another line or the end of input."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not online():
        if time.monotonic() > deadline:
            print(json.dumps({"error": "streams did not come online"}), flush=True)
            return False
        time.sleep(0.2)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "mark":
            break
        print(json.dumps({"at": time.monotonic(), **figures()}), flush=True)
    return True


def urls(port: int, streams: int) -> list[str]:
    """The stream URLs."""
    return [f"rtsp://127.0.0.1:{port}/cam{i:02d}" for i in range(streams)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes (threads included)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


# --- the RTSP server ---------------------------------------------------------------------


def start_server(streams: int, clip: Path) -> tuple[subprocess.Popen[str], int]:
    """Start one RTSP server with paths cam00..camNN, all looping `clip`."""
    port = free_port()
    cmd = ["/usr/bin/python3", str(ROOT / "testbed" / "rtsp_server.py"), "--port", str(port)]
    for i in range(streams):
        cmd += ["--path", f"cam{i:02d}={clip}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"RTSP server did not start: {line!r}")
    return proc, port


# --- our recorders: the child process -------------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    """Record every URL; answer `mark` lines on stdin with totals, stop on `stop`."""
    from edge_agent.config import EdgeConfig
    from edge_agent.credentials import CredentialStore
    from edge_agent.recording.index import SegmentIndex
    from edge_agent.recording.recorder import CameraRecorder

    sealing = _time_sealing()
    cams = [
        {"id": f"cam{i:02d}", "name": f"bench {i}", "station": "kitchen_prep", "main_url": url}
        for i, url in enumerate(urls(args.port, args.streams))
    ]
    config = EdgeConfig.model_validate(
        {
            "site_id": "bench",
            "storage": {"path": str(args.out), "segment_seconds": args.segment_seconds},
            "detection": {"enabled": False},
            "cameras": cams,
        }
    )
    index = SegmentIndex(args.out / ".agent" / "index.db")
    store = CredentialStore(None, {})
    recorders = [CameraRecorder(c, config, index, store) for c in config.cameras]
    for r in recorders:
        r.start()
    online = _serve_marks(
        lambda: all(r.status().state == "online" for r in recorders),
        lambda: {"frames": sum(r.counters.video_packets for r in recorders), **sealing},
    )
    if not online:
        return 1
    for r in recorders:
        r.stop()
    statuses = [r.status() for r in recorders]
    index.close()
    final = {
        "dropped": sum(s.dropped for s in statuses),
        "repaired": sum(s.repaired for s in statuses),
        "reconnects": sum(s.reconnects for s in statuses),
        "bytes_received": sum(r.counters.bytes for r in recorders),
    }
    print(json.dumps({"final": final}), flush=True)
    return 0


def copy_child_main(args: argparse.Namespace) -> int:
    """A bare PyAV copy of every URL, one thread each, answering `mark` like child_main.

    `--copy plain`: demux, then mux into a fragmented MP4 (the recorder's movflags and
    fragments) that FFmpeg writes itself. `--copy hashed`: the same through the recorder's
    file object (SHA-256 while writing, the space check). No session, no segments, no
    index: what the recorder costs beyond these is its own Python per packet.
    """
    from edge_agent.config import RecorderConfig
    from edge_agent.recording import segment_writer as sw
    from edge_agent.recording.streams import open_camera

    config = RecorderConfig()
    options = {"movflags": sw.MOVFLAGS, "frag_duration": str(sw.FRAGMENT_US), "flush_packets": "1"}
    frames = [0] * args.streams
    stopping = threading.Event()

    def copy(i: int, url: str) -> None:
        with open_camera(url, config) as source:
            video = source.streams.video[0]
            path = args.out / f"cam{i:02d}.mp4"
            if args.copy == "plain":
                out = av.open(str(path), "w", format="mp4", options=options)
            else:
                writer = sw.HashingWriter(path, sw.SpaceGuard(args.out, 1 << 20))
                out = av.open(writer, "w", format="mp4", buffer_size=sw.WRITE_BUFFER,
                              options=options)  # fmt: skip
            stream = out.add_stream_from_template(video)
            stream.codec_tag = sw.VIDEO_TAGS[video.codec_context.name]
            started = False
            for packet in source.demux(video):
                if stopping.is_set():
                    break
                if not packet.size or not (started or packet.is_keyframe):
                    continue
                started = True
                packet.stream = stream
                out.mux_one(packet)
                frames[i] += 1
            out.close()

    threads = [
        threading.Thread(target=copy, args=(i, url), daemon=True)
        for i, url in enumerate(urls(args.port, args.streams))
    ]
    for t in threads:
        t.start()
    online = _serve_marks(
        lambda: all(frames),
        lambda: {"frames": sum(frames), "sealing_cpu_s": 0.0, "segments_sealed": 0},
    )
    if not online:
        return 1
    stopping.set()
    for t in threads:
        t.join(60)  # each writes its last fragment and closes its file
    final = {"dropped": 0, "repaired": 0, "reconnects": 0, "bytes_received": 0}
    print(json.dumps({"final": final}), flush=True)
    return 0


def _time_sealing() -> dict[str, float]:
    """Count the CPU time of segment sealing (fsync, indexing) in the child.

    Sealing is work ffmpeg does not do; measured apart, the report can also show the
    copy path alone. The SHA-256 is taken while the file is written, so it is part of the
    copy path (a file is hashed at sealing only after a write error).
    """
    from edge_agent.recording.index import SegmentInfo
    from edge_agent.recording.segment_writer import ClosedSegment

    sealing = {"sealing_cpu_s": 0.0, "segments_sealed": 0.0}
    seal = ClosedSegment.seal

    def timed_seal(closed: ClosedSegment) -> SegmentInfo:
        began = time.thread_time()
        try:
            return seal(closed)
        finally:
            sealing["sealing_cpu_s"] += time.thread_time() - began
            sealing["segments_sealed"] += 1

    ClosedSegment.seal = timed_seal  # type: ignore[method-assign, assignment]
    return sealing


class Ours:
    """Our recorders in a child process, driven over its stdin and stdout."""

    name = "edge_agent recorder"

    def __init__(
        self, port: int, streams: int, segment_s: int, out: Path, copy: str | None = None
    ) -> None:
        cmd = [
            sys.executable, __file__, "--child", "--port", str(port), "--streams", str(streams),
            "--segment-seconds", str(segment_s), "--out", str(out),
        ]  # fmt: skip
        if copy is not None and copy.startswith("native"):
            flags = NATIVE_MODES[copy]
            cmd = [str(build_native(out.parent)), *flags, str(out), *urls(port, streams)]
            self.name = f"compiled copy loop ({copy})"
        elif copy is not None:
            cmd += ["--copy", copy]
            self.name = f"bare PyAV copy ({copy})"
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self.handle = psutil.Process(self.proc.pid)
        self.final: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            if line.startswith("{"):
                data: dict[str, Any] = json.loads(line)
                if "error" in data:
                    raise SystemExit(f"recorder child: {data['error']}")
                return data
        raise SystemExit(f"recorder child ended ({self.proc.wait()})")

    def wait_ready(self) -> None:
        """Block until every recorder is online."""
        self._read()

    def mark(self) -> Mark:
        """CPU and frame totals now."""
        assert self.proc.stdin is not None
        cpu = cpu_seconds([self.handle])
        self.proc.stdin.write("mark\n")
        self.proc.stdin.flush()
        data = self._read()
        return Mark(
            data["at"], cpu, data["frames"], data["sealing_cpu_s"], int(data["segments_sealed"])
        )

    def stop(self) -> None:
        """Stop the recorders (each closes and indexes its segment) and wait."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.close()
        self.final = self._read()["final"]
        self.proc.wait(60)


# The compiled copy loop's modes: fragmented MP4 hashed while written (the recorder's
# output), the same unhashed, and an unfragmented MP4 through FFmpeg's file writer (what
# `ffmpeg -f segment` writes).
NATIVE_MODES = {"native": [], "native-unhashed": ["-n"], "native-unfragmented": ["-F"]}


def build_native(folder: Path) -> Path:
    """Compile bench/native_copy.c against the FFmpeg the `ffmpeg` command line uses."""
    binary = folder / "native_copy"
    libs = ["libavformat", "libavcodec", "libavutil", "libcrypto"]
    try:
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", *libs], check=True, capture_output=True,
            text=True,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(
            "--copy native needs a C compiler and the FFmpeg and OpenSSL headers "
            f"(apt-get install -y gcc pkg-config libavformat-dev libssl-dev): {e}"
        ) from e
    source = ROOT / "bench" / "native_copy.c"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(binary), str(source), *flags, "-lpthread"], check=True
    )
    return binary


# --- ffmpeg --------------------------------------------------------------------------------


class Ffmpeg:
    """N `ffmpeg -c copy -f segment` processes; frames from their -progress files."""

    name = "ffmpeg -c copy -f segment"

    def __init__(self, port: int, streams: int, segment_s: int, out: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.progress: list[Path] = []
        for i, url in enumerate(urls(port, streams)):
            folder = out / f"cam{i:02d}"
            folder.mkdir(parents=True)
            self.progress.append(out / f"cam{i:02d}.progress")
            cmd = [
                "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
                "-progress", str(self.progress[-1]), "-stats_period", "0.5",
                "-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-f", "segment",
                "-segment_time", str(segment_s), "-segment_format", "mp4",
                str(folder / "%05d.mp4"),
            ]  # fmt: skip
            self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
        self.handles = [psutil.Process(p.pid) for p in self.procs]

    def wait_ready(self) -> None:
        """Block until every process has muxed frames."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while any(_progress_frames(p) <= 0 for p in self.progress):
            if time.monotonic() > deadline:
                raise SystemExit("ffmpeg did not start recording every stream")
            time.sleep(0.2)

    def mark(self) -> Mark:
        """CPU and frame totals now (frames as of the last progress report, <= 0.5 s old)."""
        return Mark(
            time.monotonic(),
            cpu_seconds(self.handles),
            sum(max(0, _progress_frames(p)) for p in self.progress),
        )

    def stop(self) -> None:
        """SIGTERM: ffmpeg finishes its current segment file."""
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


_FRAME = re.compile(rb"^frame=(\d+)$", re.MULTILINE)


def _progress_frames(path: Path) -> int:
    """The last `frame=` ffmpeg wrote to its -progress file (-1 before the first)."""
    try:
        found = _FRAME.findall(path.read_bytes())
    except OSError:
        return -1
    return int(found[-1]) if found else -1


# --- running and measuring -----------------------------------------------------------------


Runner = Ours | Ffmpeg


def measure(runners: list[Runner], streams: int, seconds: float) -> list[RunResult]:
    """Open the window on every runner at once, close it `seconds` later."""
    for r in runners:
        r.wait_ready()
    time.sleep(WARMUP_S)
    first = [r.mark() for r in runners]
    time.sleep(seconds)
    last = [r.mark() for r in runners]
    results = []
    for r, a, b in zip(runners, first, last, strict=True):
        window = b.at - a.at
        results.append(
            RunResult(
                name=r.name,
                window_s=window,
                cpu_s=b.cpu_s - a.cpu_s,
                frames_received=b.frames - a.frames,
                frames_expected=round(FPS * window) * streams,
                extra={
                    "sealing_cpu_s": b.sealing_cpu_s - a.sealing_cpu_s,
                    "segments_sealed": b.segments_sealed - a.segments_sealed,
                },
            )
        )
    for r, result in zip(runners, results, strict=True):
        r.stop()
        if isinstance(r, Ours):
            result.extra.update(r.final)
    return results


def scan_outputs(root: Path, result: RunResult) -> None:
    """Add files, bytes, seconds of video and frames missing inside files to `result`."""
    for path in sorted(root.rglob("*.mp4")):
        if ".quarantine" in path.parts:
            continue
        result.files += 1
        result.bytes_written += path.stat().st_size
        duration, missing = video_steps(path)
        result.seconds_written += duration
        result.frames_missing_in_files += missing


# --- report --------------------------------------------------------------------------------


def print_table(streams: int, ours: RunResult, ff: RunResult, server_cpu_s: float) -> None:
    """A human-readable table of both runs."""
    rows: list[tuple[str, Callable[[RunResult], str]]] = [
        ("CPU s per stream-minute", lambda r: f"{r.per_stream_minute(streams):.3f}"),
        ("CPU % of one core per stream", lambda r: f"{r.percent_per_stream(streams):.2f}"),
        ("frames received / expected", lambda r: f"{r.frames_received} / {r.frames_expected}"),
        ("frames missing inside files", lambda r: str(r.frames_missing_in_files)),
        ("files", lambda r: str(r.files)),
        ("MB written", lambda r: f"{r.bytes_written / 1e6:.1f}"),
        ("video seconds written", lambda r: f"{r.seconds_written:.0f}"),
    ]
    print(f"\n{streams} streams, window {ours.window_s:.0f} s (ours), {ff.window_s:.0f} s (ffmpeg)")
    print(f"{'':32} {'edge_agent':>18} {'ffmpeg':>18}")
    for label, fmt in rows:
        print(f"{label:32} {fmt(ours):>18} {fmt(ff):>18}")
    ratio = ours.per_stream_minute(streams) / max(1e-9, ff.per_stream_minute(streams))
    print(f"CPU ratio ours / ffmpeg: {ratio:.2f}")
    sealing = ours.extra["sealing_cpu_s"]
    bare = (ours.cpu_s - sealing) / ours.window_s / max(1e-9, ff.cpu_s / ff.window_s)
    print(
        f"  of which sealing (fsync + SHA-256 of {ours.extra['segments_sealed']} segments): "
        f"{sealing:.2f} s; ratio without it: {bare:.2f}"
    )
    print(f"RTSP server CPU (excluded): {server_cpu_s:.1f} s over the whole run")


def report(
    args: argparse.Namespace,
    ours: RunResult,
    ff: RunResult,
    server_cpu_s: float,
    source_bps: float,
    info: dict[str, Any],
) -> dict[str, Any]:
    """The JSON results."""
    n = args.streams
    ratio = ours.per_stream_minute(n) / max(1e-9, ff.per_stream_minute(n))
    bare = (ours.cpu_s - ours.extra["sealing_cpu_s"]) / ours.window_s
    return {
        "streams": n,
        "seconds": args.seconds,
        "segment_seconds": args.segment_seconds,
        "mode": "sequential" if args.sequential else "side by side",
        "cpu_ratio_vs_ffmpeg": round(ratio, 3),
        "cpu_ratio_vs_ffmpeg_without_sealing": round(bare / max(1e-9, ff.cpu_s / ff.window_s), 3),
        "cpu_percent_per_stream": round(ours.percent_per_stream(n), 3),
        "ffmpeg_cpu_percent_per_stream": round(ff.percent_per_stream(n), 3),
        "cpu_s_per_stream_minute": round(ours.per_stream_minute(n), 4),
        "ffmpeg_cpu_s_per_stream_minute": round(ff.per_stream_minute(n), 4),
        "sealing_cpu_s": round(ours.extra["sealing_cpu_s"], 3),
        "lost_packets": ours.frames_missing_in_files
        + max(0, ours.frames_expected - ours.frames_received),
        "ffmpeg_lost_packets": ff.frames_missing_in_files,
        "ffmpeg_frames_received_vs_expected": [ff.frames_received, ff.frames_expected],
        "source_bitrate_bps": round(source_bps),
        "bytes_written_vs_source": {
            r.name: round(r.bytes_written * 8 / max(1e-9, source_bps * r.seconds_written), 4)
            for r in (ours, ff)
        },
        "rtsp_server_cpu_s": round(server_cpu_s, 2),
        "runs": {"ours": asdict(ours), "ffmpeg": asdict(ff)},
        "machine": info,
        "note": "shared machine: other work may have run at the same time",
    }


class _PlainWriter:
    """A Python file object without hashing or the space check (for the breakdown)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def write(self, data: bytes) -> int:
        os.write(self._fd, data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        os.close(self._fd)


class _Quiet:
    """Session events that go nowhere (the breakdown times the packet path alone)."""

    def recording_started(self, start: float, keyframe_wait_s: float) -> None:
        """Ignored."""

    def segment_closed(self, closed: Any, first_of_session: bool) -> None:
        """Ignored."""

    def timeline_broken(self, previous_end: float, start: float, reason: str) -> None:
        """Ignored."""


def per_packet_us(clip: Path, rounds: int = 3) -> dict[str, float]:
    """CPU microseconds per video packet of each layer of the copy path, file to file.

    One thread, no network, no other recorder: the clip is demuxed and muxed step by step
    adding one layer at a time (demux alone; FFmpeg writing the file itself, unfragmented
    and fragmented as the recorder writes; through a Python file object; with SHA-256; with
    the space check; the whole RecordingSession). The median of `rounds` for each.
    """
    from edge_agent.recording import segment_writer as sw
    from edge_agent.recording.events import ListenerSet
    from edge_agent.recording.session import RecordingSession
    from edge_agent.recording.status import Counters, RateMeter

    frag = {"movflags": sw.MOVFLAGS, "frag_duration": str(sw.FRAGMENT_US), "flush_packets": "1"}

    def demux_only(_: Path) -> tuple[float, int]:
        with av.open(str(clip)) as c:
            began, n = time.process_time(), 0
            for _packet in c.demux(c.streams.video[0]):
                n += 1
            return time.process_time() - began, n

    def copy(
        target: Callable[[Path], Any], options: dict[str, str]
    ) -> Callable[[Path], tuple[float, int]]:
        def run(folder: Path) -> tuple[float, int]:
            with av.open(str(clip)) as c:
                v = c.streams.video[0]
                out = av.open(target(folder / "out.mp4"), "w", format="mp4",
                              buffer_size=sw.WRITE_BUFFER, options=options)  # fmt: skip
                stream = out.add_stream_from_template(v)
                stream.codec_tag = sw.VIDEO_TAGS["h264"]
                began, n = time.process_time(), 0
                for packet in c.demux(v):
                    if packet.size:
                        packet.stream = stream
                        out.mux_one(packet)
                        n += 1
                out.close()
                return time.process_time() - began, n

        return run

    def session(folder: Path) -> tuple[float, int]:
        with av.open(str(clip)) as c:
            counters = Counters()
            s = RecordingSession(
                camera="cam", storage=folder, segment_s=60.0, container=c,
                video=c.streams.video[0], audio=None, events=_Quiet(), counters=counters,
                meter=RateMeter(), packet_listeners=ListenerSet("packet"), previous_end=None,
                guard=sw.SpaceGuard(folder, 1 << 20),
            )  # fmt: skip
            began = time.process_time()
            s.run(threading.Event())
            s.finish()
            return time.process_time() - began, counters.video_packets

    layers: dict[str, Callable[[Path], tuple[float, int]]] = {
        "demux": demux_only,
        "demux_mux_by_ffmpeg_unfragmented": copy(str, {}),
        "demux_mux_by_ffmpeg_fragmented": copy(str, frag),
        "through_python_file_object": copy(_PlainWriter, frag),
        "with_sha256": copy(sw.HashingWriter, frag),
        "with_sha256_and_space_check": copy(
            lambda p: sw.HashingWriter(p, sw.SpaceGuard(p.parent, 1 << 20)), frag
        ),
        "recording_session": session,
    }
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(rounds):
        for name, layer in layers.items():
            with tempfile.TemporaryDirectory(prefix="bench-record-layer-") as tmp:
                cpu_s, packets = layer(Path(tmp))
            times[name].append(cpu_s / max(1, packets) * 1e6)
    return {name: round(statistics.median(values), 1) for name, values in times.items()}


def run_once(
    args: argparse.Namespace, port: int, server_proc: psutil.Process
) -> tuple[RunResult, RunResult, float]:
    """One measured window of both recorders; (ours, ffmpeg, RTSP server CPU seconds)."""
    n, seg = args.streams, args.segment_seconds
    with tempfile.TemporaryDirectory(prefix="bench-record-") as tmp:
        out_ours, out_ff = Path(tmp) / "ours", Path(tmp) / "ffmpeg"
        out_ours.mkdir()
        out_ff.mkdir()
        cpu_before = cpu_seconds([server_proc])
        if args.sequential:
            (ours,) = measure([Ours(port, n, seg, out_ours, args.copy)], n, args.seconds)
            (ff,) = measure([Ffmpeg(port, n, seg, out_ff)], n, args.seconds)
        else:
            runners: list[Runner] = [
                Ours(port, n, seg, out_ours, args.copy),
                Ffmpeg(port, n, seg, out_ff),
            ]
            ours, ff = measure(runners, n, args.seconds)
        server_cpu_s = cpu_seconds([server_proc]) - cpu_before
        scan_outputs(out_ours, ours)
        scan_outputs(out_ff, ff)
    return ours, ff, server_cpu_s


def breakdown_main() -> int:
    """Time the layers of the copy path and merge them into the results."""
    clip = main_clip()
    layers = per_packet_us(clip.path)
    for name, us in layers.items():
        print(f"{name:36} {us:8.1f} µs per packet")
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result["per_packet_cpu_us"] = layers | {
        "note": "one thread, file to file (no network, no GIL contention), median of 3; "
        "each line adds one layer to the one above",
        "loadavg_before": load(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def parent_main(args: argparse.Namespace) -> int:
    """Run both recorders against one server `--repeat` times and write the JSON results.

    The figures reported in full are those of the run with the median ratio; every run's
    ratio, losses and load average are listed under `repeats`.
    """
    clip = main_clip()
    info = machine()
    server, port = start_server(args.streams, clip.path)
    server_proc = psutil.Process(server.pid)
    runs: list[tuple[RunResult, RunResult, float]] = []
    repeats: list[dict[str, Any]] = []
    try:
        for i in range(args.repeat):
            if server.poll() is not None:
                raise SystemExit(f"the RTSP server ended ({server.returncode})")
            load_before = load()
            ours, ff, server_cpu_s = run_once(args, port, server_proc)
            print_table(args.streams, ours, ff, server_cpu_s)
            figures = report(args, ours, ff, server_cpu_s, clip.bitrate_bps, info)
            repeats.append(
                {
                    key: figures[key]
                    for key in (
                        "cpu_ratio_vs_ffmpeg",
                        "cpu_ratio_vs_ffmpeg_without_sealing",
                        "lost_packets",
                        "ffmpeg_lost_packets",
                    )
                }
                | {"loadavg_before": load_before, "loadavg_after": load()}
            )
            runs.append((ours, ff, server_cpu_s))
            print(f"run {i + 1}/{args.repeat}: {repeats[-1]}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    ratios = [r["cpu_ratio_vs_ffmpeg"] for r in repeats]
    middle = ratios.index(sorted(ratios)[(len(ratios) - 1) // 2])
    result = report(args, *runs[middle], clip.bitrate_bps, info)
    result["cpu_ratio_vs_ffmpeg_median"] = round(statistics.median(ratios), 3)
    result["lost_packets_max"] = max(r["lost_packets"] for r in repeats)
    result["repeats"] = repeats
    print(f"CPU ratio ours / ffmpeg, median of {len(ratios)}: {statistics.median(ratios):.3f}")
    target = RESULTS if args.copy is None else RESULTS.with_name(f"record_copy_{args.copy}.json")
    if args.copy in NATIVE_MODES:
        result["note"] += (
            f"; ours here is the compiled copy loop ({args.copy}, bench/native_copy.c on the "
            "command line's FFmpeg), not the recorder: the least a copy in C costs against "
            "the same ffmpeg"
        )
    elif args.copy is not None:
        result["note"] += (
            f"; ours here is the bare PyAV copy ({args.copy}), not the recorder: what the "
            "recorder's layers cost, measured against the same ffmpeg"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or the recorder child)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=32, help="simulated cameras (default 32)")
    parser.add_argument("--seconds", type=float, default=60, help="measured window (default 60)")
    parser.add_argument("--segment-seconds", type=int, default=60, help="segment length")
    parser.add_argument(
        "--sequential", action="store_true", help="run ours, then ffmpeg (default: side by side)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured runs (default 3)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time each layer of the copy path per packet instead (file to file, one thread)",
    )
    parser.add_argument(
        "--copy",
        choices=("plain", "hashed", *NATIVE_MODES),
        help="run a bare PyAV copy instead of our recorder (plain: FFmpeg writes the file; "
        "hashed: through the recorder's file object) or a compiled copy loop hashing while "
        "writing (native: bench/native_copy.c on the command line's FFmpeg; "
        "native-unhashed without SHA-256; native-unfragmented as ffmpeg writes) and write "
        "bench/results/record_copy_MODE.json: what the recorder's layers cost against the "
        "same ffmpeg",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.breakdown:
        return breakdown_main()
    if args.child:
        return child_main(args) if args.copy is None else copy_child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
