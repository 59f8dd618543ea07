"""Model install on the edge: signature, download checks, smoke test, switch, rollback, restore.

Central is stood in for by a small HTTP server on a real loopback socket that serves the
model file with HTTP Basic, as central's download route does.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.config import EdgeConfig
from edge_agent.credentials import Credential
from edge_agent.detection.detector import Detector, default_model_path
from edge_agent.errors import ModelError
from edge_agent.models.fetch import key_id
from edge_agent.models.installer import ModelInstaller
from edge_agent.models.shadow import ShadowTally
from edge_agent.recording.index import SegmentIndex
from fsv_contract.models import InstallModelArgs, signed_bytes

LOGIN = Credential("site-1", "site-password")


class Served:
    """The bytes the server hands out for any model download."""

    body = b""


@pytest.fixture
def central(tmp_path: Path) -> Iterator[tuple[str, type[Served]]]:
    expected = "Basic " + base64.b64encode(b"site-1:site-password").decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(Served.body)))
            self.end_headers()
            self.wfile.write(Served.body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Served
    server.shutdown()
    server.server_close()


class Camera:
    """A detection component as the installer sees it: something holding a detector."""

    def __init__(self, detector: Detector | None) -> None:
        self.detector = detector
        self.installed_label: str | None = None
        self.shadow: tuple[Detector, ShadowTally] | None = None


class Running:
    """The camera's configured model (never called by these tests' smoke runs)."""

    path = Path("/models/configured.onnx")

    def detect(self, frame: Any) -> list[Any]:
        return []

    def labels(self) -> set[str]:
        return {"person"}


def _setup(tmp_path: Path, url: str) -> tuple[ModelInstaller, Ed25519PrivateKey, Camera]:
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "central.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = EdgeConfig.model_validate(
        {
            "site_id": "site-1",
            "storage": {"path": str(tmp_path / "rec")},
            "central_url": url,
            "models": {"public_key": str(pem)},
        }
    )
    camera = Camera(Running())
    index = SegmentIndex(config.state_dir / "index.db")
    return ModelInstaller(config, {"cam1": camera}, index, LOGIN), key, camera


def _args(key: Ed25519PrivateKey, body: bytes, version: str = "1", **over: Any) -> dict[str, Any]:
    sha = hashlib.sha256(body).hexdigest()
    signature = key.sign(signed_bytes("person", version, sha, ["person"]))
    args = {
        "name": "person",
        "version": version,
        "sha256": sha,
        "bytes": len(body),
        "classes": ["person"],
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(signature).decode(),
        **over,
    }
    return InstallModelArgs.model_validate(args).model_dump(mode="json")


def test_install_switches_and_rollback_restores(
    tmp_path: Path, central: tuple[str, type[Served]]
) -> None:
    url, served = central
    installer, key, camera = _setup(tmp_path, url)
    served.body = default_model_path().read_bytes()
    before = camera.detector
    assert installer.camera_models() == {"cam1": "configured@local"}

    result = installer.install(_args(key, served.body))
    assert result["installed"] == "person@1"
    # Nothing recorded yet: the smoke test ran the model on a blank frame.
    assert result["smoke"]["cam1"]["frame"].startswith("blank")
    assert camera.detector is not before and installer.camera_models() == {"cam1": "person@1"}
    assert camera.installed_label == "person@1"  # what the camera's events will carry
    installed = tmp_path / "rec" / ".agent" / "models" / "installed.json"
    assert '"person"' in installed.read_text()

    back = installer.rollback({})
    assert back["rolled_back"] == {"cam1": None} and camera.detector is before
    assert camera.installed_label is None

    # In shadow the verified model runs beside the current one; nothing is switched.
    trial = installer.install(_args(key, served.body, "2", shadow=True))
    assert trial["shadow"] == "person@2" and camera.detector is before
    assert camera.shadow is not None and camera.shadow[1].model == "person@2"
    assert installer.camera_models() == {"cam1": "configured@local"}
    assert '"2"' not in installed.read_text()  # a trial is not what the camera runs
    stopped = installer.rollback({"shadow": True})
    assert stopped == {"shadow_stopped": {"cam1": "person@2"}} and camera.shadow is None
    assert camera.detector is before
    assert installed.read_text().strip() == "{}"
    with pytest.raises(ModelError, match="no earlier model"):
        installer.rollback({})


def test_refusals_keep_the_running_model_and_say_why(
    tmp_path: Path, central: tuple[str, type[Served]]
) -> None:
    url, served = central
    installer, key, camera = _setup(tmp_path, url)
    before = camera.detector
    served.body = b"not the model that was signed"
    good = default_model_path().read_bytes()

    with pytest.raises(ModelError, match="SHA-256"):
        installer.install(_args(key, good))  # the server sends other bytes
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ModelError, match="signed by key"):
        installer.install(_args(other, good))
    forged = _args(other, good, key_id=key_id(key.public_key()))
    with pytest.raises(ModelError, match="does not verify"):
        installer.install(forged)
    served.body = good + b"tail"
    with pytest.raises(ModelError, match="larger than"):
        installer.install(_args(key, good))
    with pytest.raises(ModelError, match="no detecting camera cam9"):
        installer.install(_args(key, good, cameras=["cam9"]))
    # A signed, intact file that is no model: loading fails, nothing switches.
    junk = b"\x00" * 64
    served.body = junk
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        installer.install(_args(key, junk, version="2"))
    assert camera.detector is before
    assert not list((tmp_path / "rec" / ".agent" / "models").glob("**/*.part"))


def test_restore_after_restart_checks_the_file_again(
    tmp_path: Path, central: tuple[str, type[Served]]
) -> None:
    url, served = central
    installer, key, camera = _setup(tmp_path, url)
    served.body = default_model_path().read_bytes()
    installer.install(_args(key, served.body))

    # A new agent: the configured model first, then the installed one put back.
    again, _, camera2 = _setup_same_key(tmp_path, url, key)
    configured = camera2.detector
    again.start()
    try:
        for _ in range(100):
            if again.camera_models() == {"cam1": "person@1"}:
                break
            threading.Event().wait(0.1)
        assert again.camera_models() == {"cam1": "person@1"}
        assert again.rollback({})["rolled_back"] == {"cam1": None}
        assert camera2.detector is configured
    finally:
        again.stop()

    # A model file altered on the box is not restored.
    again.install(_args(key, served.body))
    stored = tmp_path / "rec" / ".agent" / "models" / "person" / "1" / "model.onnx"
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    third, _, camera3 = _setup_same_key(tmp_path, url, key)
    third.start()
    assert third._thread is not None
    third._thread.join(timeout=60)  # the restore pass ends once every camera was tried
    assert not third._thread.is_alive()
    third.stop()
    assert third.camera_models() == {"cam1": "configured@local"}


def _setup_same_key(
    tmp_path: Path, url: str, key: Ed25519PrivateKey
) -> tuple[ModelInstaller, Ed25519PrivateKey, Camera]:
    config = EdgeConfig.model_validate(
        {
            "site_id": "site-1",
            "storage": {"path": str(tmp_path / "rec")},
            "central_url": url,
            "models": {"public_key": str(tmp_path / "central.pem")},
        }
    )
    camera = Camera(Running())
    index = SegmentIndex(config.state_dir / "index.db")
    return ModelInstaller(config, {"cam1": camera}, index, LOGIN), key, camera
