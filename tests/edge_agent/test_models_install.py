"""Model install on the edge: signature, download checks, smoke test, switch, rollback, restore.

Central is stood in for by a small HTTP server on a real loopback socket that serves the
model file with HTTP Basic, as central's download route does.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.config import EdgeConfig
from edge_agent.credentials import Credential
from edge_agent.detection.detector import (
    Detection,
    Detector,
    default_model_path,
    default_models_dir,
    load_class_map,
    nanodet_model_path,
)
from edge_agent.errors import ModelError
from edge_agent.models.fetch import key_id
from edge_agent.models.installer import ModelInstaller
from edge_agent.models.shadow import ShadowTally
from edge_agent.models.smoke import smoke_test
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

    def watched_labels(self) -> set[str]:
        return {"person"}  # the camera's rules watch people


class Running:
    """The camera's configured model (never called by these tests' smoke runs)."""

    path = Path("/models/configured.onnx")

    def detect(self, frame: Any) -> list[Any]:
        return []

    def labels(self) -> set[str]:
        return {"person"}


def _setup(tmp_path: Path, url: str) -> tuple[ModelInstaller, Ed25519PrivateKey, Camera]:
    """A new central key (its public half in tmp_path) and an agent that trusts it."""
    key = Ed25519PrivateKey.generate()
    (tmp_path / "central.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    installer, camera = _agent(tmp_path, url)
    return installer, key, camera


def _agent(tmp_path: Path, url: str) -> tuple[ModelInstaller, Camera]:
    """An agent's installer over tmp_path's storage and key, with one camera (a new start)."""
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
    return ModelInstaller(config, {"cam1": camera}, index, LOGIN), camera


# The former default person model: its two classes are two postures of a person.
POSTURES = {"classes": ["Normal", "Fall"], "class_map": {"Normal": "person", "Fall": "person"}}


def _args(
    key: Ed25519PrivateKey,
    body: bytes,
    version: str = "1",
    classes: list[str] = POSTURES["classes"],  # type: ignore[assignment]
    class_map: dict[str, str | None] = POSTURES["class_map"],  # type: ignore[assignment]
    backend: str = "onnx",
    **over: Any,
) -> dict[str, Any]:
    sha = hashlib.sha256(body).hexdigest()
    signature = key.sign(signed_bytes("person", version, sha, classes, class_map, backend))
    args = {
        "name": "person",
        "version": version,
        "sha256": sha,
        "bytes": len(body),
        "classes": classes,
        "class_map": class_map,
        "backend": backend,
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
    installer.install(_args(key, served.body, "2", shadow=True))

    # A new agent: the configured model first, then the installed one put back, and the
    # shadow model on trial beside it again.
    again, camera2 = _agent(tmp_path, url)
    configured = camera2.detector
    again.start()
    try:
        assert again._thread is not None
        again._thread.join(timeout=120)  # the restore pass ends once every camera was tried
        assert again.camera_models() == {"cam1": "person@1"}
        assert camera2.shadow is not None and camera2.shadow[1].model == "person@2"
        assert again.rollback({"shadow": True}) == {"shadow_stopped": {"cam1": "person@2"}}
        assert again.rollback({})["rolled_back"] == {"cam1": None}
        assert camera2.detector is configured
    finally:
        again.stop()
    assert json.loads((tmp_path / "rec" / ".agent" / "models" / "shadow.json").read_text()) == {}

    # A model file altered on the box is not restored.
    again.install(_args(key, served.body))
    stored = tmp_path / "rec" / ".agent" / "models" / "person" / "1" / "model.onnx"
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    third, _ = _agent(tmp_path, url)
    third.start()
    assert third._thread is not None
    third._thread.join(timeout=60)  # the restore pass ends once every camera was tried
    assert not third._thread.is_alive()
    third.stop()
    assert third.camera_models() == {"cam1": "configured@local"}


def test_the_registry_class_map_wins_and_unusable_labels_are_refused(
    tmp_path: Path, central: tuple[str, type[Served]]
) -> None:
    url, served = central
    installer, key, camera = _setup(tmp_path, url)
    served.body = default_model_path().read_bytes()
    before = camera.detector
    # The file's metadata says Normal/Fall; the registry's names and map are what count.
    renamed = _args(key, served.body, classes=["standing", "fallen"],
                    class_map={"standing": "person", "fallen": None})  # fmt: skip
    result = installer.install(renamed)["smoke"]["cam1"]
    assert camera.detector is not None and camera.detector.labels() == {"person"}
    assert getattr(camera.detector, "names") == {0: "standing", 1: "fallen"}  # noqa: B009
    assert result["usable"] == ["person"] and set(result) >= {"compared", "agreement"}
    installed = camera.detector

    # A version whose classes all map to labels no rule of the camera watches is refused.
    blind = _args(key, served.body, "2", class_map={"Normal": "vehicle", "Fall": None})
    with pytest.raises(ModelError, match=r"\['vehicle'\] include none .* \(person\)"):
        installer.install(blind)
    assert camera.detector is installed and installer.camera_models() == {"cam1": "person@1"}
    # A class map changed in transit no longer matches central's signature.
    forged = dict(renamed, version="3", class_map={"standing": "person", "fallen": "person"})
    with pytest.raises(ModelError, match="does not verify"):
        installer.install(forged)
    installer.rollback({})
    assert camera.detector is before


def test_a_nanodet_layout_model_is_distributed_with_its_backend(
    tmp_path: Path, central: tuple[str, type[Served]]
) -> None:
    url, served = central
    installer, key, camera = _setup(tmp_path, url)
    coco = load_class_map(default_models_dir() / "coco.yaml")
    assert coco.names is not None
    served.body = nanodet_model_path().read_bytes()
    mapped = {name: label for name, label in coco.classes.items() if label}
    # Decoded as a YOLOv8 head, NanoDet's outputs do not fit its 80 classes: refused.
    with pytest.raises(ModelError, match="output has 165 classes but 80 class names"):
        installer.install(_args(key, served.body, classes=coco.names, class_map=mapped))
    nanodet = _args(key, served.body, "2", classes=coco.names, class_map=mapped,
                    backend="nanodet")  # fmt: skip
    result = installer.install(nanodet)
    assert result["installed"] == "person@2" and type(camera.detector).__name__ == "NanoDetDetector"
    assert camera.detector is not None and "person" in camera.detector.labels()


class Stub:
    """A detector that returns what it is told (or raises it)."""

    path = Path("/models/stub.onnx")

    def __init__(self, found: Any, labels: set[str] | None = None) -> None:
        self.found = found
        self._labels = labels or {"person"}

    def detect(self, frame: Any) -> Any:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    def labels(self) -> set[str]:
        return self._labels


def test_smoke_test_compares_and_refuses_errors_and_malformed_output() -> None:
    frames = [(np.zeros((36, 64, 3), np.uint8), f"seg-{i}.mp4") for i in range(2)]
    a, b = (
        Detection("person", 0.9, (0.1, 0.1, 0.4, 0.9)),
        Detection("person", 0.8, (0.6, 0.1, 0.9, 0.9)),
    )
    shifted = Detection("person", 0.7, (0.12, 0.1, 0.42, 0.9))  # IoU ~0.88 with `a`
    report = smoke_test("cam1", Stub([shifted]), Stub([a, b]), frames, {"person"})  # type: ignore[arg-type]
    assert report["compared"] == {"person": {"new": 2, "running": 4, "agree": 2}}
    assert report["agreement"] == 0.5 and report["frames"] == ["seg-0.mp4", "seg-1.mp4"]
    for found, why in (
        (RuntimeError("bad input"), "the new model failed: RuntimeError: bad input"),
        ([Detection("person", 0.5, (0.5, 0.5, 0.2, 0.9))], "is not inside the frame"),
        ([Detection("person", float("nan"), (0.1, 0.1, 0.2, 0.2))], "not a number in"),
        ([(1, 0.5, (0.1, 0.1, 0.2, 0.2))], "not a labelled detection"),
    ):
        with pytest.raises(ModelError, match=why):
            smoke_test("cam1", Stub(found), Stub([a]), frames, {"person"})  # type: ignore[arg-type]
