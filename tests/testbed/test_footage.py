"""The cached footage: camera-shaped clips whose burned-in counter reads back frame by frame."""

import subprocess

import pytest

from testbed.footage import FPS, GOP_FRAMES, SHORT_SECONDS, Footage
from testbed.frames import probe_streams, read_frames

pytestmark = pytest.mark.slow


def test_clips_are_shaped_like_camera_streams(footage: Footage) -> None:
    shapes = {
        name: [(s["codec_name"], s.get("width"), s.get("sample_rate")) for s in probe_streams(path)]
        for name, path in footage.as_dict().items()
    }
    assert shapes == {
        "main_h264": [("h264", 1920, None)],
        "sub_h264": [("h264", 640, None)],
        "main_h265": [("hevc", 1920, None)],
        "main_h264_aac": [("h264", 1920, None), ("aac", None, "48000")],
        "main_h264_pcma": [("h264", 1920, None), ("pcm_alaw", None, "8000")],
        "short_h264": [("h264", 640, None)],
        "main_h264_ac3": [("h264", 1920, None), ("ac3", None, "48000")],
        "main_h264_eac3": [("h264", 1920, None), ("eac3", None, "48000")],
        "main_h264_mp3": [("h264", 1920, None), ("mp3", None, "44100")],
        "main_h264_opus": [("h264", 1920, None), ("opus", None, "48000")],
        "main_h264_pcmu": [("h264", 1920, None), ("pcm_mulaw", None, "8000")],
    }
    for path in (footage.main_h264, footage.sub_h264, footage.main_h265):
        video = probe_streams(path)[0]
        assert (video["r_frame_rate"], video["has_b_frames"]) == (f"{FPS}/1", 0)


def test_keyframe_every_two_seconds(footage: Footage) -> None:
    flags = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=flags",
         "-of", "csv=p=0", str(footage.short_h264)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    keyframes = [i for i, flag in enumerate(flags) if flag.startswith("K")]
    assert keyframes == [0, GOP_FRAMES, 2 * GOP_FRAMES]


def test_frame_counter_reads_back(footage: Footage) -> None:
    frames = read_frames(footage.short_h264, seconds=SHORT_SECONDS)
    assert [f.counter for f in frames] == list(range(SHORT_SECONDS * FPS))
    assert [round(f.pts * FPS) for f in frames] == list(range(SHORT_SECONDS * FPS))
    main = read_frames(footage.main_h264, seconds=0.5)
    assert [f.counter for f in main] == list(range(len(main)))
