"""The camera recorder against the real RTSP server: segments, codecs, outages, crash safety."""

import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import psutil
import pytest
import yaml
from recording_helpers import (
    decoded_frames,
    ffprobe,
    header_only_segment,
    make_config,
    wait_for,
)

from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.errors import UnsupportedStreamError
from edge_agent.recording.events import ListenerSet, PacketEvent
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.recorder import NO_FRAME_WRITTEN, CameraRecorder, failure_reason
from edge_agent.recording.repair import scan_and_repair
from edge_agent.recording.segment_writer import ClosedSegment
from edge_agent.recording.session import RecordingSession
from edge_agent.recording.status import Counters, RateMeter, RecorderStatus
from edge_agent.recording.streams import select_streams
from testbed.footage import Footage
from testbed.ports import free_port
from testbed.rtsp import RtspServer

pytestmark = pytest.mark.slow
RtspServerFactory = Callable[..., RtspServer]  # tests/conftest.py's rtsp_server_factory

SECRET = "s3cret-Pa55"
RECORD_S = 13.0  # two whole 6 s segments (5 s target, 2 s GOP) and a part


class LogCollector(logging.Handler):
    """Every log line of every thread, formatted, for the credential check."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Recording:
    """What one shared recording run produced."""

    config: EdgeConfig
    index: SegmentIndex
    started: float
    logs: list[str]
    mid_status: dict[str, RecorderStatus]
    final_status: dict[str, RecorderStatus]
    stop_s: dict[str, float]
    indexed: dict[str, list[Segment]] = field(default_factory=dict)
    packets: Counter[str] = field(default_factory=Counter)
    keyframes_first: bool = False

    def segments(self, camera: str) -> list[Segment]:
        return self.index.segments_by_id(camera)

    def file(self, segment: Segment) -> Path:
        return self.config.storage.path / segment.path


@pytest.fixture(scope="module")
def recording(
    rtsp_server: RtspServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recording]:
    """Five cameras recorded at once: H.264 with a login, H.265, AAC, G.711 and a bad path."""
    tmp = tmp_path_factory.mktemp("recording")
    url = rtsp_server.url
    cameras = {
        "cam1": url("cam1"),
        "h265": url("h265"),
        "aac": url("aac"),
        "pcma": url("pcma"),
        "nope": url("cam1").rsplit("/", 1)[0] + "/no-such-path",
    }
    config = make_config(tmp, cameras, credentials={"cam1": "login", "nope": "login"})
    store = CredentialStore(environ={"EDGE_CRED_LOGIN_USER": "admin",
                                     "EDGE_CRED_LOGIN_PASSWORD": SECRET})  # fmt: skip
    index = SegmentIndex(config.state_dir / "index.db")
    collector = LogCollector()
    collector.setFormatter(logging.Formatter("%(levelname)s [%(threadName)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(collector)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    recorders = {c.id: CameraRecorder(c, config, index, store) for c in config.cameras}
    run = Recording(config, index, time.time(), collector.lines, {}, {}, {})
    cam1 = recorders["cam1"]
    cam1.add_segment_listener(lambda s: run.indexed.setdefault(s.camera, []).append(s))

    def on_packet(event: PacketEvent) -> None:
        if not run.packets:
            run.keyframes_first = event.keyframe and event.kind == "video"
        run.packets[event.kind] += 1

    recorders["aac"].add_packet_listener(on_packet)
    try:
        for rec in recorders.values():
            rec.start()
        wait_for(lambda: cam1.status().state == "online", 20, "cam1 online")
        time.sleep(RECORD_S - 3)
        run.mid_status = {cam: rec.status() for cam, rec in recorders.items()}
        time.sleep(3)
        for cam, rec in recorders.items():
            t = time.monotonic()
            rec.stop()
            run.stop_s[cam] = time.monotonic() - t
            run.final_status[cam] = rec.status()
        yield run
    finally:
        for rec in recorders.values():
            rec.stop()
        root.removeHandler(collector)
        root.setLevel(old_level)
        index.close()


def test_segments_are_contiguous_playable_and_chained(recording: Recording) -> None:
    segments = recording.segments("cam1")
    assert len(segments) >= 3
    for before, after in zip(segments, segments[1:], strict=False):
        assert after.start == before.end  # no seam at all while the camera is up
    assert all(s.duration == pytest.approx(6.0) for s in segments[:-1])
    assert 0 < segments[-1].duration <= 6.0  # the part recorded until stop()
    assert abs(segments[0].start - recording.started) < 5.0  # stream time mapped to UTC
    packets = 0
    for seg in segments:
        (video,) = ffprobe(recording.file(seg))
        assert (video["codec_name"], video["codec_tag_string"]) == ("h264", "avc1")
        assert (video["width"], video["height"]) == (1920, 1080)
        assert decoded_frames(recording.file(seg)) == int(video["nb_read_packets"])
        assert int(video["nb_read_packets"]) == round(seg.duration * 25)
        packets += int(video["nb_read_packets"])
        assert seg.bytes == recording.file(seg).stat().st_size
        assert seg.repaired == 0
    assert recording.index.verify_chain("cam1", recording.config.storage.path) == []
    assert packets == recording.final_status["cam1"].video_packets


def test_status_listeners_and_clean_stop(recording: Recording) -> None:
    mid = recording.mid_status["cam1"]
    assert mid.state == "online"
    assert 20 <= mid.fps <= 30
    assert 2e6 < mid.bitrate_bps < 8e6  # the 4 Mbit/s main stream
    final = recording.final_status["cam1"]
    assert final.state == "stopped"
    assert final.dropped == 0
    assert final.last_segment_end == recording.segments("cam1")[-1].end
    assert recording.indexed["cam1"] == recording.segments("cam1")
    assert recording.keyframes_first
    assert recording.packets["video"] > 200 and recording.packets["audio"] > 300
    assert max(recording.stop_s.values()) < 5.0
    states = [(r["state"], r["reason"]) for r in recording.index.states("cam1")]
    assert states == [("online", "recording"), ("offline", "recorder stopped")]
    (gap,) = recording.index.gaps("cam1")
    assert (gap.start, gap.end, gap.reason) == (final.last_segment_end, None, "agent stopped")


def test_h265_is_recorded_as_hvc1(recording: Recording) -> None:
    segments = recording.segments("h265")
    assert len(segments) >= 2 and all(s.codec == "hevc" for s in segments)
    (video,) = ffprobe(recording.file(segments[0]))
    assert (video["codec_name"], video["codec_tag_string"]) == ("hevc", "hvc1")
    assert decoded_frames(recording.file(segments[0])) == int(video["nb_read_packets"])


def test_aac_is_kept(recording: Recording) -> None:
    segments = recording.segments("aac")
    assert segments and all(s.audio_codec == "aac" for s in segments)
    kinds = {s["codec_type"]: s for s in ffprobe(recording.file(segments[0]))}
    assert kinds["audio"]["codec_name"] == "aac"
    assert float(kinds["audio"]["duration"]) == pytest.approx(segments[0].duration, abs=0.2)


def test_g711_audio_is_dropped_with_one_log_line(recording: Recording) -> None:
    segments = recording.segments("pcma")
    assert segments and all(s.audio_codec is None for s in segments)
    assert [s["codec_type"] for s in ffprobe(recording.file(segments[0]))] == ["video"]
    said = [line for line in recording.logs if "pcma" in line and "pcm_alaw" in line]
    assert len(said) == 1 and "recording video only" in said[0]


def test_credentials_never_reach_the_logs(recording: Recording) -> None:
    assert recording.segments("cam1")  # the login was used, and worked
    assert recording.logs  # something was logged, failures included
    assert any("nope" in line and "stream not found" in line for line in recording.logs)
    for line in recording.logs:
        assert SECRET not in line
        assert "admin:" not in line
    reasons = [r["reason"] for r in recording.index.states("nope")]
    reasons += [g.reason for g in recording.index.gaps("nope")]
    assert "stream not found" in reasons
    assert not any(SECRET in r for r in reasons)
    assert recording.final_status["nope"].segments == 0


def test_server_restart_is_a_gap_and_recording_resumes(
    footage: Footage, rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    server = rtsp_server_factory({"cam1": footage.main_h264})
    config = make_config(tmp_path, {"cam1": server.url("cam1")})
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    recorder.start()
    try:
        wait_for(lambda: recorder.status().state == "online", 20, "online")
        time.sleep(3)
        server.stop()
        wait_for(lambda: recorder.status().state == "offline", 15, "offline")
        time.sleep(2)
        server.start()  # the same port
        back = time.time()
        wait_for(lambda: recorder.status().state == "online", 10, "online again")
        assert recorder.status().since - back <= 5.0
        time.sleep(1)
    finally:
        recorder.stop()
    segments = index.segments_by_id("cam1")
    gaps = [g for g in index.gaps("cam1") if g.reason != "agent stopped"]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.reason in ("stream ended", "connection refused", "connection reset")
    before = [s for s in segments if s.end <= gap.start]
    after = [s for s in segments if s.start >= gap.start]
    assert before and after and len(before) + len(after) == len(segments)
    assert gap.start == before[-1].end
    assert gap.end == after[0].start
    assert gap.end - gap.start >= 2.0
    states = [r["state"] for r in index.states("cam1")]
    assert states[:3] == ["online", "offline", "offline"] or states[:2] == ["online", "offline"]
    assert "online" in states[2:]
    assert index.verify_chain("cam1", config.storage.path) == []
    index.close()


def test_stop_while_the_camera_read_hangs_closes_the_segment(
    footage: Footage, rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    server = rtsp_server_factory({"cam1": footage.main_h264})
    config = make_config(tmp_path, {"cam1": server.url("cam1")}, read_timeout_s=30.0)
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    server_proc = _listener(server.port)
    recorder.start()
    try:
        wait_for(lambda: recorder.status().state == "online", 20, "online")
        time.sleep(2)
        server_proc.send_signal(signal.SIGSTOP)  # the camera hangs: no data, no error
        time.sleep(1)
        t = time.monotonic()
        recorder.stop()
        assert time.monotonic() - t < 6.0
    finally:
        server_proc.send_signal(signal.SIGCONT)
        recorder.stop()
    (segment,) = index.segments("cam1")
    assert decoded_frames(config.storage.path / segment.path) >= 50
    index.close()


def test_unsupported_stream_goes_offline_and_keeps_retrying(
    footage: Footage, rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    audio_only = tmp_path / "audio_only.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(footage.main_h264_aac), "-vn", "-c:a", "copy",
         "-t", "5", str(audio_only)],
        check=True,
    )  # fmt: skip
    server = rtsp_server_factory({"mic": audio_only})
    config = make_config(tmp_path, {"mic": server.url("mic")})
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    recorder.start()
    try:
        wait_for(lambda: recorder.status().state == "offline", 20, "offline")
        status = recorder.status()
        assert status.reason == "no video track"
        assert any(t.name == "rec-mic" and t.is_alive() for t in threading.enumerate())
    finally:
        recorder.stop()
    assert index.segments() == []
    assert ("offline", "no video track") in [(r["state"], r["reason"]) for r in index.states("mic")]
    index.close()


def test_mjpeg_video_is_refused_by_name(footage: Footage, tmp_path: Path) -> None:
    mjpeg = tmp_path / "mjpeg.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(footage.short_h264), "-t", "1", "-c:v", "mjpeg",
         str(mjpeg)],
        check=True,
    )  # fmt: skip
    with av.open(str(mjpeg)) as container:
        with pytest.raises(UnsupportedStreamError, match="unsupported codec: mjpeg"):
            select_streams(container, "cam1", set())


def test_kill_9_leaves_playable_segments_indexed_at_restart(
    footage: Footage, rtsp_server: RtspServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam2")})
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    index = SegmentIndex(config.state_dir / "index.db")
    agent = _start_agent(config_file, tmp_path / "agent1.log")
    try:
        wait_for(lambda: len(index.segments("cam1")) >= 1, 40, "a first segment")
        time.sleep(3.5)  # well into the second segment
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    on_disk = sorted((config.storage.path / "cam1").rglob("*.mp4"))
    assert len(on_disk) == 2  # the indexed one and the one cut short
    assert len(index.segments("cam1")) == 1

    agent = _start_agent(config_file, tmp_path / "agent2.log")
    try:
        wait_for(lambda: len(index.segments("cam1")) >= 3, 40, "recording after restart")
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0
    segments = index.segments_by_id("cam1")
    repaired = [s for s in segments if s.repaired]
    assert len(repaired) == 1
    cut_short = repaired[0]
    assert cut_short.start == segments[0].end
    assert 2.0 <= cut_short.duration < 6.0
    assert decoded_frames(config.storage.path / cut_short.path) >= 50
    assert index.verify_chain("cam1", config.storage.path) == []
    assert all((config.storage.path / s.path).is_file() for s in segments)
    assert any(g.reason == "agent not running" for g in index.gaps("cam1"))
    assert not scan_and_repair(index, config.storage.path).indexed
    index.close()


def _start_agent(config_file: Path, log_file: Path) -> "subprocess.Popen[bytes]":
    edge_agent = Path(sys.executable).with_name("edge-agent")
    with log_file.open("wb") as log:
        return subprocess.Popen(
            [str(edge_agent), "run", "-c", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _listener(port: int) -> psutil.Process:
    """The process listening on a local TCP port."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            assert conn.pid is not None
            return psutil.Process(conn.pid)
    raise AssertionError(f"nothing listens on port {port}")


WRITE_FAILURE_CHILD = """
import json, resource, signal, sys, time
from pathlib import Path
from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.recorder import CameraRecorder, failure_reason

config = EdgeConfig.model_validate_json(Path(sys.argv[1]).read_text())
index = SegmentIndex(config.state_dir / "index.db")  # created before the limit applies
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (2_500_000, 2_500_000))
recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
recorder.start()
time.sleep(float(sys.argv[2]))
recorder.stop()
print(json.dumps({"reconnects": recorder.status().reconnects}))
"""


def test_a_failing_disk_write_keeps_what_was_written_and_retries(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam1")}, segment_seconds=30)
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json())
    SegmentIndex(config.state_dir / "index.db").close()
    done = subprocess.run(
        [sys.executable, "-c", WRITE_FAILURE_CHILD, str(config_file), "9"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cannot write a segment" in done.stderr
    index = SegmentIndex(config.state_dir / "index.db")
    segments = index.segments_by_id("cam1")
    assert len(segments) >= 1
    for seg in segments:  # each file stopped growing at the limit but was sealed and indexed
        file = config.storage.path / seg.path
        assert file.stat().st_size <= 2_500_000
        assert decoded_frames(file) >= 10
        assert seg.duration == pytest.approx(probe_segment(file).duration, abs=0.05)
    assert index.verify_chain("cam1", config.storage.path) == []
    reasons = {r["reason"] for r in index.states("cam1")}
    assert any(r.startswith("video h264: cannot write a segment") for r in reasons)
    index.close()


def test_a_file_no_frame_reached_is_deleted_and_its_time_is_a_gap(
    footage: Footage, tmp_path: Path
) -> None:
    """The disk refused a segment's first fragment: never a 0-second row, the hole is a gap."""
    config = make_config(tmp_path, {"cam1": "rtsp://127.0.0.1:9/unused"})
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    start = 1_795_000_000.0
    closed = header_only_segment(footage, config.storage.path, "cam1", start)
    assert recorder._seal_one(closed)  # handled, not queued to be tried again
    assert not closed.path.exists()
    assert index.segments_by_id("cam1") == []
    (gap,) = index.gaps("cam1")
    assert (gap.start, gap.end, gap.reason) == (start, start + 2.0, NO_FRAME_WRITTEN)
    index.close()


class SessionLog:
    """The session events, as a recorder would receive them."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.keyframe_waits: list[float] = []
        self.closed: list[ClosedSegment] = []
        self.broken: list[tuple[float, float, str]] = []

    def recording_started(self, start: float, keyframe_wait_s: float) -> None:
        self.started.append(start)
        self.keyframe_waits.append(keyframe_wait_s)

    def segment_closed(self, closed: ClosedSegment, first_of_session: bool) -> None:
        self.closed.append(closed)

    def timeline_broken(self, previous_end: float, start: float, reason: str) -> None:
        self.broken.append((previous_end, start, reason))


def _as_mpegts(source: Path, out: Path) -> Path:
    """`source`'s packets copied into an MPEG-TS file (a stream the session reads as a camera's)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", "-f", "mpegts", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _record_file(source: Path, tmp_path: Path) -> tuple[SessionLog, Counters]:
    """One recording session over `source` to its end, into tmp_path/storage."""
    events = SessionLog()
    counters = Counters()
    with av.open(str(source)) as container:
        video, audio = select_streams(container, "cam1", set())
        session = RecordingSession(
            camera="cam1", storage=tmp_path / "storage", segment_s=60.0, container=container,
            video=video, audio=audio, events=events, counters=counters, meter=RateMeter(),
            packet_listeners=ListenerSet("packet"), previous_end=None,
        )  # fmt: skip
        assert session.run(threading.Event()) == "stream ended"
        session.finish()
    return events, counters


def test_a_clock_that_jumps_back_starts_a_new_segment(footage: Footage, tmp_path: Path) -> None:
    """A camera that reboots restarts its timestamps: MP4 must never see dts go backwards."""
    part = _as_mpegts(footage.short_h264, tmp_path / "part.ts")
    rebooted = tmp_path / "rebooted.ts"
    rebooted.write_bytes(part.read_bytes() * 2)  # the same 6 s again, timestamps from 0
    events, counters = _record_file(rebooted, tmp_path)
    assert events.keyframe_waits == [0.0]  # the file begins with a keyframe
    first, second = events.closed
    assert second.start >= first.end
    for closed in events.closed:
        assert closed.end - closed.start == pytest.approx(6.0, abs=0.05)
        dts = _video_dts(closed.path)
        assert len(dts) == 150
        assert all(b > a for a, b in zip(dts, dts[1:], strict=False))
        assert decoded_frames(closed.path) == 150
    assert counters.video_packets == 300 and counters.dropped == 0


def test_a_stream_joined_mid_gop_reports_its_keyframe_wait(
    footage: Footage, tmp_path: Path
) -> None:
    """A camera joined between keyframes: its packets until the next keyframe cannot start a
    file, and the wait is told in stream seconds (what the outage benchmark splits off)."""
    whole = _as_mpegts(footage.short_h264, tmp_path / "whole.ts")
    joined = tmp_path / "joined.ts"  # from frame 13 on: the next keyframe is frame 50
    with av.open(str(whole)) as src, av.open(str(joined), "w", format="mpegts") as out:
        out_video = out.add_stream_from_template(src.streams.video[0])
        for n, packet in enumerate(p for p in src.demux(video=0) if p.size):
            assert packet.is_keyframe == (n % 50 == 0)
            if n >= 13:
                packet.stream = out_video
                out.mux(packet)
    events, counters = _record_file(joined, tmp_path)
    assert counters.skipped == 37
    assert events.keyframe_waits == [pytest.approx(37 / 25)]
    (closed,) = events.closed
    assert len(_video_dts(closed.path)) == counters.video_packets


def _video_dts(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [p.dts for p in container.demux(video=0) if p.dts is not None and p.size]


def test_failure_reasons_are_short_and_carry_no_login() -> None:
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/cam"
    with pytest.raises(av.FFmpegError) as refused:
        av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5.0, None))
    assert SECRET in str(refused.value)  # PyAV's own message names the URL...
    assert failure_reason(refused.value, reading=False) == "connection refused"  # ...ours not
    timeout = av.error.TimeoutError(errno.ETIMEDOUT, "Connection timed out", url)
    assert failure_reason(timeout, reading=True) == "read timeout"
    assert failure_reason(timeout, reading=False) == "open timeout"
    odd = av.error.InvalidDataError(errno.EINVAL, "Invalid data found", url)
    assert failure_reason(odd, reading=True) == "stream error: invalid data found"
    assert failure_reason(EOFError(), reading=True) == "stream ended"
    assert failure_reason(UnsupportedStreamError("no video track"), False) == "no video track"
    assert failure_reason(KeyError("x"), reading=True) == "internal error: KeyError"
