"""Evidence files: an annotated JPEG snapshot and a packet-copied clip from real segments."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.detection.evidence import annotate, cut_clip, write_snapshot
from edge_agent.detection.tracker import TrackedObject
from edge_agent.errors import ClipError
from edge_agent.recording.index import SegmentIndex
from tests.edge_agent.detection.conftest import RecordedClip, index_segments

T0 = 1_772_000_000.0


def test_snapshot_is_a_real_jpeg_with_the_boxes_drawn(
    tmp_path: Path, vtest_frame: NDArray[np.uint8]
) -> None:
    person = TrackedObject(7, "person", 0.87, (0.5, 0.3, 0.6, 0.6), T0, T0)
    image = annotate(vtest_frame, [person], [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9)], "test", T0)
    written = write_snapshot(tmp_path / "snap.jpg", image)
    data = written.path.read_bytes()
    assert data[:2] == b"\xff\xd8" and written.bytes == len(data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == vtest_frame.shape
    height, width = decoded.shape[:2]
    x, y = round(0.5 * (width - 1)), round(0.45 * (height - 1))
    b, g, r = (int(v) for v in decoded[y, x])
    assert r > 150 and g < 100 and b < 100  # the red box edge is where the person is


def test_clip_covers_the_range_from_the_keyframe_before_and_plays(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    segments = index_segments(segment_files, tmp_path / "rec", index, "cam-1", T0)
    out = tmp_path / "clip.mp4"
    # 3.0..7.0 s: the clip must start at the keyframe of 2.0 s and end just before 7.0 s.
    clip = cut_clip(tmp_path / "rec", segments, T0 + 3.0, T0 + 7.0, out)
    assert clip.start == pytest.approx(T0 + 2.0, abs=0.05)
    assert clip.end is not None and T0 + 6.8 <= clip.end < T0 + 7.0
    assert clip.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f for f in container.decode(stream)]
        assert stream.codec_context.name == "h264"
    assert len(frames) == pytest.approx(5 * 25, abs=2)  # 2.0 .. 7.0 s at 25 fps, all decodable
    assert frames[0].key_frame
    times = [float(f.time) for f in frames]
    assert times == sorted(times) and times[-1] - times[0] == pytest.approx(4.96, abs=0.05)
    index.close()


def test_clip_of_a_range_without_footage_is_an_error(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    segments = index_segments(segment_files, tmp_path / "rec", index, "cam-1", T0)
    with pytest.raises(ClipError, match="no recorded segment"):
        cut_clip(tmp_path / "rec", segments, T0 + 100, T0 + 110, tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()
    index.close()


_CUT_IN_CHILD = """
import pickle, sys
from pathlib import Path
from edge_agent.detection.evidence import cut_clip
storage, segments, start, end, out = pickle.loads(Path(sys.argv[1]).read_bytes())
clip = cut_clip(storage, segments, start, end, out)
print(clip.start, clip.end)
"""


def test_clip_starting_after_a_segments_last_packet_never_reads_a_closed_segment(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    """The GOP held from segment A is written once segment B (A closed) shows the start passed.

    Run in a child whose freed memory is overwritten (glibc MALLOC_PERTURB_): reading anything
    of A's closed container then crashes at once instead of now and then in a long-running
    agent.
    """
    index = SegmentIndex(tmp_path / "index.db")
    segments = index_segments(segment_files, tmp_path / "rec", index, "cam-1", T0)
    index.close()
    out = tmp_path / "clip.mp4"
    # Segment 1 holds 2.00..3.96 s; 3.98 s lies after its last packet, before 4.00 s.
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((tmp_path / "rec", segments, T0 + 3.98, T0 + 6.0, out)))
    env = {**os.environ, "MALLOC_PERTURB_": "165"}
    done = subprocess.run(
        [sys.executable, "-c", _CUT_IN_CHILD, str(job)],
        env=env, capture_output=True, text=True, timeout=60, cwd=Path.cwd(),
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    start, end = (float(v) for v in done.stdout.split())
    assert start == pytest.approx(T0 + 2.0, abs=0.05) and T0 + 5.8 <= end < T0 + 6.0
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert frames[0].key_frame and len(frames) == pytest.approx(4 * 25, abs=2)


_EXPORT_IN_CHILD = """
import sys
from pathlib import Path
from fsv_common.clip import ClipWriter, file_packets, from_keyframe
path, start, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
held = list(from_keyframe(file_packets(path, 0.0), start))  # start past the file's end
writer = ClipWriter(out, held[0][0])
for _, packet in held:
    writer.write(packet)
writer.close()
print(len(held))
"""


def test_a_files_last_gop_stays_usable_after_the_file_is_read_to_its_end(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    """Replay and export start from the last GOP of a file that ends before the start: that
    GOP (and its stream, the new clip's template) is yielded after the file was read to the
    end, so the file must stay open while its stream is held (child with freed memory
    overwritten, as above)."""
    out = tmp_path / "tail.mp4"
    done = subprocess.run(
        [sys.executable, "-c", _EXPORT_IN_CHILD, str(segment_files.files[1]), "5.0", str(out)],
        env={**os.environ, "MALLOC_PERTURB_": "165"},
        capture_output=True, text=True, timeout=60, cwd=Path.cwd(),
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert int(done.stdout) == 50  # the file's whole 2 s GOP at 25 fps
    with av.open(str(out)) as container:
        assert len(list(container.decode(video=0))) == 50
