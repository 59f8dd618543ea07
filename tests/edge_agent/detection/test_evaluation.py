"""The labelled person set loads, matching counts each person once, and the default model
beats the former one on it."""

from __future__ import annotations

from pathlib import Path

from edge_agent.detection.detector import Detector
from edge_agent.detection.evaluation import evaluate, load_set, match

LABELS = Path(__file__).resolve().parents[2] / "data" / "person_eval.json"


def test_match_counts_each_labelled_person_once() -> None:
    truth = [(0.1, 0.1, 0.2, 0.4), (0.5, 0.1, 0.6, 0.4)]
    found = [
        (0.9, (0.1, 0.1, 0.2, 0.41)),  # the first person
        (0.8, (0.1, 0.12, 0.2, 0.4)),  # the first person again: false positive
        (0.7, (0.8, 0.8, 0.9, 0.9)),  # nothing there
    ]
    assert match(found, truth, 0.4) == (1, 2, 1)
    assert match([], truth, 0.4) == (0, 0, 2)


def test_labelled_set_loads_real_footage() -> None:
    images, iou = load_set(LABELS)
    assert iou == 0.4 and len(images) == 6
    assert sum(len(i.persons) for i in images) == 32
    for item in images:
        assert item.image.ndim == 3
        assert all(0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 for x1, y1, x2, y2 in item.persons)


def test_default_model_finds_more_people_than_the_former_one(
    nanodet_detector: Detector, person_detector: Detector
) -> None:
    images, iou = load_set(LABELS)
    new = evaluate(nanodet_detector, images, iou)
    old = evaluate(person_detector, images, iou)
    assert new["person_recall"] > old["person_recall"]
    assert new["person_recall"] >= 0.75 and new["person_precision"] >= 0.75
