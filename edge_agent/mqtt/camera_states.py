"""Reports each camera's online/offline changes to central through the outbox (retained)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from edge_agent.mqtt.sink import CameraStateSink
from fsv_contract.payloads import CameraStatePayload

log = logging.getLogger(__name__)


class CameraStatus(Protocol):
    """What a recorder's status offers (edge_agent.recording.status.RecorderStatus)."""

    @property
    def camera(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def since(self) -> float: ...
    @property
    def reason(self) -> str: ...


# Camera id -> (name, station) from the edge config, sent with each state so central can
# list a camera by its name and station before any event of it arrives.
Identities = dict[str, tuple[str, str]]


def state_changes(
    reported: dict[str, str], statuses: Sequence[CameraStatus], identities: Identities | None = None
) -> list[CameraStatePayload]:
    """The online/offline changes not yet reported (updates `reported`); `starting` waits."""
    identities = identities or {}
    changes = []
    for status in statuses:
        if status.state not in ("online", "offline"):
            continue
        if reported.get(status.camera) == status.state:
            continue
        reported[status.camera] = status.state
        name, station = identities.get(status.camera, (None, None))
        changes.append(
            CameraStatePayload(
                camera=status.camera,
                state=status.state,
                since=datetime.fromtimestamp(status.since, UTC),
                reason=status.reason[:500],
                name=name,
                station=station,
            )
        )
    return changes


class CameraStateReporter:
    """Polls the recorders' status and puts every change into the outbox.

    Polling (every `interval_s`) keeps the recorders free of MQTT concerns; a change is
    reported within one interval. On stop, cameras last reported online are reported
    offline ("agent stopped"): nobody records them any more.
    """

    name = "camera-states"

    def __init__(
        self,
        sink: CameraStateSink,
        statuses: Callable[[], Sequence[CameraStatus]],
        interval_s: float = 1.0,
        identities: Identities | None = None,
    ) -> None:
        self.sink = sink
        self._statuses = statuses
        self._identities = identities or {}
        self.interval_s = interval_s
        self._reported: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; report the cameras that were online as offline."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        now = datetime.now(UTC)
        for camera, state in self._reported.items():
            if state == "online":
                name, station = self._identities.get(camera, (None, None))
                payload = CameraStatePayload(
                    camera=camera, state="offline", since=now, reason="agent stopped",
                    name=name, station=station,
                )  # fmt: skip
                self._put(payload)

    def poll(self) -> int:
        """Report what changed since the last poll; returns how many changes."""
        changes = state_changes(self._reported, self._statuses(), self._identities)
        for payload in changes:
            self._put(payload)
        return len(changes)

    def _put(self, payload: CameraStatePayload) -> None:
        try:
            self.sink.put_camera_state(payload)
        except Exception:  # noqa: BLE001 - keep polling; the next change is reported anyway
            log.exception("cannot queue the state of camera %s", payload.camera)
            self._reported.pop(payload.camera, None)  # report it again next poll

    def _loop(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a status read failing must not stop reporting
                log.exception("camera state poll failed")
            if self._stop.wait(self.interval_s):
                return
