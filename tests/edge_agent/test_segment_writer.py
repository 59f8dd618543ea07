"""Segment files: fragmented MP4 by packet copy, HEVC as hvc1, audio rules, crash tolerance."""

import errno
import shutil
from pathlib import Path

import av
import pytest
from recording_helpers import (
    ShrinkingDisk,
    copy_clip,
    decoded_frames,
    ffprobe,
    fill,
    header_only_segment,
)

from edge_agent.recording.paths import segment_relpath
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.segment_writer import (
    FRAGMENT_US,
    NoFrameError,
    SegmentFile,
    SpaceGuard,
    free_relpath,
    mp4_accepts,
)
from fsv_common.digest import file_sha256
from testbed.footage import Footage

T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC


def test_h264_segment_is_sealed_with_its_facts(footage: Footage, tmp_path: Path) -> None:
    closed = copy_clip(footage.main_h264, tmp_path, "cam1", T0, 4.0)
    info = closed.seal()
    assert info.path == segment_relpath("cam1", T0) == "cam1/2026-11-18/11/06.40.mp4"
    assert (tmp_path / info.path).is_file()
    assert info.sha256 == file_sha256(tmp_path / info.path)
    assert info.bytes == (tmp_path / info.path).stat().st_size
    assert (info.codec, info.width, info.height, info.audio_codec) == ("h264", 1920, 1080, None)
    (stream,) = ffprobe(tmp_path / info.path)
    assert (stream["codec_name"], stream["codec_tag_string"]) == ("h264", "avc1")
    assert int(stream["nb_read_packets"]) == 100  # 4 s at 25 fps, nothing lost or added
    assert decoded_frames(tmp_path / info.path) == 100


def test_hevc_is_tagged_hvc1(footage: Footage, tmp_path: Path) -> None:
    closed = copy_clip(footage.main_h265, tmp_path, "cam1", T0, 2.0)
    (stream,) = ffprobe(closed.path)
    assert (stream["codec_name"], stream["codec_tag_string"]) == ("hevc", "hvc1")
    assert decoded_frames(closed.path) == 50


def test_aac_is_kept_and_g711_is_not_storable(footage: Footage, tmp_path: Path) -> None:
    closed = copy_clip(footage.main_h264_aac, tmp_path, "cam1", T0, 2.0)
    assert closed.audio_codec == "aac"
    kinds = {s["codec_type"]: s["codec_name"] for s in ffprobe(closed.path)}
    assert kinds == {"video": "h264", "audio": "aac"}
    assert mp4_accepts("aac")
    assert not mp4_accepts("pcm_alaw")
    assert not mp4_accepts("pcm_mulaw")


def test_a_taken_name_moves_on_by_a_second(tmp_path: Path) -> None:
    first = tmp_path / segment_relpath("cam1", T0)
    first.parent.mkdir(parents=True)
    first.write_bytes(b"x")
    assert free_relpath(tmp_path, "cam1", T0) == segment_relpath("cam1", T0 + 1)
    assert free_relpath(tmp_path, "cam2", T0) == segment_relpath("cam2", T0)


def test_a_file_cut_short_while_writing_still_plays(footage: Footage, tmp_path: Path) -> None:
    """What a power cut leaves: the fragments written so far, no trailer."""
    with av.open(str(footage.main_h264)) as src:
        segment = SegmentFile(tmp_path, "cam1", T0, src.streams.video[0], None)
        fill(segment, src, 6.0)
        crashed = tmp_path / "crashed.mp4"
        shutil.copyfile(segment.path, crashed)  # copied before close: no last fragment
        segment.close(end=T0 + 6)
    probe = probe_segment(crashed)
    assert probe.playable, probe.problem
    # Whole fragments (FRAGMENT_US, not a GOP); only the one still open is lost.
    assert 6.0 - FRAGMENT_US / 1e6 <= probe.duration < 6.0
    assert decoded_frames(crashed) == round(probe.duration * 25)
    full = probe_segment(segment.path)
    assert full.duration == 6.0
    assert full.frames == 150


def test_probe_names_what_is_wrong(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 5000)
    assert not probe_segment(junk).playable
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert probe_segment(empty).problem is not None


def test_video_stops_at_the_reserve_kept_for_the_index(footage: Footage, tmp_path: Path) -> None:
    disk = ShrinkingDisk(free=10**9)
    guard = SpaceGuard(tmp_path, reserved_bytes=64 << 20, disk_usage=disk)
    with av.open(str(footage.main_h264)) as src:
        segment = SegmentFile(tmp_path, "cam1", T0, src.streams.video[0], None, guard)
        fill(segment, src, 4.0)  # finished fragments reach the disk, the open one not yet
        on_disk = decoded_frames(segment.path)
        assert 100 - FRAGMENT_US / 40_000 <= on_disk < 100  # 25 fps, 40 ms a frame
        disk.free = 32 << 20  # now inside the reserve: the next fragment is refused
        with pytest.raises(OSError) as refused:
            fill(segment, src, 8.0)
        assert refused.value.errno == errno.ENOSPC and "kept for the index" in str(refused.value)
        closed = segment.abandon(end=T0 + 8)
        with pytest.raises(OSError):  # and no new file starts inside the reserve
            SegmentFile(tmp_path, "cam1", T0 + 10, src.streams.video[0], None, guard)
    assert decoded_frames(closed.path) == on_disk  # the fragments on the disk still play
    assert sorted(p.name for p in (tmp_path / "cam1").rglob("*.mp4")) == [closed.path.name]


def test_a_file_whose_first_fragment_was_refused_is_never_sealed(
    footage: Footage, tmp_path: Path
) -> None:
    """A full disk refuses the first fragment: the file holds a header alone, no frame."""
    closed = header_only_segment(footage, tmp_path, "cam1", T0)
    assert closed.damaged and closed.path.is_file() and probe_segment(closed.path).frames == 0
    with pytest.raises(NoFrameError, match="does not open|no video packets"):
        closed.seal()
