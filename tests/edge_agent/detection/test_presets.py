"""Station presets and camera overrides: the bundled data is valid, merges, located errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.detection.detector import default_models_dir, load_class_map
from edge_agent.detection.presets import camera_rules, check_detection, load_preset
from edge_agent.errors import ConfigError, ModelError

STATIONS = [
    "entry_inspection",
    "rest_pen",
    "quarantine",
    "harmless_disposal",
    "meat_exit",
    "kitchen_prep",
    "kitchen_cooking",
    "dish_washing",
    "storage",
]

BASE = """
site_id: site-1
storage: {path: /tmp/x}
cameras:
  - id: cam-1
    name: Quarantine point
    station: quarantine
    main_url: rtsp://127.0.0.1:8554/main
"""


@pytest.mark.parametrize("station", STATIONS)
def test_every_bundled_preset_loads(station: str) -> None:
    preset = load_preset(default_models_dir(), station)
    assert preset is not None and preset.rules
    assert all(r.type is not None for r in preset.rules)


@pytest.mark.parametrize("name", ["person", "canteen", "slaughterhouse"])
def test_bundled_class_maps_load(name: str) -> None:
    class_map = load_class_map(default_models_dir() / f"{name}.yaml")
    assert class_map.label("person") == "person" or class_map.label("Normal") == "person"


def test_canteen_map_turns_model_classes_into_violation_kinds() -> None:
    class_map = load_class_map(default_models_dir() / "canteen.yaml")
    assert class_map.label("cigarette") == "smoking"
    assert class_map.label("mouse") == "rodent"
    assert class_map.label("chef_hat") is None  # compliant: dropped
    assert class_map.label("spoon") is None  # unknown: dropped (no passthrough)


def test_camera_override_changes_only_the_fields_it_sets() -> None:
    text = (
        BASE
        + """    detection:
      rules:
        - id: inspector-absent
          max_absent_s: 60
          schedule: [{start: 06:00, end: "14:30"}]
        - id: extra-crowd
          type: crowding
          max_count: 3
"""
    )
    config = parse_config(text)
    rules = {r.id: r for r in camera_rules(config, config.cameras[0])}
    absent = rules["inspector-absent"]
    assert absent.max_absent_s == 60 and absent.severity == "critical"  # kept from the preset
    assert absent.zone is not None and absent.schedule is not None
    assert absent.schedule[0].start == time(6, 0)  # unquoted YAML 06:00 is read as a time
    assert rules["extra-crowd"].type == "crowding"


def test_override_can_disable_a_preset_rule_or_drop_the_preset() -> None:
    off = parse_config(BASE + "    detection: {rules: [{id: inspector-absent, enabled: false}]}\n")
    assert [r.enabled for r in camera_rules(off, off.cameras[0])] == [False]
    none = parse_config(BASE + "    detection: {use_preset: false}\n")
    assert camera_rules(none, none.cameras[0]) == []


def test_new_rule_without_type_is_a_located_error() -> None:
    config = parse_config(BASE + "    detection: {rules: [{id: typo-rule, min_seconds: 3}]}\n")
    with pytest.raises(ConfigError) as err:
        camera_rules(config, config.cameras[0])
    assert "cameras[0].detection.rules[0]" in str(err.value) and "typo-rule" in str(err.value)
    assert check_detection(config) == err.value.problems


def test_bad_rule_field_in_the_config_names_file_line_and_field() -> None:
    text = (
        BASE
        + "    detection:\n      rules:\n"
        + "        - {id: x, type: forbidden, zone: [[0, 0], [2, 0], [1, 1]]}\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "edge.yaml")
    message = str(err.value)
    assert "edge.yaml:11" in message and "cameras[0].detection.rules[0].zone" in message
    assert "outside the frame" in message


def test_broken_preset_file_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "stations").mkdir()
    (tmp_path / "stations" / "pen.yaml").write_text(
        "station: pen\nrules:\n  - id: a\n    type: forbiden\n"
    )
    with pytest.raises(ConfigError) as err:
        load_preset(tmp_path, "pen")
    assert "pen.yaml:4: rules[0].type" in str(err.value)


def test_broken_class_map_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("classes: {Cat: Not A Label}\n")
    with pytest.raises(ModelError, match="map.yaml"):
        load_class_map(path)
