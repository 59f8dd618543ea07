"""The orchestrator: builds the agent's components, starts them in order, stops them in reverse."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from edge_agent.config import CameraConfig, EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.status import RecorderStatus
from fsv_common.sdnotify import notify, watchdog_interval
from fsv_contract.lanes import lane_id, split_lane

if TYPE_CHECKING:
    from edge_agent.mqtt.wiring import MqttParts

log = logging.getLogger(__name__)


class Component(Protocol):
    """A long-running part of the agent. `stop()` returns within a few seconds."""

    name: str

    def start(self) -> None:
        """Start its threads; return at once."""

    def stop(self) -> None:
        """Stop its threads and wait for them."""


class EdgeAgent:
    """All components of one agent, wired through their constructors."""

    def __init__(self, config: EdgeConfig, credentials: CredentialStore | None = None) -> None:
        from edge_agent.recording.lanes import learned_policy, resolve_lanes, sub_lane
        from edge_agent.recording.recorder import CameraRecorder

        # Whether a camera also records its sub stream: its `record_sub`, else the site's
        # archive policy as central last told it (edge_agent.recording.lanes).
        self._given = config  # as configured: record_sub unset where the policy decides
        config = resolve_lanes(config, learned_policy(config.state_dir))
        self.config = config
        self.credentials = credentials or CredentialStore(config.credentials_file)
        config.storage.path.mkdir(parents=True, exist_ok=True)
        self.index = SegmentIndex(config.state_dir / "index.db")
        self.recorders = [
            CameraRecorder(cam, config, self.index, self.credentials)
            for cam in config.cameras
            if cam.enabled and cam.record
        ]
        # Sub-stream lanes: the same recorder on the sub URL, under the lane id `<cam>--sub`
        # (own segments, chain and anchors); its packets also feed the camera's sub tap.
        self.sub_recorders = [
            CameraRecorder(sub_lane(cam), config, self.index, self.credentials)
            for cam in config.cameras
            if cam.records_sub
        ]
        # Built by start() once the recorders run (see there): every component, recorders
        # included, in start order.
        self.components: list[Component] = [*self.recorders, *self.sub_recorders]
        self._started: list[Component] = []
        self.mqtt: MqttParts | None = None
        # Sub lanes started or stopped while running (policy_told), never during stop().
        self._lanes_lock = threading.Lock()
        self._stopping = False

    def _build(self) -> None:
        """Import and wire every component but the recorders (their listeners attach now)."""
        from edge_agent.detection.pipeline import (
            CameraDetection,
            build_detection,
            detection_cameras,
            detection_statuses,
            shadow_statuses,
        )
        from edge_agent.mqtt.wiring import build_mqtt
        from edge_agent.retention.cleaner import RetentionCleaner
        from edge_agent.uplink.streams import build_streams
        from edge_agent.uplink.wiring import (
            attach_budget,
            build_archive_sender,
            build_scheduler,
            build_uplink,
            uplink_enabled,
        )

        config = self.config
        self.cleaner = RetentionCleaner(config, self.index)
        for recorder in [*self.recorders, *self.sub_recorders]:  # a full disk: a pass at once
            recorder.on_disk_low = self.cleaner.wake
        # MQTT to central (None without an `mqtt` section): the outbox is the events' sink.
        self.mqtt = build_mqtt(config, self.credentials, self.recorders, self.cleaner, self.index)
        commands = self.mqtt.commands if self.mqtt else None
        # One RTSP session per camera stream: live view and detection share the recorder's
        # main-stream packets and one sub-stream reader per camera.
        self.streams = build_streams(
            config, self.credentials, [*self.recorders, *self.sub_recorders],
            live=uplink_enabled(config, commands),
            detect={c.id for c in detection_cameras(config)},
        )  # fmt: skip
        feeds = {c.id: f for c in config.cameras if (f := self.streams.feed(c.id)) is not None}
        # Detection never feeds back into recording or live view: a bad model or rule only
        # disables it. Without an outbox, events stay local.
        self.detection = build_detection(
            config,
            self.index,
            feeds,
            sink=self.mqtt.outbox if self.mqtt else None,
            recorders=self.recorders,
        )
        # Models central signs and distributes (none without a `models` section).
        from edge_agent.models.installer import build_installer

        self.models = build_installer(
            config, self.detection, self.index, self.credentials, commands
        )
        if self.models is not None and self.mqtt is not None:
            self.mqtt.heartbeat.camera_models = self.models.camera_models
        # Sample frames of the recordings for central's labelling queue (on its command).
        from edge_agent.models.samples import build_sampler

        self.samples = build_sampler(
            config, self.index, self.mqtt.outbox if self.mqtt else None, commands
        )
        # Live/replay/export uplinks to central, on its commands (none without MQTT).
        # One budget for everything sent to central, in strict priority (edge_agent.uplink.budget).
        self.scheduler = build_scheduler(config, self.streams.taps)
        self.uplink = build_uplink(config, self.index, self.streams.taps, commands, self.scheduler)
        uplink_parts: list[Component] = [self.uplink] if self.uplink is not None else []
        # Recordings for central's city archive, as its site policy asks (class `archive`).
        self.archive = build_archive_sender(config, self.credentials, self.index, self.scheduler)
        if self.archive is not None:
            self.archive.on_policy = self.policy_told
            uplink_parts.append(self.archive)
        # Chain links anchored at central and its integrity audits (none without MQTT).
        integrity_parts: list[Component] = []
        if self.mqtt is not None:
            from edge_agent.integrity.wiring import build_integrity

            anchor = build_integrity(config, self.index, self.mqtt.outbox, self.mqtt.commands)
            integrity_parts = [anchor] if anchor is not None else []
        mqtt_parts = self.mqtt.components if self.mqtt else []
        if self.mqtt is not None:
            self.mqtt.heartbeat.sub_lanes = self.sub_lane_statuses
        if self.mqtt is not None and self.uplink is not None:
            # The heartbeat reports the uplink's rate to central.
            self.mqtt.heartbeat.uplink_rate = self.uplink.uplink_bps
        if self.mqtt is not None and config.mqtt is not None:
            attach_budget(self.mqtt, self.scheduler, config.mqtt.upload.timeout_s)
        if self.mqtt is not None and self.detection:
            # The heartbeat tells central what each camera's rules can see.
            cameras = [d for d in self.detection if isinstance(d, CameraDetection)]
            self.mqtt.heartbeat.detection = lambda: detection_statuses(cameras)
            self.mqtt.heartbeat.shadow = lambda: shadow_statuses(cameras)
        metrics_parts = [self._metrics(config.metrics_port)] if config.metrics_port else []
        self.components = [
            *self.recorders,
            *self.sub_recorders,
            *metrics_parts,
            *self.streams.readers,
            self.cleaner,
            *self.detection,
            *([self.models] if self.models is not None else []),
            *uplink_parts,
            *mqtt_parts,
            *integrity_parts,
        ]

    def sub_lane_statuses(self) -> list[RecorderStatus]:
        """The sub lanes' recorders as they are now (policy_told starts and stops them)."""
        return [r.status() for r in list(self.sub_recorders)]

    def _metrics(self, port: int) -> Component:
        from edge_agent.detection.pipeline import CameraDetection
        from edge_agent.metrics import EdgeCollector, MetricsServer

        cameras = [d for d in self.detection if isinstance(d, CameraDetection)]

        mqtt = self.mqtt
        collector = EdgeCollector(
            self.config.storage.path,
            # Recorders of the main streams and of the sub lanes (labelled `<camera>--sub`).
            cameras=lambda: [r.status() for r in self.recorders] + self.sub_lane_statuses(),
            storage=self.cleaner.status,
            pending=(lambda: (mqtt.outbox.count(), mqtt.outbox.media.pending_count()))
            if mqtt is not None
            else None,
            uplink_bps=(lambda: mqtt.heartbeat.last_uplink_bps) if mqtt is not None else None,
            counters=lambda: [r.status() for r in self.recorders] + self.sub_lane_statuses(),
            detection=lambda: [c.counters() for c in cameras],
        )
        return MetricsServer(port, collector)

    def start(self) -> None:
        """Repair the index from disk, start the recorders, then build and start the rest.

        Every second between a crash and the recorders' first connect is footage lost, so
        the recorders start before detection, MQTT, the uplinks and their libraries
        (onnxruntime, OpenCV, aiohttp, ...) are even imported.
        """
        from edge_agent.recording.repair import scan_and_repair

        began = time.monotonic()
        report = scan_and_repair(self.index, self.config.storage.path)
        if report.changed:
            log.warning("storage repaired at start-up in %.2f s: %s",
                        time.monotonic() - began, report.summary())  # fmt: skip
        recorders = [*self.recorders, *self.sub_recorders]
        for recorder in recorders:
            self._start(recorder)
        self._build()
        for component in self.components[len(recorders) :]:
            self._start(component)

    def policy_told(self, policy: str) -> None:
        """Central answered the site's archive policy: keep it, and start or stop the sub
        lanes of the cameras whose `record_sub` is unset to follow it (the archive sender's
        hook; runs on its thread)."""
        from edge_agent.recording.lanes import resolve_lanes
        from edge_agent.uplink.wiring import keep_policy

        keep_policy(self._given, policy)
        with self._lanes_lock:
            if self._stopping or not hasattr(self, "streams"):
                return  # not running (yet): the policy kept applies at the next start
            wanted = resolve_lanes(self._given, policy)
            recording = {split_lane(r.camera.id)[0] for r in self.sub_recorders}
            changed = False
            for cam in wanted.cameras:
                if cam.records_sub != (cam.id in recording):
                    self._switch_lane(cam, cam.records_sub)
                    changed = True
            if changed:
                self.config = wanted
                self.cleaner.config = wanted  # duties and forecast count the lanes recorded

    def _switch_lane(self, cam: CameraConfig, record: bool) -> None:
        """Start or stop one camera's sub lane; its sub tap keeps one session on the stream:
        the reader stops before the lane recorder connects, and starts after it stopped."""
        from edge_agent.recording.lanes import sub_lane
        from edge_agent.recording.recorder import CameraRecorder

        if record:
            recorder = CameraRecorder(sub_lane(cam), self.config, self.index, self.credentials)
            recorder.on_disk_low = self.cleaner.wake
            reader = self.streams.lane_recording(cam.id, recorder)
            if reader is not None:
                self._stop_one(reader)
            log.info("site archive policy: recording the sub stream of %s", cam.id)
            recorder.start()
            self.sub_recorders.append(recorder)
            self._started.insert(0, recorder)  # stopped last, with the other recorders
            return
        lane = lane_id(cam.id, "sub")
        for old in [r for r in self.sub_recorders if r.camera.id == lane]:
            log.info("site archive policy: no longer recording the sub stream of %s", cam.id)
            self.sub_recorders.remove(old)
            self._stop_one(old)  # its open segment is sealed and indexed
        new_reader = self.streams.lane_stopped(cam)
        if new_reader is not None:
            self._start(new_reader)

    def _stop_one(self, component: Component) -> None:
        if component in self._started:
            self._started.remove(component)
        log.info("stopping %s", component.name)
        component.stop()

    def _start(self, component: Component) -> None:
        log.info("starting %s", component.name)
        component.start()
        self._started.append(component)

    def healthy(self) -> bool:
        """Whether every recorder, main streams and sub lanes alike, still records or retries
        its camera (recording is the agent's legal duty); see stuck_recorders()."""
        return not self.stuck_recorders()

    def stuck_recorders(self) -> list[str]:
        """`<lane>: why` for each stuck recorder (CameraRecorder.stuck): its thread ended, or
        it is connected but reads nothing. Sub lanes count as the main streams do."""
        recorders = [*self.recorders, *list(self.sub_recorders)]
        return [f"{r.camera.id}: {why}" for r in recorders if (why := r.stuck()) is not None]

    def stop(self) -> None:
        """Stop the started components in reverse order, then close the index."""
        with self._lanes_lock:  # a lane change under way finishes first; none after it
            self._stopping = True
        while self._started:
            component = self._started.pop()
            log.info("stopping %s", component.name)
            try:
                component.stop()
            except Exception:  # noqa: BLE001 - one broken stop must not leave the rest running
                log.exception("%s did not stop cleanly", component.name)
        if self.mqtt is not None:
            self.mqtt.close()
        self.index.close()


def run(config: EdgeConfig, ready: Callable[[EdgeAgent], None] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT; returns the process exit code."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    agent = EdgeAgent(config)
    try:
        agent.start()
        if ready is not None:
            ready(agent)
        notify(f"READY=1\nSTATUS=recording {len(agent.recorders)} cameras")
        _supervise(agent, stop)
    finally:
        notify("STOPPING=1")
        agent.stop()
    return 0


def _supervise(agent: EdgeAgent, stop: threading.Event) -> None:
    """Ping the systemd watchdog while the agent is healthy, until `stop` is set.

    A stuck recorder (its thread died, or it is connected and reads nothing), of a main
    stream or a sub lane, stops the pings, so systemd restarts the whole agent (WatchdogSec
    in systemd/edge-agent.service) instead of leaving a stream unrecorded.
    """
    interval = watchdog_interval()
    last_ping = 0.0
    complained = False
    while not stop.wait(1.0):
        if interval is None or time.monotonic() - last_ping < interval:
            continue
        stuck = agent.stuck_recorders()
        if not stuck:
            notify("WATCHDOG=1")
            last_ping = time.monotonic()
            complained = False
        elif not complained:
            log.error("recorder stuck (%s); withholding the watchdog so systemd restarts us",
                      "; ".join(stuck))  # fmt: skip
            complained = True
