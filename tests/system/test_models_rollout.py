"""Model rollout end to end on real processes: mosquitto, central, an edge agent over RTSP.

Central registers signed versions; the edge installs one when told, refuses a corrupt or
wrongly signed one while the running model keeps running, and rolls back on command.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.detection.detector import default_model_path
from fsv_contract.models import signed_bytes
from testbed.demo import SITE, camera_streams, central_config, edge_config, start_site_broker
from testbed.footage import Footage
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate
from testbed.rtsp import RtspServer

REPO = Path(__file__).resolve().parents[2]
CAMERA = "disposal-1"


class Api:
    """Central's API as the admin."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        body = {"username": username, "password": password, "kind": "bearer"}
        login = self.call("POST", "/api/v1/auth/login", body)
        self.token = login["token"]

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if getattr(self, "token", None):
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def _central(config: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "central", *args, "-c", str(config)],
        env=env, capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def _rollout(api: Api, request_id: str) -> dict[str, Any] | None:
    state = api.call("GET", f"/api/v1/sites/{SITE}/models")
    for item in state["rollouts"]:
        if item["request_id"] == request_id and item["state"] != "sent":
            return dict(item)
    return None


def _camera_model(api: Api) -> str | None:
    value = api.call("GET", f"/api/v1/sites/{SITE}/models")["cameras"].get(CAMERA)
    return str(value) if value else None


def _segments(index: Path) -> int:
    if not index.exists():
        return 0
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5)
    try:
        return int(
            db.execute("select count(*) from segments where camera = ?", [CAMERA]).fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _register_versions(config: Path, env: dict[str, str], data_dir: Path) -> None:
    model = str(default_model_path())
    for version in ("1", "2", "3", "4"):
        _central(config, env, "model", "add", model, "--name", "person", "--version", version,
                 "--classes", "person")  # fmt: skip
    # Version 3's stored file is damaged after registration (a bad disk, a tampered copy).
    stored = data_dir / "models" / "person" / "3" / "model.onnx"
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    stored.write_bytes(bytes(blob))
    # Version 4's registry entry carries a signature by a key the edge does not trust.
    db = sqlite3.connect(data_dir / "central.db")
    sha = db.execute("select sha256 from models where version = '4'").fetchone()[0]
    forged = Ed25519PrivateKey.generate().sign(signed_bytes("person", "4", sha, ["person"]))
    db.execute("update models set signature = ? where version = '4'",
               [base64.b64encode(forged).decode()])  # fmt: skip
    db.commit()
    db.close()


@pytest.mark.slow
def test_install_refuse_and_roll_back_on_a_real_edge(tmp_path: Path, footage: Footage) -> None:
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
        data_dir = Path(central_cfg["data_dir"])
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": site_broker.central_password}
        accounts = json.loads(_central(config, env, "seed-demo", "--json", "--site",
                                       f"{SITE}=slaughter_a"))["users"]  # fmt: skip
        _register_versions(config, env, data_dir)
        public_key = root / "central-models.pem"
        public_key.write_text(_central(config, env, "model", "public-key"))

        procs.append(spawn_python(["-m", "central", "run", "-c", str(config)], env,
                                  root / "central.log"))  # fmt: skip
        _wait(lambda: port_accepts(http_port), 60, "central to listen")
        edge = edge_config(root, rtsp, site_broker.broker.port, f"http://127.0.0.1:{http_port}")
        edge["cameras"] = [c for c in edge["cameras"] if c["id"] == CAMERA]
        edge["mqtt"]["heartbeat_interval_s"] = 2
        edge["storage"]["segment_seconds"] = 10
        edge["models"] = {"public_key": str(public_key)}
        edge_yaml = root / "edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(edge))
        edge_env = {**os.environ, "EDGE_CRED_MQTT_USER": SITE,
                    "EDGE_CRED_MQTT_PASSWORD": site_broker.site_password}  # fmt: skip
        procs.append(spawn_python(["-m", "edge_agent", "run", "-c", str(edge_yaml)], edge_env,
                                  root / "edge-agent.log"))  # fmt: skip

        admin = next(a for a in accounts if a["username"] == "admin")
        api = Api(f"http://127.0.0.1:{http_port}", "admin", admin["password"])
        shipped = _wait(lambda: _camera_model(api), 120, "the heartbeat to name the model")
        assert shipped.endswith("@local"), shipped
        # The smoke test runs on a recorded frame: wait for the first sealed segment.
        _wait(lambda: _segments(root / "edge-state" / "index.db"), 120, "a recorded segment")

        def install(version: str) -> dict[str, Any]:
            sent = api.call("POST", f"/api/v1/sites/{SITE}/models/install",
                            {"name": "person", "version": version})  # fmt: skip
            reply = _wait(lambda: _rollout(api, sent["request_id"]), 120, f"reply to v{version}")
            assert reply is not None
            return reply

        for version in ("1", "2"):
            reply = install(version)
            assert reply["state"] == "done", reply
            assert reply["result"]["installed"] == f"person@{version}"
            assert reply["result"]["smoke"][CAMERA]["frame"].endswith(".mp4"), reply
            _wait(lambda v=version: _camera_model(api) == f"person@{v}", 60, f"v{version} runs")

        corrupt = install("3")
        assert corrupt["state"] == "failed" and "SHA-256" in corrupt["error"], corrupt
        forged = install("4")
        assert forged["state"] == "failed" and "signature" in forged["error"], forged
        time.sleep(5)  # a few heartbeats later the running model is still version 2
        assert _camera_model(api) == "person@2"
        assert not (root / "edge-state" / "models" / "person" / "3" / "model.onnx").exists()

        sent = api.call("POST", f"/api/v1/sites/{SITE}/models/rollback", {})
        back = _wait(lambda: _rollout(api, sent["request_id"]), 120, "the rollback reply")
        assert back["state"] == "done" and back["result"]["rolled_back"] == {CAMERA: "person@1"}
        _wait(lambda: _camera_model(api) == "person@1", 60, "v1 runs again")
        assert all(p.poll() is None for p in procs), "a process died"

        # The installed version survives a restart of the agent (checked against its hash).
        terminate(procs.pop(), 20)
        log = root / "edge-agent-2.log"
        procs.append(spawn_python(["-m", "edge_agent", "run", "-c", str(edge_yaml)], edge_env,
                                  log))  # fmt: skip
        _wait(lambda: "installed model person@1 restored" in log.read_text(), 120, "restore")
        _wait(lambda: _camera_model(api) == "person@1", 60, "v1 after the restart")
        audit = api.call("GET", "/api/v1/audit?limit=1000")["items"]
        actions = [e["action"] for e in audit if e["target"] == f"site:{SITE}"]
        assert actions.count("model_install") == 4 and actions.count("model_rollback") == 1
        # An edge login is needed for the download; a user's token is not enough.
        with pytest.raises(urllib.error.HTTPError) as refused:
            api.call("GET", "/api/v1/edge/model?name=person&version=2")
        assert refused.value.code == 401
    finally:
        for proc in reversed(procs):
            terminate(proc, 20)
        site_broker.broker.close()
        rtsp.close()
