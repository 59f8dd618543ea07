"""The NanoDet backend: the built default model finds people, GFL decoding, class-agnostic
suppression per label, clear errors for files that are no NanoDet model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.detection.detector import (
    PASSTHROUGH,
    ClassMap,
    Detector,
    default_models_dir,
    load_detector,
    nanodet_model_path,
)
from edge_agent.detection.model_check import check, differences, fingerprint
from edge_agent.detection.nanodet_backend import MEAN, decode, prepare
from edge_agent.detection.onnx_backend import open_session
from edge_agent.errors import ModelError

SPEC = default_models_dir() / "nanodet-m.build.json"


def peaked(bins: int, at: int) -> NDArray[np.float32]:
    """Distance logits of one side whose softmax is (almost) all on bin `at`."""
    logits = np.full(bins, -30.0, np.float32)
    logits[at] = 30.0
    return logits


def head_outputs(
    size: int, classes: int, cells: dict[tuple[int, int], list[float]], bins: int = 11
) -> list[NDArray[np.float32]]:
    """Outputs of a NanoDet head (scores, boxes per stride) with `cells[(stride, cell)]`
    scoring those classes and every box 2 strides from its cell centre on each side."""
    outputs = []
    for stride in (8, 16, 32):
        n = (size // stride) ** 2
        scores = np.zeros((1, n, classes), np.float32)
        boxes = np.tile(np.concatenate([peaked(bins, 2)] * 4), (1, n, 1))
        for (s, cell), values in cells.items():
            if s == stride:
                scores[0, cell] = values
        outputs += [scores, boxes.astype(np.float32)]
    return outputs


def make_head_onnx(path: Path, size: int, outputs: list[NDArray[np.float32]]) -> Path:
    """A model whose outputs are constants shaped like a NanoDet head at `size` x `size`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, infos = [], []
    for i, value in enumerate(outputs):
        name = f"out{i}"
        tensor = numpy_helper.from_array(value)
        nodes.append(helper.make_node("Constant", [], [name], value=tensor))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, [1, 3, size, size])],
        infos,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_default_model_finds_the_people_of_vtest(
    nanodet_detector: Detector, vtest_frame: NDArray[np.uint8]
) -> None:
    found = nanodet_detector.detect(vtest_frame)
    people = [d for d in found if d.label == "person"]
    assert len(people) >= 5
    height, width = vtest_frame.shape[:2]
    for d in people:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert (y2 - y1) * height > (x2 - x1) * width  # walking people: taller than wide
    assert {"person", "vehicle", "phone_use"} == nanodet_detector.labels()


def test_empty_scene_has_nothing(nanodet_detector: Detector) -> None:
    assert nanodet_detector.detect(np.full((360, 640, 3), 90, np.uint8)) == []


def test_built_model_computes_what_the_spec_records() -> None:
    check(SPEC, nanodet_model_path())


def test_fingerprint_tells_another_model_apart(tmp_path: Path) -> None:
    spec = json.loads(SPEC.read_text())["check"]
    other = make_head_onnx(tmp_path / "other.onnx", 416, head_outputs(416, 80, {}, bins=11))
    problems = differences(fingerprint(other, spec["seed"]), spec["outputs"], spec["rtol"])
    assert problems and all("instead of" in p for p in problems)


def test_decode_places_the_box_around_its_cell() -> None:
    scores = np.zeros((52 * 52, 3), np.float32)
    scores[10 * 52 + 20, 1] = 0.9  # row 10, column 20 of the stride-8 grid
    dist = np.tile(np.concatenate([peaked(11, 3)] * 4), (52 * 52, 1))
    rows = decode([(8, 52, scores, dist)], 0.35, 0.45)
    assert len(rows) == 1
    cls, score, box = rows[0]
    assert cls == 1 and score == pytest.approx(0.9)
    cx, cy = (20 + 0.5) * 8, (10 + 0.5) * 8
    assert box == pytest.approx((cx - 24, cy - 24, cx + 24, cy + 24), abs=1e-3)
    assert decode([(8, 52, scores * 0.1, dist)], 0.35, 0.45) == []


def test_prepare_normalises_and_pads_with_the_mean() -> None:
    blob, scale, pad_x, pad_y = prepare(np.zeros((576, 768, 3), np.uint8), 416, 416)
    assert blob.shape == (1, 3, 416, 416) and scale == pytest.approx(416 / 768)
    assert pad_x == 0 and pad_y == (416 - 312) // 2
    assert np.allclose(blob[0, :, 0, 0], 0.0)  # padding: the mean, zero after normalising
    assert blob[0, 0, 208, 208] == pytest.approx(-MEAN[0] / 57.375)


def test_classes_mapped_to_one_label_count_one_object(tmp_path: Path) -> None:
    # Two model classes over the same cell: per-class NMS keeps both, the label keeps one.
    outputs = head_outputs(32, 3, {(8, 5): [0.8, 0.7, 0.0], (16, 0): [0.0, 0.0, 0.6]})
    model = make_head_onnx(tmp_path / "two.onnx", 32, outputs)
    class_map = ClassMap(
        names=["worker", "inspector", "cigarette"],
        classes={"worker": "person", "inspector": "person", "cigarette": "smoking"},
    )
    detector = load_detector("nanodet", model, class_map)
    found = detector.detect(np.zeros((32, 32, 3), np.uint8))
    assert [(d.label, d.model_class, round(d.score, 2)) for d in found] == [
        ("person", "worker", 0.8),
        ("smoking", "cigarette", 0.6),
    ]
    assert detector.labels() == {"person", "smoking"}


def test_missing_names_and_wrong_outputs_name_the_file(tmp_path: Path) -> None:
    model = make_head_onnx(tmp_path / "head.onnx", 32, head_outputs(32, 3, {}))
    with pytest.raises(ModelError, match=r"head\.onnx: a NanoDet model has no class names"):
        load_detector("nanodet", model, PASSTHROUGH)
    with pytest.raises(ModelError, match=r"head\.onnx: outputs .* do not fit a NanoDet head"):
        load_detector("nanodet", model, ClassMap(names=["a", "b"]))


def test_missing_default_model_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSV_MODEL_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match=r"not built yet; run scripts/fetch-models\.sh"):
        nanodet_model_path()


def test_input_fits_the_frame_instead_of_the_square(
    nanodet_detector: Detector, vtest_frame: NDArray[np.uint8]
) -> None:
    """A 16:9 frame runs at 416x256 (not 416x416) at the same scale and finds the same
    people; a small crop runs at its own size, not enlarged."""
    from edge_agent.detection.detector import box_iou
    from edge_agent.detection.nanodet_backend import NanoDetDetector, prepare_fitted

    assert isinstance(nanodet_detector, NanoDetDetector) and nanodet_detector.free_size
    frame = np.asarray(cv2.resize(vtest_frame, (640, 360)), np.uint8)
    blob, scale, _, _ = prepare_fitted(frame, 416, 416)
    assert blob.shape == (1, 3, 256, 416) and scale == pytest.approx(416 / 640)
    assert prepare_fitted(frame[:170, :200], 416, 416)[0].shape == (1, 3, 192, 224)
    square = load_detector("nanodet", nanodet_detector.path, nanodet_detector.class_map, threads=2)
    assert isinstance(square, NanoDetDetector)
    square.free_size = False  # letterboxed to 416x416 as the model declares
    square._session = open_session(square.path, 2)
    fitted = [d for d in nanodet_detector.detect(frame) if d.label == "person"]
    boxed = [d for d in square.detect(frame) if d.label == "person"]
    assert len(boxed) >= 4 and abs(len(fitted) - len(boxed)) <= 1
    assert all(max(box_iou(b.box, f.box) for f in fitted) > 0.8 for b in boxed)


def test_the_agent_caps_a_free_input_at_its_input_size(
    nanodet_detector: Detector, vtest_frame: NDArray[np.uint8]
) -> None:
    """The agent's default input size (320) runs a 640x360 frame at 320x192 and finds the
    people the model's own 416 finds."""
    from edge_agent.detection.detector import box_iou
    from edge_agent.detection.nanodet_backend import NanoDetDetector, prepare_fitted
    from edge_agent.detection.settings import DetectionConfig

    size = DetectionConfig().input_size
    small = load_detector(
        "nanodet", nanodet_detector.path, nanodet_detector.class_map, 0.35, 0.45, 2, size
    )
    assert isinstance(small, NanoDetDetector) and (small.width, small.height) == (320, 320)
    frame = np.asarray(cv2.resize(vtest_frame, (640, 360)), np.uint8)
    assert prepare_fitted(frame, small.width, small.height)[0].shape == (1, 3, 192, 320)
    full = [d for d in nanodet_detector.detect(frame) if d.label == "person"]
    found = [d for d in small.detect(frame) if d.label == "person"]
    assert len(found) >= 4 and abs(len(found) - len(full)) <= 1
    assert all(max(box_iou(d.box, f.box) for f in full) > 0.6 for d in found)
    odd = load_detector("nanodet", small.path, small.class_map, input_size=100)
    assert (odd.width, odd.height) == (96, 96)  # type: ignore[attr-defined]


def test_a_model_whose_outputs_ignore_the_input_keeps_its_size(tmp_path: Path) -> None:
    model = make_head_onnx(tmp_path / "fixed.onnx", 32, head_outputs(32, 3, {}))
    detector = load_detector("nanodet", model, ClassMap(names=["a", "b", "c"]))
    assert not detector.free_size  # type: ignore[attr-defined]
    assert detector.detect(np.zeros((48, 64, 3), np.uint8)) == []
