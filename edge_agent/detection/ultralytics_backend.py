"""Optional detector on ultralytics (extra `[ultralytics]`): operators' .pt models, offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.detection.detector import (
    ClassMap,
    Detection,
    Image,
    map_detections,
    mapped_labels,
    names_from,
)
from edge_agent.detection.zones import Box
from edge_agent.errors import ModelError


def offline_environment() -> None:
    """Keep ultralytics from downloading, installing or writing outside a known folder."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    if "YOLO_CONFIG_DIR" not in os.environ:
        folder = Path(tempfile.gettempdir()) / f"edge-agent-yolo-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)


class UltralyticsDetector:
    """A YOLO model (.pt, .onnx, ...) run through ultralytics on the CPU."""

    def __init__(
        self,
        path: Path,
        class_map: ClassMap,
        confidence: float = 0.35,
        iou: float = 0.45,
        threads: int = 1,
    ) -> None:
        offline_environment()
        try:
            import torch
            from ultralytics import YOLO  # type: ignore[attr-defined, unused-ignore]
        except ImportError as e:
            raise ModelError(
                f"model {path}: the ultralytics backend is not installed "
                f"(pip install 'fsv[ultralytics]'): {e}"
            ) from e
        if threads > 0:
            torch.set_num_threads(threads)
        # Always an absolute path: a bare name makes ultralytics fetch weights from the net.
        self.path = path.resolve()
        self.class_map = class_map
        self.confidence = confidence
        self.iou = iou
        try:
            self._model: Any = YOLO(str(self.path), task="detect")
            from_file, listed = names_from(self._model.names), names_from(class_map.names)
            self.names = (listed or from_file) if class_map.names_first else (from_file or listed)
        except Exception as e:  # noqa: BLE001 - torch/ultralytics raise anything on a bad file
            raise ModelError(f"model {self.path}: ultralytics cannot load it: {_short(e)}") from e
        if not self.names:
            raise ModelError(f"model {self.path}: has no class names; list them in its class map")

    def labels(self) -> set[str]:
        """Every label this model can produce through its class map."""
        return mapped_labels(self.names, self.class_map)

    def detect(self, frame: Image) -> list[Detection]:
        """Objects in a BGR frame, best first."""
        try:
            results = self._model.predict(
                frame, conf=self.confidence, iou=self.iou, device="cpu", verbose=False
            )
        except Exception as e:  # noqa: BLE001 - a failed inference must name the model
            raise ModelError(f"model {self.path}: inference failed: {_short(e)}") from e
        rows: list[tuple[int, float, Box]] = []
        for result in results:
            boxes = result.boxes
            if boxes is None:
                continue
            for xyxy, cls, score in zip(
                boxes.xyxyn.tolist(), boxes.cls.tolist(), boxes.conf.tolist(), strict=True
            ):
                x1, y1, x2, y2 = (min(1.0, max(0.0, float(v))) for v in xyxy)
                rows.append((int(cls), float(score), (x1, y1, x2, y2)))
        return map_detections(self.names, self.class_map, rows, self.iou)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
