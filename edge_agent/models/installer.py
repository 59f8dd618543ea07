"""Install a model central signed beside the running one, smoke-test it, switch, roll back.

Handles the `install_model` and `rollback_model` commands on the command worker thread.
The running model keeps running through every step; only a model that downloaded with the
signed hash, loaded, and ran on a recent recorded frame of each target camera replaces it.
Each camera keeps a stack of the detectors it ran before, so a rollback is instant.
The model is loaded with the decoder the command names (`backend`) and the registry's
class map (model class -> rule label), which wins over class names in the file. The smoke
test (models/smoke.py) runs it beside the running model on the same recent frames.
What each camera runs is written to `<models dir>/installed.json` and each camera's shadow
model to `shadow.json` (with the signed command arguments); both are put back at the next
start once the camera's own detector is up: the file is checked against the signed hash
again first, so a model altered on the box is refused.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
from edge_agent.models.frames import recent_frames
from edge_agent.models.shadow import ShadowTally
from edge_agent.models.smoke import smoke_test
from edge_agent.recording.index import SegmentIndex
from fsv_common.files import write_whole
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

    def watched_labels(self) -> set[str]:
        """The labels the camera's enabled rules watch."""
        ...


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
        self._shadow_args: dict[str, dict[str, Any]] = {}  # camera -> signed install args
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
            with self._lock:
                for cam in targets:
                    self.cameras[cam].shadow = (detector, ShadowTally(cam, label))
                    self._shadow_args[cam] = args.model_dump(mode="json")
                self._save()
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
            args.backend,
            path,
            installed_class_map(args),
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
        for name, data in (("installed.json", installed), ("shadow.json", self._shadow_args)):
            write_whole(self.dir / name, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)

    def _read(self, name: str) -> dict[str, Any]:
        try:
            saved = json.loads((self.dir / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.error(
                "%s: unreadable, cameras keep their configured models: %s", self.dir / name, e
            )
            return {}
        if not isinstance(saved, dict):
            log.error("%s: not a JSON object; nothing restored from it", self.dir / name)
            return {}
        return saved

    def _restore(self) -> None:
        loaded: dict[str, Detector] = {}
        self._restore_installed(loaded)
        self._restore_shadows(loaded)

    def _load_saved(
        self, cam: str, raw: Any, loaded: dict[str, Detector]
    ) -> InstallModelArgs | None:
        """The saved arguments, their model loaded into `loaded` (None if it cannot be)."""
        try:
            args = InstallModelArgs.model_validate(raw)
            key = model_label(args.name, args.version)
            if key not in loaded:
                loaded[key] = self._fetch_and_load(args, download_missing=False)
        except (ModelError, ValueError) as e:
            log.error("%s: saved model not restored: %s", cam, e)
            return None
        return args

    def _restore_shadows(self, loaded: dict[str, Detector]) -> None:
        for cam, raw in self._read("shadow.json").items():
            if cam not in self.cameras or self._stop.is_set():
                continue
            args = self._load_saved(cam, raw, loaded)
            if args is None:
                continue
            key = model_label(args.name, args.version)
            with self._lock:
                self.cameras[cam].shadow = (loaded[key], ShadowTally(cam, key))
                self._shadow_args[cam] = args.model_dump(mode="json")
            log.info("%s: shadow model %s restored", cam, key)

    def _restore_installed(self, loaded: dict[str, Detector]) -> None:
        for cam, raw in self._read("installed.json").items():
            if cam not in self.cameras:
                continue
            # The camera's own model first: it is what a rollback returns to.
            while self.cameras[cam].detector is None:
                if self._stop.wait(1.0):
                    return
            args = self._load_saved(cam, raw, loaded)
            if args is None:
                continue  # the configured model runs
            key = model_label(args.name, args.version)
            with self._lock:
                self._switch(cam, loaded[key], key, args.model_dump(mode="json"))
            log.info("%s: installed model %s restored", cam, key)

    def rollback(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Put each target camera's previous detector back."""
        args = RollbackModelArgs.model_validate(raw)
        targets = self._targets(args.cameras)
        if args.shadow:
            stopped = {}
            with self._lock:
                for cam in targets:
                    shadow = self.cameras[cam].shadow
                    stopped[cam] = shadow[1].model if shadow is not None else None
                    self.cameras[cam].shadow = None
                    self._shadow_args.pop(cam, None)
                self._save()
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
        frames = recent_frames(self.index, self.config.storage.path, camera)
        component = self.cameras[camera]
        return smoke_test(camera, detector, component.detector, frames, component.watched_labels())


def installed_class_map(args: InstallModelArgs) -> ClassMap:
    """The class map of a model central installed: its registry names win over those in
    the file, and its class map says which label each class is (unlisted ones are dropped).
    A command without a class map (an older central) keeps every class under its own name."""
    if not args.class_map:
        return ClassMap(names=args.classes, passthrough=True)
    return ClassMap(names=args.classes, names_first=True, classes=dict(args.class_map))


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
