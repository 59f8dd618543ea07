"""Which model each camera runs, loaded once for all cameras that use it, and what its rules
can see with it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.config import CameraConfig, EdgeConfig
from edge_agent.detection.attributes import AttributeStage, TwoStageDetector, load_attribute
from edge_agent.detection.capability import RuleCapability, assess_rules
from edge_agent.detection.detector import (
    PASSTHROUGH,
    Detector,
    builtin_model,
    load_class_map,
    load_detector,
    model_cache_dir,
)
from edge_agent.detection.presets import models_dir
from edge_agent.detection.settings import RuleSpec
from edge_agent.errors import ModelError
from fsv_contract.models import model_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    """Which model a camera uses: backend, file, class map and two-stage attributes."""

    backend: str
    model: Path | None
    class_map: Path | None
    attributes: tuple[str, ...] = ()


class ModelCache:
    """Loads each model once for all cameras that use it; errors name the file."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._models: dict[ModelChoice, Detector] = {}
        self._stages: dict[str, AttributeStage | str] = {}  # name -> stage or why not

    def get(self, choice: ModelChoice) -> Detector:
        """The loaded detector; ModelError if the model or class map is unusable.

        Attribute stages that cannot be loaded are left out (the capability says why)."""
        with self._lock:
            if choice not in self._models:
                if choice.attributes:
                    base = self.get(replace(choice, attributes=()))
                    self._models[choice] = self._two_stage(base, choice.attributes)
                else:
                    self._models[choice] = self._load(choice)
            return self._models[choice]

    def _two_stage(self, base: Detector, names: tuple[str, ...]) -> TwoStageDetector:
        stages: list[AttributeStage] = []
        unavailable: dict[str, str] = {}
        folder = models_dir(self.config)
        for name in names:
            if name not in self._stages:
                try:
                    spec = load_attribute(folder, name)
                    cache = model_cache_dir(self.config.detection.model_cache)
                    self._stages[name] = AttributeStage(spec, cache, self.config.detection.threads)
                except ModelError as e:
                    log.error("attribute %s not loaded: %s", name, e)
                    self._stages[name] = str(e)
            stage = self._stages[name]
            if isinstance(stage, AttributeStage):
                stages.append(stage)
            else:
                with suppress(ModelError):
                    unavailable.update(
                        dict.fromkeys(load_attribute(folder, name).produces(), stage)
                    )
        return TwoStageDetector(base, stages, unavailable)

    def _load(self, choice: ModelChoice) -> Detector:
        settings = self.config.detection
        folder = models_dir(self.config)
        map_path: Path | None
        if choice.model is None:
            model, builtin_map = builtin_model(choice.backend, settings.model_cache)
            map_path = choice.class_map or folder / builtin_map
        else:
            model, map_path = choice.model, choice.class_map
        if map_path is not None and not map_path.is_absolute():
            map_path = folder / map_path
        class_map = load_class_map(map_path) if map_path is not None else PASSTHROUGH
        detector = load_detector(
            choice.backend,
            model,
            class_map,
            settings.confidence,
            settings.iou,
            settings.threads,
            settings.input_size,
        )
        log.info(
            "model %s loaded (%s), labels %s",
            detector.path,
            choice.backend,
            sorted(detector.labels()),
        )
        return detector


def model_choice(
    config: EdgeConfig, camera: CameraConfig, rules: Sequence[RuleSpec] = ()
) -> ModelChoice:
    """The model a camera uses: its own, else the site's, else the backend's built-in one;
    with the attribute stages whose labels one of its rules watches."""
    own = camera.detection
    watched = {c for r in rules if r.enabled for c in r.classes}
    attributes = []
    for name in config.detection.attributes:
        try:
            if load_attribute(models_dir(config), name).produces() & watched:
                attributes.append(name)
        except ModelError as e:
            log.error("%s: %s", camera.id, e)
    return ModelChoice(
        config.detection.backend,
        (own.model if own else None) or config.detection.model,
        (own.class_map if own else None) or config.detection.class_map,
        tuple(attributes),
    )


def local_model_label(detector: Detector) -> str:
    """How a model central did not install is named: `<file stem>@local`."""
    return model_label(Path(detector.path).stem.lower()[:64], "local")


def assess_detector(rules: list[RuleSpec], detector: Detector) -> list[RuleCapability]:
    """Each rule's capability with this detector's labels and class-map caveats."""
    unavailable = detector.unavailable if isinstance(detector, TwoStageDetector) else None
    return assess_rules(rules, detector.labels(), detector.class_map.caveats, unavailable)
