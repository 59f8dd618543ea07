"""Honest capability: each rule is working, partial or blind with its model, and says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from edge_agent.config import parse_config
from edge_agent.detection.capability import (
    assess_rule,
    assess_rules,
    counts,
    runnable,
)
from edge_agent.detection.detector import default_models_dir, load_class_map
from edge_agent.detection.events import EventKeeper
from edge_agent.detection.model_cache import ModelCache
from edge_agent.detection.pipeline import CameraDetection, detection_statuses
from edge_agent.detection.report import preset_capability
from edge_agent.detection.settings import RuleSpec
from edge_agent.mqtt.heartbeat import HeartbeatPublisher
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.tap import LiveTap
from fsv_contract import HeartbeatPayload, decode, encode, topics

MODELS = default_models_dir()


def rule(**fields: object) -> RuleSpec:
    return RuleSpec.model_validate({"id": "r", "type": "forbidden", **fields})


def test_working_partial_and_blind_say_why() -> None:
    labels = {"person", "phone_use"}
    caveats = {"phone_use": "a phone in view, not its use"}
    working = assess_rule(rule(classes=["person"]), labels, caveats)
    assert (working.status, working.kind) == ("working", "person_in_zone")
    half = assess_rule(rule(type="after_hours", classes=["person", "vehicle"]), labels, caveats)
    assert half.status == "partial" and "not vehicle" in half.reason
    caveat = assess_rule(rule(classes=["phone_use"]), labels, caveats)
    assert caveat.status == "partial" and "not its use" in caveat.reason
    blind = assess_rule(rule(classes=["no_chef_hat"]), labels, caveats)
    assert blind.status == "blind" and "does not see no_chef_hat" in blind.reason


def test_blind_presence_rule_is_not_run() -> None:
    presence = rule(id="absent", type="required_presence", classes=["person"])
    other = rule(id="hat", classes=["no_chef_hat"])
    caps = assess_rules([presence, other, rule(id="off", enabled=False)], set(), {})
    assert [c.rule for c in caps] == ["absent", "hat"]  # disabled rules are not assessed
    assert "would report every moment as absence" in caps[0].reason
    assert runnable([presence, other], caps) == [other]


def shipped(class_map: str) -> dict[str, int]:
    cmap = load_class_map(MODELS / class_map)
    labels = {label for label in cmap.classes.values() if label}
    per_station = preset_capability(MODELS, labels, cmap.caveats)
    return dict(counts([c for caps in per_station.values() for c in caps]))


def test_shipped_presets_with_the_default_and_the_former_model() -> None:
    # NanoDet-m (COCO): people and vehicles; a phone in view is only a hint of phone use.
    assert shipped("coco.yaml") == {"working": 12, "partial": 3, "blind": 11}
    # The former person-only model: the after-hours rules miss vehicles, phones unseen.
    assert shipped("person.yaml") == {"working": 9, "partial": 3, "blind": 14}


def test_check_config_prints_each_rule_capability(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"""\
site_id: site-a
storage: {{path: {tmp_path / "rec"}}}
cameras:
  - id: kitchen-1
    name: Kitchen
    station: kitchen_prep
    main_url: rtsp://127.0.0.1:8554/cam1
  - id: gate
    name: Gate
    station: meat_exit
    main_url: rtsp://127.0.0.1:8554/cam2
    detection: {{model: {tmp_path / "missing.onnx"}}}
"""
    )
    cmd = [sys.executable, "-m", "edge_agent", "check-config", str(config)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "kitchen-1 [kitchen_prep] model nanodet-m.onnx (nanodet)" in out
    assert "blind    no-chef-hat (no_chef_hat): the model does not see no_chef_hat" in out
    assert "partial  phone-use (phone_use)" in out
    assert "working  kitchen-crowding (crowding)" in out
    assert "gate [meat_exit] model none" in out
    assert "missing.onnx: file not found" in out
    assert "partial  no-mask (no_mask): no_mask: only faces turned towards the camera" in out
    assert "rules: 1 working, 2 partial, 5 blind" in out


def test_heartbeat_carries_each_cameras_rule_capability(tmp_path: Path) -> None:
    config = parse_config(
        f"""
site_id: site-a
storage: {{path: {tmp_path / "rec"}}}
data_dir: {tmp_path / "state"}
cameras:
  - id: kitchen-1
    name: Kitchen
    station: kitchen_prep
    main_url: rtsp://127.0.0.1:9/none
  - id: pen
    name: Pens
    station: quarantine
    main_url: rtsp://127.0.0.1:9/none
    detection: {{model: {tmp_path / "missing.onnx"}}}
"""
    )
    index = SegmentIndex(tmp_path / "index.db")
    keeper = EventKeeper(config, index)
    models = ModelCache(config)
    cameras = [
        CameraDetection(c, config, models, keeper, LiveTap(c.id, "sub")) for c in config.cameras
    ]
    assert cameras[0]._setup() and not cameras[1]._setup()
    beat = HeartbeatPublisher(
        SimpleNamespace(publish_now=lambda topic, payload: True),
        "site-a",
        tmp_path,
        30.0,
        cameras=lambda: [],
        storage=lambda: None,
        pending=lambda: (0, 0),
    )
    assert beat.beat().detection is None  # not set: the field stays out of older beats
    beat.detection = lambda: detection_statuses(cameras)
    message = decode(topics.heartbeat("site-a"), encode(beat.beat()))
    assert isinstance(message.payload, HeartbeatPayload)
    kitchen, pen = message.payload.detection or []
    assert kitchen.model == "nanodet-m.onnx" and kitchen.error is None
    statuses = {r.rule: r.status for r in kitchen.rules}
    assert statuses["smoking"] == "blind" and statuses["kitchen-crowding"] == "working"
    assert statuses["phone-use"] == "partial" and statuses["no-mask"] == "partial"
    assert pen.model is None and pen.error and "missing.onnx" in pen.error
    assert [(r.rule, r.status) for r in pen.rules] == [("inspector-absent", "blind")]
    assert cameras[0].status()["rules"] == statuses
    keeper.store.close()
    index.close()
