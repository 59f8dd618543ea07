"""The labelling page in headless Chromium: an inspector boxes alert frames with mouse and keys.

Alerts arrive as an edge sends them (event over the real broker, snapshot and clean frame
PUT to central); label_pages.mjs opens the first from the inbox's link, corrects the edge's
box, draws, moves and deletes boxes, marks verdicts with keys and saves; the API then holds
exactly those labels. Screenshots stay in /tmp/fsv-label-pages.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from regulator_system import RegulatorSystem
from video_system import running
from walks import Walk

from fsv_contract import Box
from testbed.footage import camera_jpeg

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/fsv-label-pages")
COUNT = 6
PERSON = Box(x=0.5, y=0.2, w=0.2, h=0.6, label="person", score=0.8)


def _annotated(jpeg: bytes) -> bytes:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    cv2.rectangle(image, (w // 2, h // 5), (int(w * 0.7), int(h * 0.8)), (0, 0, 255), 3)
    ok, out = cv2.imencode(".jpg", image)
    assert ok
    return bytes(out.tobytes())


def test_an_inspector_labels_frames_with_mouse_and_keys(
    tmp_path_factory: pytest.TempPathFactory, walk: Walk
) -> None:
    with running(RegulatorSystem(tmp_path_factory.mktemp("labels"))) as system:
        ids = []
        for n in range(COUNT):
            frame = camera_jpeg(30 + 60 * n)
            ids.append(
                system.raise_alert_with_snapshot(
                    _annotated(frame), frame=frame, boxes=[PERSON], model="hats@2"
                )
            )
        SHOTS.mkdir(exist_ok=True)
        options = {
            "url": system.url,
            "user": "inspector-a",
            "password": system.users["inspector-a"],
            "shots": str(SHOTS),
            "count": COUNT,
        }
        seen = walk("label_pages.mjs", options, timeout=240)
        (SHOTS / "seen.json").write_text(json.dumps(seen, ensure_ascii=False, indent=1))
        labels = {
            i: system.api("GET", f"/api/v1/alerts/{i}/label", user="admin")["label"] for i in ids
        }
        audit = system.api("GET", "/api/v1/audit?action=alert_label", user="admin")["items"]

    assert seen["problems"] == []
    assert seen["linkText"] == "标注此预警" and seen["fromLink"].endswith(f"#alert={ids[-1]}")
    first = seen["first"]
    assert first["id"] == ids[-1] and first["count"] == COUNT
    # The edge's detection is offered as a box to correct, on the clean frame.
    assert first["boxes"] == [
        {"cls": "person", "x1": 0.5, "y1": 0.2, "x2": pytest.approx(0.7), "y2": 0.8}
    ]
    for where, a in seen["audits"].items():
        assert a["scrollWidth"] <= a["innerWidth"], (where, a)
        assert a["missing"] == [] and not a["placeholders"], (where, a)
        assert a["lang"] == "zh-CN" and a["stage"] > 300, (where, a)
        assert (SHOTS / f"label-{where.replace('/', '-')}.png").stat().st_size > 5_000

    step = seen["steps"][0]
    drawn = step["drawn"]["boxes"][-1]
    assert drawn["cls"] == "no_chef_hat"  # key 2: the second class of the default map
    assert (drawn["x1"], drawn["y1"], drawn["x2"], drawn["y2"]) == pytest.approx(
        (0.1, 0.1, 0.3, 0.5), abs=0.01
    )
    moved = step["moved"]["boxes"][-1]
    assert (moved["x1"], moved["y1"], moved["x2"], moved["y2"]) == pytest.approx(
        (0.15, 0.15, 0.35, 0.55), abs=0.01
    )
    assert len(step["deleted"]["boxes"]) == 2  # the slip drawn at (0.8, 0.05) is gone

    # What the API holds is what was drawn: every frame labelled, by this inspector.
    first_label = labels[ids[-1]]
    assert first_label["verdict"] == "true" and first_label["username"] == "inspector-a"
    assert [b["cls"] for b in first_label["boxes"]] == ["person", "no_chef_hat"]
    assert first_label["boxes"][1]["x1"] == pytest.approx(0.15, abs=0.01)
    for n, s in enumerate(seen["steps"][1:], start=1):
        label = labels[s["id"]]
        if n % 2 == 1:
            assert (label["verdict"], label["boxes"]) == ("false", []), (n, label)
        else:
            assert label["verdict"] == "true" and [b["cls"] for b in label["boxes"]] == [
                "person",
                "person",
            ], (n, label)
            assert label["boxes"][1]["y2"] == pytest.approx(0.9, abs=0.01)
    assert all(labels[i] is not None for i in ids)
    assert len([e for e in audit if e["target"].startswith("alert:")]) == COUNT
    assert seen["last"]["verdict"] in ("true", "false") and seen["last"]["count"] == COUNT
