"""Train a detector on an exported dataset with ultralytics, offline, and write its card.

Nothing is downloaded: ultralytics runs with YOLO_OFFLINE, no auto-install, plots off (no
font download) and AMP off (its check downloads a model). Without a base model file on disk
training starts from the small YAML architecture shipped inside ultralytics (`yolov8n.yaml`).
The result is `model.onnx` (YOLOv8 head, class names in its metadata, as the edge loads it)
and `card.json` beside it: dataset, base, settings, versions, time, and the metrics on the
validation split (precision, recall, mAP50 per class).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from central.errors import InvalidInputError

SCRATCH_ARCHITECTURE = "yolov8n.yaml"  # shipped in the ultralytics package, no download


@dataclass(frozen=True)
class TrainSettings:
    """What a training run is given; all of it goes into the card."""

    dataset: Path
    out: Path
    base: str = SCRATCH_ARCHITECTURE
    epochs: int = 10
    imgsz: int = 320
    batch: int = 8
    seed: int = 0
    device: str | None = None  # None: the GPU when there is one, else the CPU


def offline_environment(config_dir: Path) -> None:
    """Keep ultralytics from downloading, installing or writing outside `config_dir`."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_VERBOSE", "0")
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)


def check_inputs(settings: TrainSettings) -> tuple[Path, list[str]]:
    """The dataset's data.yaml and class names; InvalidInputError saying what is wrong."""
    data = settings.dataset / "data.yaml"
    try:
        meta = yaml.safe_load(data.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InvalidInputError(f"{data}: not a readable dataset ({e})") from e
    names = meta.get("names") if isinstance(meta, dict) else None
    if not isinstance(names, dict | list) or not names:
        raise InvalidInputError(f"{data}: no class names")
    classes = [str(v) for v in (names.values() if isinstance(names, dict) else names)]
    for split in ("train", "val"):
        if not any((settings.dataset / "images" / split).glob("*.jpg")):
            raise InvalidInputError(f"{settings.dataset}: images/{split} has no image")
    if not settings.base.endswith(".yaml") and not Path(settings.base).is_file():
        raise InvalidInputError(
            f"--base {settings.base}: no such file (give a model on disk, or leave it out to "
            f"start from {SCRATCH_ARCHITECTURE})"
        )
    if settings.epochs < 1:
        raise InvalidInputError("--epochs must be at least 1")
    if settings.out.exists() and any(settings.out.iterdir()):
        raise InvalidInputError(f"{settings.out} exists and is not empty; choose a new folder")
    return data, classes


def train(settings: TrainSettings) -> dict[str, Any]:
    """Train, validate, export ONNX; returns the card (also written as out/card.json)."""
    data, classes = check_inputs(settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    offline_environment(settings.out / ".ultralytics")
    import torch
    from ultralytics import __version__ as ultralytics_version
    from ultralytics.models import YOLO

    device = settings.device or ("0" if torch.cuda.is_available() else "cpu")
    started = time.monotonic()
    model = YOLO(settings.base)
    model.train(
        data=str(data), epochs=settings.epochs, imgsz=settings.imgsz, batch=settings.batch,
        device=device, workers=0, seed=settings.seed, deterministic=True, plots=False,
        amp=False, project=str(settings.out), name="run", exist_ok=True, verbose=False,
    )  # fmt: skip
    train_seconds = time.monotonic() - started
    metrics = model.val(
        data=str(data), split="val", imgsz=settings.imgsz, batch=settings.batch,
        device=device, plots=False, project=str(settings.out), name="val", exist_ok=True,
        verbose=False,
    )  # fmt: skip
    exported = Path(
        model.export(format="onnx", imgsz=settings.imgsz, simplify=False, dynamic=False)
    )
    onnx = settings.out / "model.onnx"
    shutil.copyfile(exported, onnx)
    card = {
        "created_at": datetime.now(UTC).isoformat(),
        "file": "model.onnx",
        "sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
        "classes": classes,
        # What `model add --card` registers: each class is the label of the same name, and
        # the exported head is the YOLOv8 layout the edge's `onnx` backend decodes.
        "class_map": {name: name for name in classes},
        "backend": "onnx",
        "dataset": _dataset_summary(settings.dataset),
        "training": {
            "base": settings.base,
            "epochs": settings.epochs,
            "imgsz": settings.imgsz,
            "batch": settings.batch,
            "seed": settings.seed,
            "device": "cuda" if device != "cpu" else "cpu",
            "seconds": round(train_seconds, 1),
            "ultralytics": ultralytics_version,
            "torch": torch.__version__,
        },
        "validation": val_metrics(metrics, classes),
    }
    (settings.out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def val_metrics(metrics: Any, classes: list[str]) -> dict[str, Any]:
    """Precision, recall, mAP50 (and mAP50-95) overall and per class from ultralytics' result."""
    box = metrics.box
    per_class: dict[str, dict[str, float]] = {
        name: {"precision": 0.0, "recall": 0.0, "map50": 0.0} for name in classes
    }
    for i, index in enumerate(list(getattr(box, "ap_class_index", []))):
        name = classes[int(index)]
        per_class[name] = {
            "precision": round(float(box.p[i]), 4),
            "recall": round(float(box.r[i]), 4),
            "map50": round(float(box.ap50[i]), 4),
        }
    return {
        "precision": round(float(box.mp), 4),
        "recall": round(float(box.mr), 4),
        "map50": round(float(box.map50), 4),
        "map50_95": round(float(box.map), 4),
        "per_class": per_class,
    }


def _dataset_summary(dataset: Path) -> dict[str, Any]:
    manifest = dataset / "manifest.json"
    summary: dict[str, Any] = {"path": str(dataset.resolve())}
    if manifest.is_file():
        blob = manifest.read_bytes()
        summary["manifest_sha256"] = hashlib.sha256(blob).hexdigest()
        try:
            summary["counts"] = json.loads(blob).get("counts")
        except ValueError:
            summary["counts"] = None
    return summary
