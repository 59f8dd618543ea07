"""Motion-region crops: where a crop lies, boxes mapped back, and on real footage the crop
finds the same people as the whole frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.config import parse_config
from edge_agent.detection.crop import Crop, CropSettings, detect_in_crop, input_aspect, merge
from edge_agent.detection.crop import plan_crop as plan
from edge_agent.detection.detector import Detection, Detector, box_iou
from edge_agent.detection.events import EventKeeper
from edge_agent.detection.frames import Frame
from edge_agent.detection.inference import InferencePool
from edge_agent.detection.model_cache import ModelCache
from edge_agent.detection.motion import MotionGate
from edge_agent.detection.pipeline import CameraDetection
from edge_agent.detection.settings import MotionConfig
from edge_agent.detection.zones import Box
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.tap import LiveTap
from tests.edge_agent.detection.conftest import read_frames


def test_a_small_region_is_padded_grown_to_the_model_shape_and_kept_in_the_frame() -> None:
    settings = CropSettings(pad=0.25, min_side=0.5, max_area=0.6)
    crop = plan((0.45, 0.40, 0.55, 0.60), 640, 480, 1.0, settings)
    # 64x96 px padded to 96x144, grown to the minimum 240 and squared around the centre.
    assert crop == Crop(200, 120, 440, 360, 640, 480)
    corner = plan((0.9, 0.0, 1.0, 0.1), 640, 480, 1.0, settings)
    assert corner == Crop(400, 0, 640, 240, 640, 480)  # shifted inside, not cut
    wide = plan((0.2, 0.4, 0.5, 0.5), 640, 360, 416 / 234, settings)
    assert wide is not None and (wide.x2 - wide.x1) / (wide.y2 - wide.y1) == pytest.approx(
        416 / 234, abs=0.02
    )


def test_spread_motion_or_no_motion_means_the_whole_frame() -> None:
    settings = CropSettings()
    assert plan(None, 640, 480, 1.0, settings) is None
    assert plan((0.05, 0.1, 0.95, 0.9), 640, 480, 1.0, settings) is None  # motion everywhere
    assert plan((0.1, 0.1, 0.2, 0.2), 640, 480, 1.0, CropSettings(max_area=0.1)) is None


def test_boxes_map_back_and_cut_edges_are_known() -> None:
    crop = Crop(160, 120, 480, 360, 640, 480)
    assert crop.to_frame((0.0, 0.0, 0.5, 1.0)) == (0.25, 0.25, 0.5, 0.75)
    assert crop.cut_edges((0.0, 0.3, 0.2, 0.6)) and not crop.cut_edges((0.1, 0.1, 0.9, 0.9))
    at_frame_edge = Crop(0, 0, 320, 240, 640, 480)
    assert not at_frame_edge.cut_edges((0.0, 0.0, 0.2, 0.2))  # the frame's edge cuts nothing


def test_merge_keeps_what_lies_outside_the_crop_and_drops_cut_duplicates() -> None:
    crop = Crop(0, 0, 320, 480, 640, 480)  # the left half moved
    outside = Detection("person", 0.7, (0.6, 0.2, 0.7, 0.6))
    straddling = Detection("person", 0.8, (0.46, 0.2, 0.58, 0.6))  # centre outside the crop
    inside_before = Detection("person", 0.9, (0.1, 0.2, 0.2, 0.6))
    moved = Detection("person", 0.85, (0.15, 0.2, 0.25, 0.6))
    cut = Detection("person", 0.6, (0.46, 0.2, 0.5, 0.6))  # the straddler's left part
    merged = merge([outside, straddling, inside_before], [(moved, False), (cut, True)], crop)
    assert merged == [moved, straddling, outside]


def _box(d: Detection) -> list[float]:
    return [round(v, 2) for v in d.box]


def _inside(box: Box, area: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]


def _matches(a: list[Detection], b: list[Detection]) -> list[float]:
    """For each detection of `a`, its best IoU with one of `b`."""
    return [max((box_iou(x.box, y.box) for y in b), default=0.0) for x in a]


def test_crop_mode_finds_the_same_people_as_the_whole_frame_on_real_footage(
    nanodet_detector: Detector,
) -> None:
    """vtest.avi at the sub stream's width: the people of the right half walk on (frame 58)
    while the left half stays as it was (frame 50), so motion is confined to the right."""
    before, later = (
        np.asarray(cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA), np.uint8)
        for f in read_frames([50, 58])
    )
    frame: NDArray[np.uint8] = before.copy()
    frame[:, 320:] = later[:, 320:]
    gate = MotionGate(MotionConfig())
    for i in range(3):
        gate.should_detect(before, float(i))
    assert gate.should_detect(frame, 3.0) and gate.region is not None
    assert gate.region[0] >= 0.45  # the moving region lies in the right half
    crop = plan(gate.region, 640, 480, input_aspect(nanodet_detector, frame), CropSettings())
    assert crop is not None and crop.x1 > 0
    assert (crop.x2 - crop.x1) * (crop.y2 - crop.y1) < 0.6 * 640 * 480

    whole = [d for d in nanodet_detector.detect(frame) if d.label == "person"]
    found = [(d, cut) for d, cut in detect_in_crop(nanodet_detector, frame, crop)
             if d.label == "person"]  # fmt: skip
    in_crop = [d for d, cut in found if not cut]
    whole_in_crop = [d for d in whole if _inside(d.box, crop.box)]
    assert len(whole_in_crop) >= 4, [_box(d) for d in whole]
    # The same people, box for box: each seen in one mode is seen in the other.
    assert min(_matches(whole_in_crop, in_crop)) >= 0.5, [_box(d) for d in in_crop]
    assert min(_matches(in_crop, whole_in_crop)) >= 0.5, [_box(d) for d in whole]
    # With the people seen before outside the crop, the frame's people are all there.
    previous = [d for d in nanodet_detector.detect(before) if d.label == "person"]
    merged = merge(previous, found, crop)
    assert len(merged) == len(whole)
    assert min(_matches(whole, merged)) >= 0.5


def test_a_camera_detects_on_the_crop_when_motion_is_confined(tmp_path: Path) -> None:
    """The pipeline's wiring: gate region -> crop -> merge, through the shared pool (at
    the model's own input size, as the test above compares)."""
    config = parse_config(
        f"""
site_id: t
storage: {{path: {tmp_path}/rec}}
data_dir: {tmp_path}/state
detection: {{threads: 1, input_size: 416, motion: {{hold_s: 0}}}}
cameras:
  - id: cam
    name: Test
    station: quarantine
    main_url: rtsp://127.0.0.1:9/none
    record: false
    detection:
      use_preset: false
      rules: [{{id: people, type: forbidden, classes: [person], min_seconds: 0}}]
"""
    )
    index = SegmentIndex(tmp_path / "index.db")
    keeper = EventKeeper(config, index)
    pool = InferencePool(1)
    camera = CameraDetection(
        config.cameras[0], config, ModelCache(config), keeper, LiveTap("cam", "sub"), pool
    )
    before, later = (
        np.asarray(cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA), np.uint8)
        for f in read_frames([50, 58])
    )
    frame = before.copy()
    frame[:, 320:] = later[:, 320:]
    pool.start()
    try:
        assert camera._setup(), camera.error
        for i in range(3):
            camera.process(Frame(1000.0 + i, before, i))
        assert camera.crops == 0  # the first frame and a still scene: whole frame
        camera.process(Frame(1003.0, frame, 3))
    finally:
        pool.stop()
        keeper.store.close()
        index.close()
    assert camera.crops == 1 and camera.detector_runs == 2 and pool.load["cam"].jobs == 2
    assert camera.detector is not None
    whole = [d for d in camera.detector.detect(frame) if d.label == "person"]
    seen = [d for d in camera._last if d.label == "person"]
    assert len(seen) == len(whole)
    assert min(_matches(whole, seen)) >= 0.5
