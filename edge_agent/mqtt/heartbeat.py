"""The heartbeat: disk, retention outlook, CPU and per-camera rates, at QoS 0 every interval."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psutil

from fsv_contract import topics
from fsv_contract.codec import encode
from fsv_contract.errors import InvalidPayload
from fsv_contract.lanes import split_lane
from fsv_contract.payloads import (
    CameraDetectionStatus,
    CameraStats,
    HeartbeatPayload,
    LaneStats,
    ShadowStats,
    UplinkStats,
)

log = logging.getLogger(__name__)


class CameraFigures(Protocol):
    """What a recorder's status offers (edge_agent.recording.status.RecorderStatus)."""

    @property
    def camera(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def fps(self) -> float: ...
    @property
    def bitrate_bps(self) -> float: ...
    @property
    def last_segment_end(self) -> float | None: ...


class StorageFigures(Protocol):
    """What the retention cleaner's forecast offers (retention.forecast.StorageForecast)."""

    @property
    def days_forecast(self) -> float | None: ...
    @property
    def at_risk(self) -> bool: ...


class Publisher(Protocol):
    """QoS 0 publishing of the MQTT link."""

    def publish_now(self, topic: str, payload: bytes) -> bool:
        """Publish if connected; False if not."""
        ...


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def build_heartbeat(
    now: float,
    started: float,
    disk: tuple[int, int],
    storage: StorageFigures | None,
    cameras: Sequence[CameraFigures],
    cpu_percent: float,
    memory_percent: float | None,
    pending: tuple[int, int],
) -> HeartbeatPayload:
    """The heartbeat payload from plain figures (disk = (total, free); pending = outbox, media)."""
    stats = [
        CameraStats(
            camera=c.camera,
            state=c.state if c.state in ("online", "offline") else "unknown",
            fps=max(0.0, c.fps),
            bitrate_bps=max(0.0, c.bitrate_bps),
            last_segment_end=_utc(c.last_segment_end),
        )
        for c in cameras
    ]
    days = storage.days_forecast if storage is not None else None
    return HeartbeatPayload(
        ts=datetime.fromtimestamp(now, UTC),
        uptime_s=max(0.0, now - started),
        disk_total_bytes=disk[0],
        disk_free_bytes=disk[1],
        retention_days_available=None if days is None else max(0.0, days),
        retention_at_risk=bool(storage.at_risk) if storage is not None else False,
        cpu_percent=cpu_percent,
        memory_percent=memory_percent,
        outbox_pending=pending[0],
        media_pending=pending[1],
        cameras=stats,
    )


class LaneFigures(CameraFigures, Protocol):
    """A sub lane recorder's status: the figures and why it is not recording, if it is not."""

    @property
    def reason(self) -> str: ...


def with_sub_lanes(payload: HeartbeatPayload, lanes: Sequence[LaneFigures]) -> HeartbeatPayload:
    """The heartbeat with each recorded sub lane's figures under its camera (`sub`)."""
    by_camera = {split_lane(f.camera)[0]: f for f in lanes}
    if not by_camera:
        return payload
    cameras = [
        c.model_copy(update={"sub": _lane(f)}) if (f := by_camera.get(c.camera)) else c
        for c in payload.cameras
    ]
    return payload.model_copy(update={"cameras": cameras})


def _lane(f: LaneFigures) -> LaneStats:
    state = f.state if f.state in ("online", "offline") else "unknown"
    return LaneStats(
        state=state,
        fps=max(0.0, f.fps),
        bitrate_bps=max(0.0, f.bitrate_bps),
        last_segment_end=_utc(f.last_segment_end),
        reason=f.reason[:200] if state == "offline" and f.reason else None,
    )


def with_detection(
    payload: HeartbeatPayload, detection: list[CameraDetectionStatus]
) -> HeartbeatPayload:
    """The heartbeat with each camera's rule capability; without the reasons, or without the
    capability at all, if it would not fit in one message (the figures must get through)."""
    full = payload.model_copy(update={"detection": detection})
    if _fits(full):
        return full
    short = [
        d.model_copy(update={"rules": [r.model_copy(update={"reason": ""}) for r in d.rules]})
        for d in detection
    ]
    brief = payload.model_copy(update={"detection": short})
    if _fits(brief):
        return brief
    log.warning("heartbeat: rule capability of %d cameras left out (too big)", len(detection))
    return payload


def _fits(payload: HeartbeatPayload) -> bool:
    try:
        encode(payload)
    except InvalidPayload:
        return False
    return True


class HeartbeatPublisher:
    """Sends a heartbeat every `interval_s` while connected; nothing is queued offline."""

    name = "mqtt-heartbeat"

    def __init__(
        self,
        link: Publisher,
        site: str,
        storage_path: Path,
        interval_s: float,
        cameras: Callable[[], Sequence[CameraFigures]],
        storage: Callable[[], StorageFigures | None],
        pending: Callable[[], tuple[int, int]],
    ) -> None:
        self.link = link
        self.topic = topics.heartbeat(site)
        self.storage_path = storage_path
        self.interval_s = interval_s
        self._cameras = cameras
        self._storage = storage
        self._pending = pending
        self._started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        # Set by the uplink service when central may ask for video: its bits/s since last call.
        self.uplink_rate: Callable[[], float] | None = None
        # Set when the agent has an uplink budget: its size, use per class and backlog.
        self.uplink_stats: Callable[[], UplinkStats] | None = None
        # Set by the agent when models are managed: camera id -> `name@version` it runs.
        self.camera_models: Callable[[], dict[str, str | None]] | None = None
        self.last_uplink_bps: float | None = None  # what the last beat reported (metrics)
        # Set by the agent when detection runs: each camera's model and rule capability.
        self.detection: Callable[[], list[CameraDetectionStatus]] | None = None
        # Set by the agent when detection runs: today's shadow-model comparisons.
        self.shadow: Callable[[], list[ShadowStats]] | None = None
        # Set by the agent: its sub-lane recorders' figures (camera `<camera>--sub`), if any.
        self.sub_lanes: Callable[[], Sequence[LaneFigures]] | None = None

    def start(self) -> None:
        """Start the heartbeat thread."""
        self._stop.clear()
        psutil.cpu_percent(None)  # the first call only sets the reference point
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def beat(self) -> HeartbeatPayload:
        """Collect the figures now."""
        usage = shutil.disk_usage(self.storage_path)
        payload = build_heartbeat(
            now=time.time(),
            started=self._started,
            disk=(usage.total, usage.free),
            storage=self._storage(),
            cameras=self._cameras(),
            cpu_percent=psutil.cpu_percent(None),
            memory_percent=psutil.virtual_memory().percent,
            pending=self._pending(),
        )
        if self.uplink_rate is not None:
            payload = payload.model_copy(update={"uplink_bps": max(0.0, self.uplink_rate())})
        if self.uplink_stats is not None:
            payload = payload.model_copy(update={"uplink": self.uplink_stats()})
        if self.camera_models is not None:
            models = self.camera_models()
            cameras = [
                c.model_copy(update={"model": models.get(c.camera)}) for c in payload.cameras
            ]
            payload = payload.model_copy(update={"cameras": cameras})
        if self.sub_lanes is not None:
            payload = with_sub_lanes(payload, self.sub_lanes())
        self.last_uplink_bps = payload.uplink_bps
        if self.detection is not None:
            payload = with_detection(payload, self.detection())
        if self.shadow is not None:
            shadow = self.shadow()
            payload = payload.model_copy(update={"shadow": shadow or None})
        return payload

    def _loop(self) -> None:
        # Until one beat got out (start-up, broker down), try every second: central then
        # learns the agent's figures right after it connects, not one interval later.
        delay = min(1.0, self.interval_s)
        while not self._stop.wait(delay):
            try:
                if self.link.publish_now(self.topic, encode(self.beat())):
                    self.sent += 1
                    delay = self.interval_s
            except Exception:  # noqa: BLE001 - a failed beat is replaced by the next one
                log.exception("heartbeat failed")
