"""The default detector: YOLO-format ONNX models on onnxruntime (letterbox, decode, NMS)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

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

log = logging.getLogger(__name__)

PAD_VALUE = 114  # grey border, as the models were trained with
MAX_DETECTIONS = 300

Rows = list[tuple[int, float, tuple[float, float, float, float]]]


class SessionDetector:
    """What the ONNX detectors share: the file, its class map and thresholds, one onnxruntime
    session with its input, the labels, and boxes from input pixels back to the frame."""

    names: dict[int, str]

    def __init__(
        self,
        path: Path,
        class_map: ClassMap,
        confidence: float = 0.35,
        iou: float = 0.45,
        threads: int = 1,
    ) -> None:
        self.path = path
        self.class_map = class_map
        self.confidence = confidence
        self.iou = iou
        self._session = open_session(path, threads)
        self._input = self._session.get_inputs()[0]

    def labels(self) -> set[str]:
        """Every label this model can produce through its class map."""
        return mapped_labels(self.names, self.class_map)

    def _detections(
        self, rows: Rows, frame: Image, scale: float, pad_x: float, pad_y: float
    ) -> list[Detection]:
        """(class, score, box in input pixels) rows of a frame scaled by `scale` and padded
        by `pad_x`, `pad_y`: detections relative to the frame, labelled, best first."""
        height, width = frame.shape[:2]
        boxes: list[tuple[int, float, Box]] = []
        for cls, score, (x1, y1, x2, y2) in rows:
            box = (
                _clip((x1 - pad_x) / scale / width),
                _clip((y1 - pad_y) / scale / height),
                _clip((x2 - pad_x) / scale / width),
                _clip((y2 - pad_y) / scale / height),
            )
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append((cls, score, box))
        return map_detections(self.names, self.class_map, boxes, self.iou)


class OnnxDetector(SessionDetector):
    """A YOLOv8-style detector: input [1, 3, H, W], output [1, 4 + classes, boxes]."""

    def __init__(
        self,
        path: Path,
        class_map: ClassMap,
        confidence: float = 0.35,
        iou: float = 0.45,
        threads: int = 1,
    ) -> None:
        super().__init__(path, class_map, confidence, iou, threads)
        self._dtype = np.float16 if "float16" in self._input.type else np.float32
        self.height, self.width = self._input_size()
        meta = self._session.get_modelmeta().custom_metadata_map
        from_file, listed = names_from(meta.get("names")), names_from(class_map.names)
        self.names = (listed or from_file) if class_map.names_first else (from_file or listed)
        self._check_output(self._run(np.zeros((self.height, self.width, 3), np.uint8))[0])

    def _input_size(self) -> tuple[int, int]:
        shape = self._input.shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ModelError(f"model {self.path}: input shape {shape}, expected [1, 3, H, W]")
        height, width = shape[2], shape[3]
        # Dynamic sizes: 640x640 is what YOLO models are exported at by default.
        return (
            height if isinstance(height, int) else 640,
            width if isinstance(width, int) else 640,
        )

    def _check_output(self, output: NDArray[Any]) -> None:
        if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
            raise ModelError(
                f"model {self.path}: output shape {list(output.shape)}, "
                "expected [1, 4 + classes, boxes] (a YOLOv8-style detection head)"
            )
        classes = output.shape[1] - 4
        if not self.names:
            raise ModelError(
                f"model {self.path}: has no class names in its metadata; "
                "list them under `names:` in its class map"
            )
        if len(self.names) != classes:
            raise ModelError(
                f"model {self.path}: output has {classes} classes but "
                f"{len(self.names)} class names are known ({sorted(self.names.values())})"
            )

    def detect(self, frame: Image) -> list[Detection]:
        """Objects in a BGR frame, best first."""
        output, scale, pad_x, pad_y = self._run(frame)
        return self._detections(decode(output[0], self.confidence, self.iou), frame, scale,
                                pad_x, pad_y)  # fmt: skip

    def _run(self, frame: Image) -> tuple[NDArray[Any], float, float, float]:
        blob, scale, pad_x, pad_y = letterbox(frame, self.width, self.height)
        try:
            outputs = self._session.run(None, {self._input.name: blob.astype(self._dtype)})
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors share no useful base class
            raise ModelError(f"model {self.path}: inference failed: {short_error(e)}") from e
        return np.asarray(outputs[0], dtype=np.float32), scale, pad_x, pad_y


def open_session(path: Path, threads: int, model: bytes | None = None) -> Any:
    """An onnxruntime CPU session of the file (or of `model`, the file's model changed in
    memory); ModelError naming the file if it is not a readable model."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # keep onnxruntime's own warnings out of the agent log
    try:
        return ort.InferenceSession(
            model if model is not None else str(path),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as e:  # noqa: BLE001 - onnxruntime raises bare RuntimeError subclasses
        raise ModelError(f"model {path}: not a readable ONNX model: {short_error(e)}") from e


def letterbox(frame: Image, width: int, height: int) -> tuple[NDArray[np.float32], float, int, int]:
    """Resize keeping the aspect ratio, pad to width x height; NCHW RGB 0..1 and the transform."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(blob), scale, pad_x, pad_y


def decode(output: NDArray[np.float32], confidence: float, iou: float) -> Rows:
    """YOLOv8 head [4+nc, N] -> (class, score, (x1, y1, x2, y2)) in input pixels, after NMS."""
    preds = output.T  # N x (4 + nc)
    scores_all = preds[:, 4:]
    classes = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(len(preds)), classes]
    keep = scores >= confidence
    if not keep.any():
        return []
    preds, classes, scores = preds[keep], classes[keep], scores[keep]
    cx, cy, w, h = preds[:, 0], preds[:, 1], preds[:, 2], preds[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    chosen = nms(boxes, scores, classes, iou)[:MAX_DETECTIONS]
    return [
        (int(classes[i]), float(scores[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[misc]
        for i in chosen
    ]


def nms(
    boxes: NDArray[np.float32], scores: NDArray[np.float32], classes: NDArray[Any], iou: float
) -> list[int]:
    """Indices kept by per-class non-maximum suppression, best first."""
    # Shift each class to its own region so one pass never suppresses across classes.
    offset = classes.astype(np.float32)[:, None] * (float(boxes.max()) + 1.0)
    shifted = boxes + offset
    x1, y1, x2, y2 = shifted[:, 0], shifted[:, 1], shifted[:, 2], shifted[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = scores.argsort()[::-1]
    kept: list[int] = []
    while order.size:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return kept


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
