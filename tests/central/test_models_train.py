"""Training offline: a tiny model from scratch on a small dataset, ONNX the edge can load."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from central.cli import main
from edge_agent.detection.detector import ClassMap, load_detector


def _dataset(root: Path, per_split: dict[str, int]) -> None:
    """Bright squares (class 0, `rodent`) on textured dark frames, YOLO labels."""
    rng = np.random.default_rng(7)
    for split, count in per_split.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
            size = int(rng.integers(20, 40))
            x, y = (int(v) for v in rng.integers(0, 96 - size, 2))
            cv2.rectangle(image, (x, y), (x + size, y + size), (230, 230, 230), -1)
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), image)
            cx, cy, w = (x + size / 2) / 96, (y + size / 2) / 96, size / 96
            (root / "labels" / split / f"{i}.txt").write_text(f"0 {cx} {cy} {w} {w}\n")
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: rodent\n"
    )


@pytest.mark.slow
def test_train_from_scratch_offline_writes_onnx_and_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = tmp_path / "ds"
    _dataset(dataset, {"train": 16, "val": 4})
    # Training sets ultralytics' environment for the process; put it back afterwards.
    for name in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR"):
        monkeypatch.setenv(name, "")
    # No network: a download attempt would fail loudly instead of silently succeeding.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    out = tmp_path / "model"
    args = ["train", "--dataset", str(dataset), "--epochs", "2", "--imgsz", "96",
            "--batch", "8", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["classes"] == ["rodent"]
    assert card["class_map"] == {"rodent": "rodent"} and card["backend"] == "onnx"
    assert card["training"]["base"] == "yolov8n.yaml" and card["training"]["epochs"] == 2
    val = card["validation"]
    assert set(val["per_class"]) == {"rodent"}
    for key in ("precision", "recall", "map50"):
        assert 0.0 <= val[key] <= 1.0 and 0.0 <= val["per_class"]["rodent"][key] <= 1.0
    # The edge loads the export as it loads any YOLOv8 ONNX model.
    detector = load_detector(
        "onnx", out / "model.onnx", ClassMap(names=["rodent"], passthrough=True)
    )
    assert detector.labels() == {"rodent"}
    detector.detect(np.zeros((96, 96, 3), dtype=np.uint8))
    # A used folder or a base model that is not on disk is refused with a clear message.
    assert main([*args[:-1], str(out)]) == 1
    assert main([*args[:-1], str(tmp_path / "x"), "--base", str(tmp_path / "none.pt")]) == 1
