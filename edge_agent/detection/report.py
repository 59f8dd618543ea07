"""Capability reports: each camera's rules against its model (`check-config`), and every
shipped station preset against one model (the detection benchmark, models/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import EdgeConfig
from edge_agent.detection.capability import (
    RuleCapability,
    all_blind,
    assess_rules,
    counts,
)
from edge_agent.detection.model_cache import ModelCache, assess_detector, model_choice
from edge_agent.detection.pipeline import detection_cameras
from edge_agent.detection.presets import camera_rules, load_preset
from edge_agent.errors import ConfigError, ModelError


@dataclass(frozen=True)
class CameraReport:
    """One camera's model (or why it has none) and its rules' capability."""

    camera: str
    station: str
    model: str
    rules: list[RuleCapability]


def camera_reports(config: EdgeConfig) -> list[CameraReport]:
    """Every watched camera's capability, loading each model once as the agent would."""
    models = ModelCache(config)
    reports = []
    for camera in detection_cameras(config):
        try:
            rules = camera_rules(config, camera)
        except ConfigError:
            continue  # check_detection already reported it
        try:
            detector = models.get(model_choice(config, camera, rules))
        except ModelError as e:
            reports.append(
                CameraReport(camera.id, camera.station, "none", all_blind(rules, f"no model: {e}"))
            )
            continue
        model = f"{detector.path.name} ({config.detection.backend})"
        reports.append(
            CameraReport(camera.id, camera.station, model, assess_detector(rules, detector))
        )
    return reports


def format_reports(reports: list[CameraReport]) -> list[str]:
    """Lines for `check-config`: per camera its model, then each rule's status and reason."""
    if not reports:
        return ["detection: no camera is watched"]
    lines = ["detection capability (what each rule can see with its model):"]
    everything: list[RuleCapability] = []
    for r in reports:
        lines.append(f"  {r.camera} [{r.station}] model {r.model}")
        if not r.rules:
            lines.append("    (no rules)")
        for c in r.rules:
            lines.append(f"    {c.status:<8} {c.rule} ({c.kind}): {c.reason}")
        everything += r.rules
    tally = counts(everything)
    lines.append(
        f"  rules: {tally['working']} working, {tally['partial']} partial, {tally['blind']} blind"
    )
    return lines


def preset_capability(
    folder: Path, labels: set[str], caveats: Mapping[str, str]
) -> dict[str, list[RuleCapability]]:
    """Station -> capability of its preset rules, for every `folder/stations/*.yaml`."""
    result: dict[str, list[RuleCapability]] = {}
    for path in sorted((folder / "stations").glob("*.yaml")):
        preset = load_preset(folder, path.stem)
        if preset is not None:
            result[path.stem] = assess_rules(preset.rules, labels, caveats)
    return result
