"""Model rollout end to end on real processes: mosquitto, central, an edge agent over RTSP.

Central registers signed versions; the edge installs one when told, refuses a corrupt or
wrongly signed one while the running model keeps running, and rolls back on command.
"""

from __future__ import annotations

import base64
import time
import urllib.error
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.detection.detector import default_model_path
from fsv_contract.models import signed_bytes
from testbed.central_rows import CentralRows
from testbed.demo import SITE
from tests.system.model_site import CAMERA, Api, ModelSite, wait

# The former default person model: two postures of a person, as the registry maps them.
POSTURES = ("--classes", "Normal,Fall", "--class-map", "Normal=person,Fall=person")


def _reply(api: Api, request_id: str) -> dict[str, Any] | None:
    state = api.call("GET", f"/api/v1/sites/{SITE}/models")
    for item in state["rollouts"]:
        if item["request_id"] == request_id and item["state"] != "sent":
            return dict(item)
    return None


def _register_versions(site: ModelSite) -> None:
    model = str(default_model_path())
    for version in ("1", "2", "3", "4"):
        site.cli("model", "add", model, "--name", "person", "--version", version, *POSTURES)
    # Version 3's stored file is damaged after registration (a bad disk, a tampered copy).
    stored = site.data_dir / "models" / "person" / "3" / "model.onnx"
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    stored.write_bytes(bytes(blob))
    # Version 4's registry entry carries a signature by a key the edge does not trust.
    central = CentralRows(site.database, site.data_dir)
    sha = central.query("select sha256 from models where version = '4'")[0][0]
    body = signed_bytes("person", "4", sha, ["Normal", "Fall"],
                        {"Normal": "person", "Fall": "person"}, "onnx")  # fmt: skip
    forged = Ed25519PrivateKey.generate().sign(body)
    central.execute("update models set signature = ? where version = '4'",
                    [base64.b64encode(forged).decode()])  # fmt: skip


@pytest.mark.slow
def test_install_refuse_and_roll_back_on_a_real_edge(model_site: ModelSite) -> None:
    site = model_site
    _register_versions(site)
    site.start_central()
    site.start_edge(site.edge_config(cameras=[CAMERA]))
    api = site.api
    shipped = wait(api.camera_model, 120, "the heartbeat to name the model")
    assert shipped.endswith("@local"), shipped
    # The smoke test runs on a recorded frame: wait for the first sealed segment.
    wait(site.segments, 120, "a recorded segment")

    def install(version: str) -> dict[str, Any]:
        sent = api.call("POST", f"/api/v1/sites/{SITE}/models/install",
                        {"name": "person", "version": version})  # fmt: skip
        reply = wait(lambda: _reply(api, sent["request_id"]), 120, f"reply to v{version}")
        assert reply is not None
        return reply

    for version in ("1", "2"):
        reply = install(version)
        assert reply["state"] == "done", reply
        assert reply["result"]["installed"] == f"person@{version}"
        smoke = reply["result"]["smoke"][CAMERA]
        assert smoke["frame"].endswith(".mp4") and smoke["usable"] == ["person"], reply
        wait(lambda v=version: api.camera_model() == f"person@{v}", 60, f"v{version} runs")

    corrupt = install("3")
    assert corrupt["state"] == "failed" and "SHA-256" in corrupt["error"], corrupt
    forged = install("4")
    assert forged["state"] == "failed" and "signature" in forged["error"], forged
    time.sleep(5)  # a few heartbeats later the running model is still version 2
    assert api.camera_model() == "person@2"
    assert not (site.root / "edge-state" / "models" / "person" / "3" / "model.onnx").exists()

    sent = api.call("POST", f"/api/v1/sites/{SITE}/models/rollback", {})
    back = wait(lambda: _reply(api, sent["request_id"]), 120, "the rollback reply")
    assert back["state"] == "done" and back["result"]["rolled_back"] == {CAMERA: "person@1"}
    wait(lambda: api.camera_model() == "person@1", 60, "v1 runs again")
    assert site.all_alive(), "a process died"

    # The installed version survives a restart of the agent (checked against its hash).
    site.stop_edge()
    log = site.start_edge(log="edge-agent-2.log")
    wait(lambda: "installed model person@1 restored" in log.read_text(), 120, "restore")
    wait(lambda: api.camera_model() == "person@1", 60, "v1 after the restart")
    audit = api.call("GET", "/api/v1/audit?limit=1000")["items"]
    actions = [e["action"] for e in audit if e["target"] == f"site:{SITE}"]
    assert actions.count("model_install") == 4 and actions.count("model_rollback") == 1
    # An edge login is needed for the download; a user's token is not enough.
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.call("GET", "/api/v1/edge/model?name=person&version=2")
    assert refused.value.code == 401
