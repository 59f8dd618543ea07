"""Tracking keeps identities across frames; the motion gate skips static scenes."""

from __future__ import annotations

import numpy as np

from edge_agent.detection.detector import Detection
from edge_agent.detection.frames import DropOldestQueue, Frame
from edge_agent.detection.motion import MotionGate
from edge_agent.detection.settings import MotionConfig
from edge_agent.detection.tracker import IouTracker
from tests.edge_agent.detection.conftest import read_frames


def det(x: float, label: str = "person") -> Detection:
    return Detection(label, 0.8, (x, 0.2, x + 0.1, 0.6))


def test_tracks_keep_their_id_while_moving_and_survive_a_missed_frame() -> None:
    tracker = IouTracker(max_age_s=1.5, min_hits=2)
    assert tracker.update([det(0.10)], 0.0) == []  # tentative after one sighting
    first = tracker.update([det(0.12)], 0.5)
    assert [t.track_id for t in first] == [1]
    assert [t.track_id for t in tracker.update([], 1.0)] == [1]  # missed once: still there
    assert [t.track_id for t in tracker.update([det(0.14)], 1.5)] == [1]
    assert tracker.update([], 3.1) == []  # unseen longer than max_age_s


def test_different_labels_and_far_boxes_make_new_tracks() -> None:
    tracker = IouTracker(min_hits=1)
    tracker.update([det(0.1)], 0.0)
    found = tracker.update([det(0.1, "rodent"), det(0.7)], 0.5)
    assert sorted((t.label, t.track_id) for t in found) == [
        ("person", 1),
        ("person", 3),
        ("rodent", 2),
    ]


def test_motion_gate_skips_a_static_scene_and_wakes_on_movement() -> None:
    gate = MotionGate(MotionConfig(hold_s=0, refresh_s=1000))
    first, moved = read_frames([100, 110])
    assert gate.should_detect(first, 0.0)  # first frame: always looked at
    runs = [gate.should_detect(first.copy(), 1.0 + i) for i in range(20)]
    assert not any(runs) and gate.skipped == 20
    assert gate.should_detect(moved, 30.0)  # people walked
    assert 0.9 < gate.skip_fraction < 1.0


def test_motion_gate_refresh_and_masks() -> None:
    frame = np.full((360, 640, 3), 80, np.uint8)
    gate = MotionGate(
        MotionConfig(hold_s=0, refresh_s=5), masks=[[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]]
    )
    assert gate.should_detect(frame, 0.0)
    changed = frame.copy()
    changed[:, :300] = 250  # a change only inside the masked left half
    assert not gate.should_detect(changed, 1.0)
    assert gate.should_detect(frame, 6.0)  # refresh_s passed: look anyway


def test_drop_oldest_queue_counts_drops() -> None:
    queue = DropOldestQueue(2)
    image = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        queue.put(Frame(float(i), image, i))
    assert queue.dropped == 3 and len(queue) == 2
    got = [queue.get(0.01) for _ in range(3)]
    assert [f.seq if f else None for f in got] == [3, 4, None]


def test_a_person_walking_through_a_still_scene_is_cropped_where_they_are() -> None:
    """vtest.avi with its walkers removed (the median of 40 frames) and one real person of
    it (frame 630, hand-labelled in tests/data/person_eval.json) walking 30 px a frame at
    1 fps. They stand in the first frame, so the background keeps their ghost there for
    tens of frames; the region follows the walker alone, and the crop holds them."""
    from edge_agent.detection.crop import CropSettings, plan_crop

    frames = read_frames(list(range(0, 800, 20)))
    still = np.median(np.stack(frames), axis=0).astype(np.uint8)
    x1, y1, x2, y2 = 354, 396, 406, 541
    person = read_frames([630])[0][y1:y2, x1:x2]
    gate = MotionGate(MotionConfig())
    height, width = still.shape[:2]
    for step in range(12):
        frame = still.copy()
        left = 60 + 30 * step
        frame[y1:y2, left : left + x2 - x1] = person
        assert gate.should_detect(frame, float(step))
        if step == 0:
            continue  # the first frame starts the background
        assert gate.region is not None
        rx1, rx2 = gate.region[0] * width, gate.region[2] * width
        # Around where the person is now (and was a frame ago), not back to the ghost at
        # 60 px; the grey frame is 160 px wide, so a pixel of it is 4.8 of the frame's.
        tol = 24
        assert (
            left - 30 - tol <= rx1 <= left + tol and left + x2 - x1 - tol <= rx2 <= left + 60 + tol
        )
        crop = plan_crop(gate.region, width, height, 1.0, CropSettings())
        assert crop is not None, (step, gate.region)
        assert crop.x1 <= left and left + x2 - x1 <= crop.x2 and crop.y1 <= y1 and y2 <= crop.y2
