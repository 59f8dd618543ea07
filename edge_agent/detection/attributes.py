"""Two-stage attributes: a second model looks inside the boxes the detector found.

Each `models/attributes/<name>.yaml` declares, as data, which label's boxes it searches,
the part of the box, an optional finder for a smaller part (a face in a person), and a
classifier whose classes map to labels (mask -> null, no_mask -> no_mask). A hat or
uniform classifier trained later plugs in with its own YAML file and model files.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.detection.detector import ClassMap, Detection, Detector, Image
from edge_agent.detection.onnx_backend import open_session, short_error
from edge_agent.detection.settings import LABEL
from edge_agent.detection.zones import Box
from edge_agent.errors import ModelError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FinderSpec(_Spec):
    """An OpenCV Caffe SSD (res10 face detector style) run on the searched region."""

    prototxt: str
    weights: str
    size: tuple[int, int] = (300, 300)
    mean: tuple[float, float, float] = (104.0, 177.0, 123.0)
    min_score: float = Field(0.5, gt=0.0, lt=1.0)
    min_size_px: int = Field(20, ge=1)


class ClassifierSpec(_Spec):
    """An ONNX image classifier: one probability per class."""

    model: str
    size: tuple[int, int]
    layout: str = Field("nhwc", pattern="^(nhwc|nchw)$")
    rgb: bool = True
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    classes: list[str] = Field(min_length=2)


class AttributeSpec(_Spec):
    """One two-stage attribute (models/attributes/<name>.yaml)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    description: str = ""
    applies_to: str = Field(pattern=LABEL)
    region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    finder: FinderSpec | None = None
    classifier: ClassifierSpec
    labels: dict[str, str | None]
    min_score: float = Field(0.5, gt=0.0, lt=1.0)
    caveats: dict[str, str] = Field(default_factory=dict)

    def produces(self) -> set[str]:
        """The labels this attribute can report."""
        return {label for label in self.labels.values() if label is not None}


def load_attribute(folder: Path, name: str) -> AttributeSpec:
    """`folder/attributes/<name>.yaml`; ModelError naming the file if missing or invalid."""
    path = folder / "attributes" / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return AttributeSpec.model_validate(data or {})
    except (OSError, yaml.YAMLError) as e:
        raise ModelError(f"attribute {path}: cannot read: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ModelError(f"attribute {path}: {where}: {first['msg']}") from e


class AttributeStage:
    """Runs one attribute's finder and classifier on the boxes of its label."""

    def __init__(self, spec: AttributeSpec, cache: Path, threads: int = 1) -> None:
        self.spec = spec
        self._lock = threading.Lock()  # an OpenCV net is not safe to share between threads
        self._finder: Any = None
        if spec.finder is not None:
            files = [cache / spec.finder.prototxt, cache / spec.finder.weights]
            for f in files:
                if not f.is_file():
                    raise ModelError(f"attribute {spec.name}: {f} is missing (fetch-models.sh)")
            try:
                self._finder = cv2.dnn.readNetFromCaffe(str(files[0]), str(files[1]))
            except cv2.error as e:
                raise ModelError(f"attribute {spec.name}: {files[1]}: {short_error(e)}") from e
        model = cache / spec.classifier.model
        if not model.is_file():
            raise ModelError(f"attribute {spec.name}: {model} is missing (fetch-models.sh)")
        self._classifier = open_session(model, threads)
        self._input = self._classifier.get_inputs()[0].name

    def detect(self, frame: Image, found: list[Detection]) -> list[Detection]:
        """Attribute detections inside the boxes of `applies_to` among `found`."""
        height, width = frame.shape[:2]
        parts: list[Box] = []
        for d in found:
            if d.label == self.spec.applies_to:
                parts += self._parts(frame, _sub_box(d.box, self.spec.region), width, height)
        if not parts:
            return []
        probs = self._classify(frame, parts)
        result = []
        names = self.spec.classifier.classes
        for box, p in zip(parts, probs, strict=True):
            best = int(np.argmax(p))
            label = self.spec.labels.get(names[best]) if best < len(names) else None
            if label is not None and float(p[best]) >= self.spec.min_score:
                result.append(Detection(label, float(p[best]), box, names[best]))
        return result

    def _parts(self, frame: Image, region: Box, width: int, height: int) -> list[Box]:
        x1, y1 = int(region[0] * width), int(region[1] * height)
        x2, y2 = int(region[2] * width), int(region[3] * height)
        finder = self.spec.finder
        if finder is None or self._finder is None:
            return [region] if x2 > x1 and y2 > y1 else []
        crop = frame[y1:y2, x1:x2]
        if crop.shape[0] < finder.min_size_px or crop.shape[1] < finder.min_size_px:
            return []
        blob = cv2.dnn.blobFromImage(crop, 1.0, finder.size, finder.mean)
        with self._lock:
            self._finder.setInput(blob)
            out = np.asarray(self._finder.forward())
        faces = []
        ch, cw = crop.shape[:2]
        for row in out.reshape(-1, out.shape[-1]):
            if row[2] < finder.min_score:
                continue
            fx1, fy1, fx2, fy2 = (float(np.clip(v, 0.0, 1.0)) for v in row[3:7])
            if (fy2 - fy1) * ch < finder.min_size_px or fx2 <= fx1:
                continue
            faces.append(
                ((x1 + fx1 * cw) / width, (y1 + fy1 * ch) / height,
                 (x1 + fx2 * cw) / width, (y1 + fy2 * ch) / height)
            )  # fmt: skip
        return faces

    def _classify(self, frame: Image, boxes: list[Box]) -> NDArray[np.float32]:
        spec = self.spec.classifier
        height, width = frame.shape[:2]
        batch = []
        for x1, y1, x2, y2 in boxes:
            crop = frame[int(y1 * height) : int(y2 * height), int(x1 * width) : int(x2 * width)]
            if crop.size == 0:
                crop = np.zeros((*spec.size, 3), np.uint8)
            if spec.rgb:
                crop = crop[:, :, ::-1]
            image = cv2.resize(crop, spec.size).astype(np.float32) * spec.scale + spec.offset
            batch.append(image if spec.layout == "nhwc" else image.transpose(2, 0, 1))
        try:
            (out,) = self._classifier.run(None, {self._input: np.stack(batch)})[:1]
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors share no useful base class
            raise ModelError(
                f"attribute {self.spec.name}: inference failed: {short_error(e)}"
            ) from e
        return np.asarray(out, dtype=np.float32)


class TwoStageDetector:
    """A detector followed by attribute stages on what it found (a Detector itself)."""

    def __init__(
        self, base: Detector, stages: list[AttributeStage], unavailable: dict[str, str]
    ) -> None:
        self.base = base
        self.stages = stages
        self.path = base.path
        # Labels of stages that could not be loaded, with why (for the capability report).
        self.unavailable = unavailable
        caveats = dict(base.class_map.caveats)
        for stage in stages:
            caveats.update(stage.spec.caveats)
        self.class_map: ClassMap = base.class_map.model_copy(update={"caveats": caveats})

    def labels(self) -> set[str]:
        """The detector's labels and those of every loaded stage."""
        return self.base.labels().union(*(s.spec.produces() for s in self.stages))

    def detect(self, frame: Image) -> list[Detection]:
        """The detector's objects, then what each stage found inside them."""
        found = self.base.detect(frame)
        extra = [d for stage in self.stages for d in stage.detect(frame, found)]
        return sorted(found + extra, key=lambda d: d.score, reverse=True)


def _sub_box(box: Box, region: tuple[float, float, float, float]) -> Box:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return (x1 + region[0] * w, y1 + region[1] * h, x1 + region[2] * w, y1 + region[3] * h)
