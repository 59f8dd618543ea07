"""The whole model loop on real processes: label, export, train, distribute, alerts, back.

Mosquitto, `central-server run` and an edge agent recording the RTSP testbed (tests/system/
model_site.py). Central asks the edge for 20 sample frames of its recordings; an inspector
labels 20 frames of the queue in the labelling page (headless Chromium); the dataset is
exported and a tiny model trained on the CPU and registered with the class map and backend
its card records. Versions reach the edge over the broker with the CLI; the heartbeat names
each, alerts at central name the version that raised them (the shipped model's, then an
installed one's, through its registry class map), and one command rolls back. Refusal of a
corrupt or wrongly signed model, and restore after a restart, are in test_models_rollout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.detection.detector import default_model_path
from testbed.demo import SITE
from tests.system.model_site import CAMERA, Api, ModelSite, wait

BROWSER = Path(__file__).resolve().parents[1] / "browser"
FRAMES = 20
TRAIN_LIMIT_S = 180.0


def _label_in_the_page(url: str, password: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node and (BROWSER / "node_modules" / "playwright-core").is_dir(), "node/playwright"
    options = {"url": url, "user": "admin", "password": password, "mode": "queue",
               "count": FRAMES, "box": [0.3, 0.25, 0.55, 0.9], "shots": "/tmp"}  # fmt: skip
    done = subprocess.run(
        [node, str(BROWSER / "label_pages.mjs"), json.dumps(options)],
        capture_output=True, text=True, timeout=300, cwd=BROWSER, check=False,
    )  # fmt: skip
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    assert lines, f"no result from the browser:\n{done.stdout}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), result
    return result


def _rollout(site: ModelSite, *args: str) -> dict[str, Any]:
    out = site.cli("model", "rollout", *args)
    return dict(json.loads(out[out.index("{") :]))


def _alert_by(api: Api, model: str) -> dict[str, Any] | None:
    items = api.call("GET", "/api/v1/alerts?limit=50")["items"]
    return next((a for a in items if a.get("model") == model), None)


def _ask_for_samples(api: Api) -> set[str]:
    return {
        api.call("POST", f"/api/v1/sites/{SITE}/samples",
                 {"camera": camera, "count": FRAMES // 2})["batch_id"]
        for camera in (CAMERA, "quarantine-1")
    }  # fmt: skip


def _samples(api: Api) -> int:
    for request in api.call("GET", f"/api/v1/sites/{SITE}/samples")["items"]:
        assert request["state"] != "failed", request  # the edge's reason, at once
    queue = api.call("GET", "/api/v1/labels/queue?state=all&limit=200")["items"]
    return sum(1 for i in queue if i["kind"] == "sample")


def _train(site: ModelSite, dataset: Path, out: Path) -> float:
    started = time.monotonic()
    trained = subprocess.run(
        [sys.executable, "-m", "central", "train", "--dataset", str(dataset), "--epochs", "1",
         "--imgsz", "64", "--batch", "16", "--device", "cpu", "--out", str(out)],
        env=site.env, capture_output=True, text=True, check=False, timeout=TRAIN_LIMIT_S + 60,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(900)  # 20 frames labelled in a browser, a training run; a busy box
def test_labelled_frames_become_a_model_on_the_edge(model_site: ModelSite) -> None:
    site = model_site
    # The former default model, registered the way it must be: its classes Normal and Fall
    # are both the `person` the camera's rule watches (the file's metadata says Normal/Fall).
    site.cli("model", "add", str(default_model_path()), "--name", "person", "--version", "1",
             "--classes", "Normal,Fall", "--class-map", "Normal=person,Fall=person")  # fmt: skip
    site.start_central()
    edge = site.edge_config()  # two cameras: the validation split takes whole camera-days
    # Alerts often enough to see a switch: short events that reopen while people stay.
    edge["cameras"][0]["detection"]["rules"][0].update(min_seconds=1, cooldown_s=2,
                                                       max_event_s=4)  # fmt: skip
    site.start_edge(edge)
    api = site.api
    wait(lambda: site.segments() >= 2, 120, "10 s recorded")

    # 1. Sample frames of the recordings, asked over the broker, uploaded as announced.
    asked = _ask_for_samples(api)
    # Alerts name the model that raised them, as the heartbeat names it.
    running = wait(api.camera_model, 60, "the heartbeat to name the model")
    alert = wait(lambda: _alert_by(api, running), 120, f"a {running} alert")
    assert alert["site_id"] == SITE and alert["frame"]["name"] == "frame.jpg"
    # Decoding 20 frames of the recordings takes seconds on a quiet box, minutes on a busy one.
    wait(lambda: _samples(api) >= FRAMES, 300, f"{FRAMES} sample frames at central")
    requests = api.call("GET", f"/api/v1/sites/{SITE}/samples")["items"]
    assert {(r["batch_id"], r["state"]) for r in requests} == {(b, "done") for b in asked}

    # 2. Twenty frames labelled in the page, 3. exported, 4. a tiny model trained.
    labelled = _label_in_the_page(api.base, site.admin_password)
    assert labelled["problems"] == [] and len(labelled["labelled"]) == FRAMES
    dataset = site.root / "dataset"
    site.cli("dataset", "export", "--classes", "person", "--out", str(dataset))
    manifest = json.loads((dataset / "manifest.json").read_text())
    images = manifest["counts"]["train"]["images"] + manifest["counts"]["val"]["images"]
    assert images == FRAMES and manifest["counts"]["train"]["boxes"]["person"] > 0
    assert any(i["source"] == "sample" for i in manifest["images"])
    assert manifest["counts"]["val"]["images"] > 0  # one camera-day of the two
    model_dir = site.root / "trained"
    train_s = _train(site, dataset, model_dir)
    assert train_s < TRAIN_LIMIT_S, train_s
    # The card says the class map and backend; `model add` takes them from it.
    site.cli("model", "add", str(model_dir / "model.onnx"), "--name", "loop", "--version",
             "1", "--card", str(model_dir / "card.json"))  # fmt: skip
    listed = {m["name"]: m for m in json.loads(site.cli("model", "list"))}
    assert (listed["loop"]["class_map"], listed["loop"]["backend"]) == ({"person": "person"},
                                                                        "onnx")  # fmt: skip

    # 5. A version reaches the real edge over the broker (on the alerting camera only, to
    # spare the box); the heartbeat names it, and so does the alert it raises at central:
    # its registry class map turns the file's Normal/Fall into the rule's `person`.
    api.call("POST", f"/api/v1/sites/{SITE}/models/install",
             {"name": "person", "version": "1", "cameras": [CAMERA]})  # fmt: skip
    wait(lambda: api.camera_model() == "person@1", 120, "person@1 in the heartbeat")
    installed = wait(lambda: _alert_by(api, "person@1"), 120, "an alert raised by person@1")
    assert installed["site_id"] == SITE and installed["camera_id"] == CAMERA
    _rollout(site, "loop", "1", "--sites", SITE)
    wait(lambda: api.camera_model() == "loop@1", 120, "the trained model in the heartbeat")

    # The heartbeat can name the new model before central has stored the edge's reply.
    def rollout_done() -> dict[str, Any] | None:
        status = _rollout(site, "loop", "1", "--status")
        return status if status["done"] == 1 else None

    status = wait(rollout_done, 60, "the rollout's reply")
    assert (status["sent"], status["done"], status["running"]) == (1, 1, 1), status

    # 6. One command back: the site runs person@1 again.
    _rollout(site, "loop", "1", "--back")
    wait(lambda: api.camera_model() == "person@1", 120, "person@1 after the rollback")
    assert site.all_alive(), "a process died"
    print(json.dumps({"train_seconds": round(train_s, 1), "frames": FRAMES}))
