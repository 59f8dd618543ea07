"""The whole model loop on real processes: label, export, train, distribute, alerts, back.

Mosquitto, `central-server run` and an edge agent recording the RTSP testbed. Central asks
the edge for 40 sample frames of its recordings; an inspector labels 40 frames of the queue
in the labelling page (headless Chromium); the dataset is exported and a tiny model trained
on the CPU; alerts name the model that raised them; the CLI rolls versions out to the site
over the broker, the heartbeat names each, and one command rolls back. (That an installed
version's own alerts carry its name is checked in tests/edge_agent: the person model
installed here raises no event on this footage within a test's time.) Refusal of a
corrupt or wrongly signed model, and restore after a restart, are in test_models_rollout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.detection.detector import default_model_path
from testbed.demo import SITE, camera_streams, central_config, edge_config, start_site_broker
from testbed.footage import Footage
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate
from testbed.rtsp import RtspServer
from tests.system.test_models_rollout import CAMERA, Api, _camera_model, _central, _segments, _wait

BROWSER = Path(__file__).resolve().parents[1] / "browser"
FRAMES = 40
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


def _rollout(config: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = _central(config, env, "model", "rollout", *args)
    return dict(json.loads(out[out.index("{") :]))


def _alert_by(api: Api, model: str, after: float) -> dict[str, Any] | None:
    items = api.call("GET", "/api/v1/alerts?limit=50")["items"]
    return next((a for a in items if a.get("model") == model and a["start"] > after), None)


@pytest.mark.slow
@pytest.mark.timeout(600)  # forty frames labelled by hand in a browser, then a training run
def test_labelled_frames_become_a_model_on_the_edge(tmp_path: Path, footage: Footage) -> None:
    root = tmp_path
    rtsp = RtspServer(camera_streams(footage))
    rtsp.start()
    site_broker = start_site_broker(root, SITE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        http_port = free_port()
        config = root / "central.yaml"
        central_cfg = central_config(root, http_port, site_broker.broker.port, site_broker.admin)
        config.write_text(yaml.safe_dump(central_cfg))
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": site_broker.central_password}
        accounts = json.loads(_central(config, env, "seed-demo", "--json", "--site",
                                       f"{SITE}=slaughter_a"))["users"]  # fmt: skip
        _central(config, env, "model", "add", str(default_model_path()), "--name", "person",
                 "--version", "1", "--classes", "person")  # fmt: skip
        public_key = root / "central-models.pem"
        public_key.write_text(_central(config, env, "model", "public-key"))
        procs.append(spawn_python(["-m", "central", "run", "-c", str(config)], env,
                                  root / "central.log"))  # fmt: skip
        _wait(lambda: port_accepts(http_port), 60, "central to listen")
        edge = edge_config(root, rtsp, site_broker.broker.port, f"http://127.0.0.1:{http_port}")
        # Two cameras: the dataset's validation split takes whole camera-days.
        rule = edge["cameras"][0]["detection"]["rules"][0]
        rule.update(min_seconds=2, cooldown_s=5)  # alerts come often enough to see a switch
        edge["mqtt"]["heartbeat_interval_s"] = 2
        edge["storage"]["segment_seconds"] = 10
        edge["models"] = {"public_key": str(public_key)}
        edge_yaml = root / "edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(edge))
        edge_env = {**os.environ, "EDGE_CRED_MQTT_USER": SITE,
                    "EDGE_CRED_MQTT_PASSWORD": site_broker.site_password}  # fmt: skip
        procs.append(spawn_python(["-m", "edge_agent", "run", "-c", str(edge_yaml)], edge_env,
                                  root / "edge-agent.log"))  # fmt: skip
        admin_password = next(a for a in accounts if a["username"] == "admin")["password"]
        api = Api(f"http://127.0.0.1:{http_port}", "admin", admin_password)
        _wait(lambda: _segments(root / "edge-state" / "index.db") >= 2, 120, "20 s recorded")

        # 1. Sample frames of the recordings, asked over the broker, uploaded as announced.
        asked = {
            api.call("POST", f"/api/v1/sites/{SITE}/samples",
                     {"camera": camera, "count": FRAMES // 2})["batch_id"]
            for camera in (CAMERA, "quarantine-1")
        }  # fmt: skip

        def samples() -> int:
            for request in api.call("GET", f"/api/v1/sites/{SITE}/samples")["items"]:
                assert request["state"] != "failed", request  # the edge's reason, at once
            queue = api.call("GET", "/api/v1/labels/queue?state=all&limit=200")["items"]
            return sum(1 for i in queue if i["kind"] == "sample")

        _wait(lambda: samples() >= FRAMES, 180, f"{FRAMES} sample frames at central")
        requests = api.call("GET", f"/api/v1/sites/{SITE}/samples")["items"]
        assert {(r["batch_id"], r["state"]) for r in requests} == {(b, "done") for b in asked}

        # 2. Forty frames labelled in the page, 3. exported, 4. a tiny model trained.
        labelled = _label_in_the_page(api.base, admin_password)
        assert labelled["problems"] == [] and len(labelled["labelled"]) == FRAMES
        dataset = root / "dataset"
        _central(config, env, "dataset", "export", "--classes", "person", "--out", str(dataset))
        manifest = json.loads((dataset / "manifest.json").read_text())
        images = manifest["counts"]["train"]["images"] + manifest["counts"]["val"]["images"]
        assert images == FRAMES and manifest["counts"]["train"]["boxes"]["person"] > 0
        assert any(i["source"] == "sample" for i in manifest["images"])
        assert manifest["counts"]["val"]["images"] > 0  # one camera-day of the two
        started = time.monotonic()
        model_dir = root / "trained"
        trained = subprocess.run(
            [sys.executable, "-m", "central", "train", "--dataset", str(dataset), "--epochs",
             "1", "--imgsz", "96", "--batch", "8", "--device", "cpu", "--out", str(model_dir)],
            env=env, capture_output=True, text=True, check=False, timeout=TRAIN_LIMIT_S + 60,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-3000:]
        train_s = time.monotonic() - started
        assert train_s < TRAIN_LIMIT_S, train_s
        _central(config, env, "model", "add", str(model_dir / "model.onnx"), "--name", "loop",
                 "--version", "1", "--classes", "person", "--card",
                 str(model_dir / "card.json"))  # fmt: skip

        # 5. Alerts name the model that raised them, as the heartbeat names it; versions
        # reach the real edge over the broker and the heartbeat names each.
        running = _camera_model(api)
        alert = _wait(lambda: _alert_by(api, str(running), 0.0), 120, f"a {running} alert")
        assert alert["site_id"] == SITE and alert["frame"]["name"] == "frame.jpg"
        _rollout(config, env, "person", "1", "--sites", SITE)
        _wait(lambda: _camera_model(api) == "person@1", 120, "person@1 in the heartbeat")
        _rollout(config, env, "loop", "1", "--sites", SITE)
        _wait(lambda: _camera_model(api) == "loop@1", 120, "the trained model in the heartbeat")

        # The heartbeat can name the new model before central has stored the edge's reply.
        def rollout_done() -> dict[str, Any] | None:
            status = _rollout(config, env, "loop", "1", "--status")
            return status if status["done"] == 1 else None

        status = _wait(rollout_done, 60, "the rollout's reply")
        assert (status["sent"], status["done"], status["running"]) == (1, 1, 1), status

        # 6. One command back: the site runs person@1 again.
        _rollout(config, env, "loop", "1", "--back")
        _wait(lambda: _camera_model(api) == "person@1", 120, "person@1 after the rollback")
        assert all(p.poll() is None for p in procs), "a process died"
        print(json.dumps({"train_seconds": round(train_s, 1), "frames": FRAMES}))
    finally:
        for proc in reversed(procs):
            terminate(proc, 20)
        site_broker.broker.close()
        rtsp.close()
