"""Install a model central signed beside the running one, smoke-test it, switch, roll back.

Handles the `install_model` and `rollback_model` commands on the command worker thread.
The running model keeps running through every step; only a model that downloaded with the
signed hash, loaded, and ran on a recent recorded frame of each target camera replaces it.
Each camera keeps a stack of the detectors it ran before, so a rollback is instant.
What each camera runs is written to `<models dir>/installed.json` (with the signed command
arguments), and put back at the next start once the camera's own detector is up: the file
is checked against the signed hash again first, so a model altered on the box is refused.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_agent.config import EdgeConfig
from edge_agent.credentials import Credential, CredentialStore
from edge_agent.detection.detector import ClassMap, Detector, load_detector
from edge_agent.errors import EdgeAgentError, ModelError
from edge_agent.models.fetch import (
    check_signature,
    download,
    file_matches,
    load_public_key,
)
from edge_agent.models.frames import recent_frame
from edge_agent.models.shadow import ShadowTally
from edge_agent.recording.index import SegmentIndex
from fsv_contract.models import (
    VERB_INSTALL_MODEL,
    VERB_ROLLBACK_MODEL,
    InstallModelArgs,
    RollbackModelArgs,
    model_label,
)

log = logging.getLogger(__name__)


class DetectingCamera(Protocol):
    """What the installer needs of a camera's detection component: its detector, and the
    label of the model central installed (None: its own)."""

    detector: Detector | None
    installed_label: str | None
    shadow: tuple[Detector, ShadowTally] | None


class Registrar(Protocol):
    """The command dispatcher."""

    def register(self, verb: str, handler: Any) -> None:
        """Handle `verb` with `handler`."""
        ...


@dataclass
class CameraModels:
    """One camera's current model label and the (detector, label) pairs it ran before."""

    label: str | None = None
    args: dict[str, Any] | None = None  # the signed install arguments of the current model
    previous: list[tuple[Detector, str | None, dict[str, Any] | None]] = field(default_factory=list)


class ModelInstaller:
    """Turns install/rollback commands into detector switches on the cameras."""

    name = "model-installer"

    def __init__(
        self,
        config: EdgeConfig,
        cameras: dict[str, DetectingCamera],
        index: SegmentIndex,
        login: Credential,
    ) -> None:
        if config.models is None:
            raise EdgeAgentError("no `models` section: model installs are off")
        self.config = config
        self.cameras = cameras
        self.index = index
        self.login = login
        self.dir = config.models.dir or config.state_dir / "models"
        self._lock = threading.Lock()
        self._models: dict[str, CameraModels] = {c: CameraModels() for c in cameras}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Put back, in the background, the models installed before the last stop."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._restore, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop restoring (installs run on the command thread, not here)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def register(self, commands: Registrar) -> None:
        """Handle `install_model` and `rollback_model`."""
        commands.register(VERB_INSTALL_MODEL, self.install)
        commands.register(VERB_ROLLBACK_MODEL, self.rollback)

    def camera_models(self) -> dict[str, str | None]:
        """What each camera's detection runs now (`name@version`; `file@local` if unmanaged)."""
        out: dict[str, str | None] = {}
        with self._lock:
            for cam, component in self.cameras.items():
                detector = component.detector
                label = self._models[cam].label
                if label is None and detector is not None:
                    label = model_label(Path(detector.path).stem.lower()[:64], "local")
                out[cam] = label if detector is not None else None
        return out

    def install(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Download, verify, load, smoke-test and switch; ModelError (the reply) otherwise."""
        args = InstallModelArgs.model_validate(raw)
        targets = self._targets(args.cameras)
        detector = self._fetch_and_load(args, download_missing=True)
        smoke = {cam: self._smoke(cam, detector) for cam in targets}
        label = model_label(args.name, args.version)
        if args.shadow:
            for cam in targets:
                self.cameras[cam].shadow = (detector, ShadowTally(cam, label))
            log.info("model %s runs in shadow on %s (sha256 %s)", label, targets, args.sha256)
            return {"shadow": label, "cameras": targets, "sha256": args.sha256, "smoke": smoke}
        with self._lock:
            for cam in targets:
                self._switch(cam, detector, label, args.model_dump(mode="json"))
            self._save()
        log.info("model %s installed on %s (sha256 %s)", label, targets, args.sha256)
        return {"installed": label, "cameras": targets, "sha256": args.sha256, "smoke": smoke}

    def _fetch_and_load(self, args: InstallModelArgs, download_missing: bool) -> Detector:
        if self.config.central_url is None:
            raise ModelError("no central_url configured: cannot download models")
        assert self.config.models is not None
        check_signature(args, load_public_key(self.config.models.public_key))
        if args.bytes > self.config.models.max_bytes:
            raise ModelError(
                f"model {args.name} {args.version}: {args.bytes} bytes is over "
                f"models.max_bytes ({self.config.models.max_bytes})"
            )
        path = self.dir / args.name / args.version / "model.onnx"
        if not file_matches(path, args.sha256):
            if not download_missing:
                raise ModelError(f"{path} is missing or no longer has the signed SHA-256")
            ca_file = self.config.mqtt.upload.ca_file if self.config.mqtt else None
            download(self.config.central_url, self.login, args, path, ca_file)
        settings = self.config.detection
        return load_detector(
            "onnx",
            path,
            ClassMap(names=args.classes, passthrough=True),
            settings.confidence,
            settings.iou,
            settings.threads,
        )

    def _switch(
        self, cam: str, detector: Detector, label: str, args: dict[str, Any] | None
    ) -> None:
        state, component = self._models[cam], self.cameras[cam]
        if component.detector is not None:
            state.previous.append((component.detector, state.label, state.args))
        component.detector = detector
        component.installed_label = label
        state.label, state.args = label, args

    def _save(self) -> None:
        installed = {cam: m.args for cam, m in self._models.items() if m.args is not None}
        self.dir.mkdir(parents=True, exist_ok=True)
        temp = self.dir / "installed.json.part"
        temp.write_text(json.dumps(installed, indent=2) + "\n", encoding="utf-8")
        temp.replace(self.dir / "installed.json")

    def _restore(self) -> None:
        try:
            saved = json.loads((self.dir / "installed.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("%s: unreadable, cameras keep their configured models: %s", self.dir, e)
            return
        loaded: dict[str, Detector] = {}
        for cam, raw in saved.items():
            if cam not in self.cameras:
                continue
            # The camera's own model first: it is what a rollback returns to.
            while self.cameras[cam].detector is None:
                if self._stop.wait(1.0):
                    return
            try:
                args = InstallModelArgs.model_validate(raw)
                key = model_label(args.name, args.version)
                if key not in loaded:
                    loaded[key] = self._fetch_and_load(args, download_missing=False)
            except (ModelError, ValueError) as e:
                log.error("%s: installed model not restored, configured one runs: %s", cam, e)
                continue
            with self._lock:
                self._switch(cam, loaded[key], key, args.model_dump(mode="json"))
            log.info("%s: installed model %s restored", cam, key)

    def rollback(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Put each target camera's previous detector back."""
        args = RollbackModelArgs.model_validate(raw)
        targets = self._targets(args.cameras)
        if args.shadow:
            stopped = {}
            for cam in targets:
                shadow = self.cameras[cam].shadow
                stopped[cam] = shadow[1].model if shadow is not None else None
                self.cameras[cam].shadow = None
            log.info("shadow models stopped: %s", stopped)
            return {"shadow_stopped": stopped}
        with self._lock:
            empty = [c for c in targets if not self._models[c].previous]
            if empty:
                raise ModelError(f"no earlier model to roll back to on {', '.join(empty)}")
            restored: dict[str, str | None] = {}
            for cam in targets:
                state = self._models[cam]
                detector, label, earlier = state.previous.pop()
                self.cameras[cam].detector = detector
                self.cameras[cam].installed_label = label
                state.label, state.args = label, earlier
                restored[cam] = label
            self._save()
        log.info("models rolled back: %s", restored)
        return {"rolled_back": restored, "now": self.camera_models()}

    def _targets(self, cameras: list[str]) -> list[str]:
        wanted = cameras or sorted(self.cameras)
        unknown = [c for c in wanted if c not in self.cameras]
        if unknown:
            raise ModelError(f"no detecting camera {', '.join(unknown)} on this site")
        if not wanted:
            raise ModelError("this site has no camera with detection")
        return wanted

    def _smoke(self, camera: str, detector: Detector) -> dict[str, Any]:
        frame, source = recent_frame(self.index, self.config.storage.path, camera)
        if frame is None:
            # Nothing recorded yet: the model must at least run on a blank frame.
            frame = np.zeros((360, 640, 3), dtype=np.uint8)
        try:
            found = detector.detect(frame)
        except Exception as e:  # noqa: BLE001 - any failure of a new model refuses it
            raise ModelError(f"smoke test on {camera} failed: {e}") from e
        return {"frame": source, "detections": len(found)}


def build_installer(
    config: EdgeConfig,
    components: list[Any],
    index: SegmentIndex,
    credentials: CredentialStore,
    commands: Registrar | None,
) -> ModelInstaller | None:
    """The installer, registered on the dispatcher; None without `models`, MQTT or detection."""
    from edge_agent.detection.pipeline import CameraDetection

    if config.models is None or config.mqtt is None or commands is None:
        return None
    cameras: dict[str, DetectingCamera] = {
        c.camera.id: c for c in components if isinstance(c, CameraDetection)
    }
    installer = ModelInstaller(config, cameras, index, credentials.get(config.mqtt.credential))
    installer.register(commands)
    return installer
