"""Shadow mode: a model on trial runs on the same frames, counted against the running one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from numpy.typing import NDArray

from edge_agent.config import parse_config
from edge_agent.detection.detector import Detection
from edge_agent.detection.events import EventKeeper
from edge_agent.detection.frames import Frame
from edge_agent.detection.model_cache import ModelCache
from edge_agent.detection.pipeline import CameraDetection, shadow_statuses
from edge_agent.errors import ModelError
from edge_agent.models.shadow import ShadowTally, compare
from edge_agent.mqtt.heartbeat import HeartbeatPublisher
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.tap import LiveTap
from fsv_contract import HeartbeatPayload, decode, encode, topics


def det(label: str, x: float, y: float = 0.1, size: float = 0.2) -> Detection:
    return Detection(label, 0.9, (x, y, x + size, y + size))


def test_compare_matches_same_class_boxes_that_overlap() -> None:
    current = [det("person", 0.1), det("person", 0.5), det("rodent", 0.7)]
    shadow = [det("person", 0.12), det("person", 0.52, 0.5), det("no_mask", 0.1)]
    found = compare(current, shadow)
    assert dict(found["person"]) == {"matched": 1, "only_current": 1, "only_shadow": 1}
    assert dict(found["rodent"]) == {"matched": 0, "only_current": 1, "only_shadow": 0}
    assert dict(found["no_mask"]) == {"matched": 0, "only_current": 0, "only_shadow": 1}
    assert compare([], []) == {}


class Blind:
    """A shadow model that finds one rodent everywhere, then fails on the third frame."""

    path = Path("/models/trial.onnx")

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: NDArray[np.uint8]) -> list[Detection]:
        self.calls += 1
        if self.calls == 3:
            raise ModelError("trial.onnx: output has the wrong shape")
        return [det("rodent", 0.4)]


def test_a_shadow_model_is_counted_and_reported_but_raises_nothing(
    tmp_path: Path, vtest_frame: NDArray[np.uint8]
) -> None:
    config = parse_config(
        f"""
site_id: site-a
storage: {{path: {tmp_path / "rec"}}}
data_dir: {tmp_path / "state"}
detection: {{motion: {{enabled: false}}}}
cameras:
  - {{id: kitchen-1, name: Kitchen, station: kitchen_prep, main_url: "rtsp://127.0.0.1:9/x"}}
"""
    )
    index = SegmentIndex(tmp_path / "index.db")
    keeper = EventKeeper(config, index)
    camera = CameraDetection(
        config.cameras[0], config, ModelCache(config), keeper, LiveTap("kitchen-1", "sub")
    )
    assert camera._setup() and camera.detector is not None
    same = camera.detector
    camera.shadow = (same, ShadowTally("kitchen-1", "nanodet@2"))
    t0 = 1_780_000_000.0
    for i in range(3):
        camera.process(Frame(t0 + i, vtest_frame, i))
    # The same model in shadow agrees with itself on every box.
    [stats] = shadow_statuses([camera])
    assert stats.frames == 3 and stats.model == "nanodet@2" and stats.current == "nanodet-m@local"
    assert stats.classes and all(c.only_current == c.only_shadow == 0 for c in stats.classes)
    assert sum(c.matched for c in stats.classes) > 0

    trial = Blind()
    camera.shadow = (trial, ShadowTally("kitchen-1", "trial@1"))  # type: ignore[arg-type]
    events_before = camera.events_started
    for i in range(4):
        camera.process(Frame(t0 + 10 + i, vtest_frame, 10 + i))
    assert camera.detector is same and camera.events_started == events_before
    [stats] = shadow_statuses([camera])
    rodent = next(c for c in stats.classes if c.name == "rodent")
    assert (stats.frames, stats.errors, rodent.only_shadow, rodent.matched) == (3, 1, 3, 0)
    assert stats.day == "2026-05-28"

    beat = HeartbeatPublisher(
        SimpleNamespace(publish_now=lambda topic, payload: True), "site-a", tmp_path, 30.0,
        cameras=lambda: [], storage=lambda: None, pending=lambda: (0, 0),
    )  # fmt: skip
    assert beat.beat().shadow is None
    beat.shadow = lambda: shadow_statuses([camera])
    message = decode(topics.heartbeat("site-a"), encode(beat.beat()))
    assert isinstance(message.payload, HeartbeatPayload)
    assert message.payload.shadow == [stats]
    camera.shadow = None
    assert beat.beat().shadow is None
    keeper.store.close()
    index.close()
