"""Edge configuration: valid files load, bad ones name the field and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import load_config, parse_config, redact
from edge_agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
site_id: site-a
storage:
  path: /tmp/rec
cameras:
  - id: cam1
    name: Quarantine line
    station: quarantine
    main_url: rtsp://127.0.0.1:8554/cam1
    sub_url: rtsp://127.0.0.1:8554/cam1_sub
    credential: cam_login
"""


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "configs" / "edge.example.yaml")
    assert len(config.cameras) == 2
    assert all(c.retention_days == 90 for c in config.cameras)


def test_defaults() -> None:
    config = parse_config(GOOD)
    cam = config.camera("cam1")
    assert cam.retention_days == 90
    assert config.storage.segment_seconds == 60
    assert config.state_dir == Path("/tmp/rec/.agent")


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "edge.yaml")
    return info.value.problems


def test_unknown_field_is_located() -> None:
    problems = _problems(GOOD.replace("    credential: cam_login", "    colour: red"))
    assert problems == [
        "edge.yaml:10: cameras[0].colour: unknown field (check the spelling; "
        "see configs/edge.example.yaml)"
    ]


def test_every_error_is_listed_with_its_line() -> None:
    text = GOOD.replace("site_id: site-a", "site_id: Site A").replace(
        "main_url: rtsp://127.0.0.1:8554/cam1", "main_url: http://127.0.0.1/cam1"
    )
    problems = _problems(text)
    assert len(problems) == 2
    assert problems[0].startswith("edge.yaml:1: site_id:")
    assert problems[1].startswith("edge.yaml:8: cameras[0].main_url:")
    assert "rtsp://" in problems[1]


def test_credentials_in_url_are_refused() -> None:
    problems = _problems(GOOD.replace("rtsp://127.0.0.1:8554/cam1\n", "rtsp://admin:pw@h/x\n"))
    assert "must not carry credentials" in problems[0]
    assert "pw" not in problems[0]


def test_missing_field_and_retention_bounds() -> None:
    problems = _problems(GOOD.replace("    name: Quarantine line\n", "    retention_days: 0\n"))
    assert any("cameras[0].name: required field is missing" in p for p in problems)
    assert any("cameras[0].retention_days" in p for p in problems)


def test_duplicate_camera_ids() -> None:
    cam = GOOD.split("cameras:\n", 1)[1]
    problems = _problems(GOOD + cam)
    assert any("'cam1' is used twice" in p for p in problems)


def test_unknown_time_zone() -> None:
    problems = _problems(GOOD + "timezone: Mars/Olympus\n")
    assert any("timezone" in p and "Mars/Olympus" in p for p in problems)


def test_not_yaml_and_not_mapping() -> None:
    assert "not valid YAML" in _problems("site_id: [\n")[0]
    assert "mapping" in _problems("- a\n- b\n")[0]


def test_redact_hides_logins() -> None:
    assert (
        redact("open rtsp://admin:s3cret@10.0.0.5/x failed") == "open rtsp://***@10.0.0.5/x failed"
    )


def test_check_config_cli(tmp_path: Path) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text(GOOD.replace("station: quarantine", "station: 'Bad Station'"))
    cmd = [sys.executable, "-m", "edge_agent", "check-config", str(bad)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert f"{bad}:7: cameras[0].station:" in result.stderr
    assert "Traceback" not in result.stderr
    missing = subprocess.run(
        [*cmd[:-1], str(tmp_path / "nope.yaml")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "cannot read file" in missing.stderr


def test_a_duplicate_id_is_reported_at_its_line_with_the_other_errors() -> None:
    cam = GOOD.split("cameras:\n", 1)[1]
    text = (GOOD + cam).replace("site_id: site-a", "site_id: Site A")
    problems = _problems(text)
    assert problems[0].startswith("edge.yaml:1: site_id:")
    assert problems[1] == (
        "edge.yaml:11: cameras[1].id: camera id 'cam1' is used twice (first at cameras[0], line 5)"
    )
    assert len(problems) == 2


def test_check_config_warns_about_a_station_without_preset_or_rules(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD.replace("station: quarantine", "station: quarantien"))
    cmd = [sys.executable, "-m", "edge_agent", "check-config", str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"warning: {path}:7: cameras[0].station: 'quarantien' matches")
    assert "quarantine" in result.stderr  # the presets it could have meant
    path.write_text(GOOD)
    clean = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    assert clean.returncode == 0 and clean.stderr == ""
