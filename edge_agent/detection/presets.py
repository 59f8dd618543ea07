"""Station presets (models/stations/*.yaml) merged with a camera's own rule overrides."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.config import CameraConfig, EdgeConfig, format_errors
from edge_agent.detection.detector import default_models_dir
from edge_agent.detection.settings import RuleSpec
from edge_agent.errors import ConfigError


class StationPreset(BaseModel):
    """The rules that apply at one kind of station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    rules: list[RuleSpec] = Field(default_factory=list)


def models_dir(config: EdgeConfig) -> Path:
    """The folder of class maps and station presets."""
    return config.detection.models_dir or default_models_dir()


def load_preset(folder: Path, station: str) -> StationPreset | None:
    """The preset `folder/stations/<station>.yaml`, None if there is none; ConfigError if bad."""
    path = folder / "stations" / f"{station}.yaml"
    if not path.is_file():
        return None
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(source, [f"{source}: cannot read: {e}"]) from e
    try:
        preset = StationPreset.model_validate(data or {})
    except ValidationError as e:
        raise ConfigError(source, format_errors(e, node, source)) from e
    problems = [f"{source}: rules[{i}]: {p}" for i, r in enumerate(preset.rules) for p in _gaps(r)]
    if preset.station != station:
        problems.append(f"{source}: station: {preset.station!r} does not match the file name")
    if problems:
        raise ConfigError(source, problems)
    return preset


def camera_rules(config: EdgeConfig, camera: CameraConfig) -> list[RuleSpec]:
    """The rules of a camera: its station preset with the camera's overrides applied.

    A camera rule whose id is in the preset replaces only the fields it sets; `enabled:
    false` switches a preset rule off; any other id adds a rule (with its `type`).
    """
    own = camera.detection
    station = (own.preset if own and own.preset else None) or camera.station
    preset = load_preset(models_dir(config), station) if own is None or own.use_preset else None
    rules = {r.id: r for r in (preset.rules if preset else [])}
    where = f"cameras[{config.cameras.index(camera)}].detection.rules"
    problems: list[str] = []
    for i, override in enumerate(own.rules if own else []):
        base = rules.get(override.id)
        merged = override if base is None else _merge(base, override)
        gaps = _gaps(merged)
        if base is None and gaps:
            gaps = [f"rule {override.id!r} is not in preset {station!r}: {g}" for g in gaps]
        problems += [f"{where}[{i}]: {g}" for g in gaps]
        rules[override.id] = merged
    if problems:
        raise ConfigError(f"camera {camera.id}", problems)
    return list(rules.values())


def _merge(base: RuleSpec, override: RuleSpec) -> RuleSpec:
    changes = {k: getattr(override, k) for k in override.model_fields_set}
    return RuleSpec.model_validate({**base.model_dump(exclude_unset=True), **changes})


def _gaps(rule: RuleSpec) -> list[str]:
    """What a complete rule still lacks."""
    if rule.type is None:
        return ["needs a `type` (forbidden, required_presence, after_hours, crowding, loitering)"]
    if rule.type == "after_hours" and not rule.permitted:
        return ["an after_hours rule needs `permitted` hours"]
    return []


def station_warnings(config: EdgeConfig) -> list[tuple[int, str]]:
    """(camera index, warning) for each camera whose station has no preset and no rules.

    Such a camera records but nothing is ever detected at its station, most often because
    the station name is misspelt.
    """
    if not config.detection.enabled:
        return []
    folder = models_dir(config)
    warnings = []
    for i, camera in enumerate(config.cameras):
        own = camera.detection
        station = (own.preset if own and own.preset else None) or camera.station
        if own is not None and own.rules:
            continue
        if not (folder / "stations" / f"{station}.yaml").is_file():
            known = sorted(p.stem for p in (folder / "stations").glob("*.yaml"))
            warnings.append(
                (
                    i,
                    f"cameras[{i}].station: {station!r} matches no station preset and the "
                    f"camera has no rules, so nothing is detected there "
                    f"(presets: {', '.join(known) or 'none'})",
                )
            )
    return warnings


def check_detection(config: EdgeConfig) -> list[str]:
    """Every rule problem of every camera (for `check-config`); [] if all resolve."""
    problems: list[str] = []
    for camera in config.cameras:
        try:
            camera_rules(config, camera)
        except ConfigError as e:
            problems += e.problems
    return problems
