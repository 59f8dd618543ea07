"""Audio that real cameras send, recorded over the real RTSP testbed: it never costs video."""

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from recording_helpers import copy_clip, decoded_frames, ffprobe, make_config, wait_for

from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording import segment_writer
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.paths import segment_relpath
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.recorder import CameraRecorder
from edge_agent.recording.segment_writer import audio_codec_name, mp4_accepts
from testbed.footage import Footage
from testbed.rtsp import RtspServer

pytestmark = pytest.mark.slow

RECORD_S = 13.0  # two whole 6 s segments (5 s target, 2 s GOP) and a part
KEPT = {"aac": "aac", "ac3": "ac3", "mp3": "mp3", "opus": "opus"}  # RTSP path -> audio codec
DROPPED = {"pcma": "pcm_alaw", "pcmu": "pcm_mulaw"}


class LogCollector(logging.Handler):
    """Every log line, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class AudioRun:
    """One recording run of every audio variant at once."""

    config: EdgeConfig
    index: SegmentIndex
    logs: list[str]


@pytest.fixture(scope="module")
def audio_run(
    rtsp_server: RtspServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AudioRun]:
    """Cameras with AAC, AC-3, MP3, Opus, G.711 A-law and mu-law audio, recorded together."""
    tmp = tmp_path_factory.mktemp("audio")
    cameras = {name: rtsp_server.url(name) for name in [*KEPT, *DROPPED]}
    config = make_config(tmp, cameras)
    index = SegmentIndex(config.state_dir / "index.db")
    collector = LogCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    recorders = [
        CameraRecorder(c, config, index, CredentialStore(environ={})) for c in config.cameras
    ]
    try:
        for rec in recorders:
            rec.start()
        wait_for(lambda: all(r.status().state == "online" for r in recorders), 30, "all online")
        time.sleep(RECORD_S)
        for rec in recorders:
            rec.stop()
        yield AudioRun(config, index, collector.lines)
    finally:
        for rec in recorders:
            rec.stop()
        root.removeHandler(collector)
        index.close()


@pytest.mark.parametrize("camera", sorted(KEPT))
def test_audio_mp4_can_carry_is_kept_with_every_frame(audio_run: AudioRun, camera: str) -> None:
    segments = audio_run.index.segments_by_id(camera)
    assert len(segments) >= 2
    for seg in segments:
        file = audio_run.config.storage.path / seg.path
        kinds = {s["codec_type"]: s for s in ffprobe(file)}
        assert seg.audio_codec == KEPT[camera]
        assert seg.path == segment_relpath(camera, seg.start)  # named by its row's start
        assert kinds["audio"]["codec_name"] == KEPT[camera]
        assert int(kinds["audio"]["nb_read_packets"]) > 0
        assert seg.duration >= 1.9 and seg.bytes > 100_000
        assert decoded_frames(file) == int(kinds["video"]["nb_read_packets"]) >= 48
    # One online state for the whole run: no flapping on every try.
    states = [r["state"] for r in audio_run.index.states(camera)]
    assert states.count("online") == 1
    assert audio_run.index.verify_chain(camera, audio_run.config.storage.path) == []


@pytest.mark.parametrize("camera", sorted(DROPPED))
def test_audio_mp4_cannot_carry_is_dropped_with_one_log_line(
    audio_run: AudioRun, camera: str
) -> None:
    segments = audio_run.index.segments_by_id(camera)
    assert len(segments) >= 2 and all(s.audio_codec is None for s in segments)
    file = audio_run.config.storage.path / segments[0].path
    assert [s["codec_type"] for s in ffprobe(file)] == ["video"]
    said = [line for line in audio_run.logs if line.startswith(f"{camera}:") and "audio" in line]
    assert said == [
        f"{camera}: audio {DROPPED[camera]} cannot be stored in MP4; recording video only"
    ]


def test_no_segment_without_video_is_indexed(audio_run: AudioRun) -> None:
    for camera in [*KEPT, *DROPPED]:
        for seg in audio_run.index.segments_by_id(camera):
            file = audio_run.config.storage.path / seg.path
            assert seg.duration > 0 and probe_segment(file).frames > 0


@pytest.mark.parametrize("clip", ["aac", "ac3", "eac3", "mp3", "opus", "pcma", "pcmu"])
def test_every_audio_codec_against_the_muxer(footage: Footage, tmp_path: Path, clip: str) -> None:
    """E-AC-3 has no RTP payloader in the testbed: every codec is also muxed from a file."""
    source = getattr(footage, f"main_h264_{clip}")
    with av.open(str(source)) as src:
        codec = audio_codec_name(src.streams.audio[0])
    if not mp4_accepts(codec):
        assert clip in ("pcma", "pcmu")
        closed = copy_clip(source, tmp_path, "cam1", 1_764_000_000.0, 4.0, audio=False)
        assert closed.audio_codec is None
        return
    closed = copy_clip(source, tmp_path, "cam1", 1_764_000_000.0, 4.0)
    kinds = {s["codec_type"]: s for s in ffprobe(closed.path)}
    assert kinds["audio"]["codec_name"] == codec == closed.audio_codec
    assert int(kinds["audio"]["nb_read_packets"]) > 0
    assert decoded_frames(closed.path) >= 90
    # Hashed while written: the digest is the file's.
    assert closed.seal().sha256 == hashlib.sha256(closed.path.read_bytes()).hexdigest()


def test_audio_the_muxer_refuses_at_run_time_costs_only_the_audio(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without delay_moov the muxer refuses AC-3's header: the recorder goes on without audio."""
    monkeypatch.setattr(segment_writer, "DELAY_MOOV_AUDIO", frozenset())
    config = make_config(tmp_path, {"ac3": rtsp_server.url("ac3")})
    index = SegmentIndex(config.state_dir / "index.db")
    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    rec = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    try:
        rec.start()
        wait_for(lambda: len(index.segments_by_id("ac3")) >= 2, 40, "two segments")
    finally:
        rec.stop()
        logging.getLogger().removeHandler(collector)
    segments = index.segments_by_id("ac3")
    assert all(s.audio_codec is None and s.duration > 0 for s in segments)
    assert all(s.duration >= 1.9 for s in segments[:-1])  # the last one ended at stop()
    assert [r["state"] for r in index.states("ac3")][:2] == ["online", "offline"]
    assert rec.status().reconnects == 0  # the first connection went on, video only
    said = [line for line in collector.lines if "audio ac3" in line]
    assert len(said) == 1 and "refused" in said[0] and "recording video only" in said[0]
    leftovers = sorted(p.relative_to(config.storage.path).as_posix()
                       for p in config.storage.path.rglob("*.mp4"))  # fmt: skip
    assert leftovers == sorted(s.path for s in segments)  # the refused file is gone
    index.close()
