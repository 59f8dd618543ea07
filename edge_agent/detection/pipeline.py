"""Per-camera detection: frames -> motion gate -> detector -> tracker -> rules -> events."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from edge_agent.config import CameraConfig, EdgeConfig
from edge_agent.detection.capability import (
    RuleCapability,
    all_blind,
    runnable,
)
from edge_agent.detection.crop import (
    Crop,
    CropSettings,
    detect_in_crop,
    input_aspect,
    merge,
    plan_crop,
)
from edge_agent.detection.detector import (
    Detection,
    Detector,
    Image,
)
from edge_agent.detection.events import EventKeeper, Sighting
from edge_agent.detection.frames import DropOldestQueue, Frame, PacketFeed, PacketFrameSource
from edge_agent.detection.inference import InferencePool, default_workers
from edge_agent.detection.model_cache import (
    ModelCache,
    assess_detector,
    local_model_label,
    model_choice,
)
from edge_agent.detection.motion import MotionGate
from edge_agent.detection.presets import camera_rules
from edge_agent.detection.rules import RuleEngine, RuleEvent
from edge_agent.detection.settings import RuleSpec
from edge_agent.detection.tracker import IouTracker
from edge_agent.detection.zones import anchor_point, in_any
from edge_agent.errors import ConfigError, InferenceStopped, ModelError
from edge_agent.models.shadow import ShadowTally
from edge_agent.mqtt.sink import EventSink
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.recording.status import RateMeter
from fsv_contract.payloads import CameraDetectionStatus, RuleStatus, ShadowStats

log = logging.getLogger(__name__)

RETRY_SETUP_S = 300.0  # a missing model or bad preset is retried (an operator may fix it)


@dataclass(frozen=True)
class DetectionCounters:
    """A camera's detection totals since start, for the metrics."""

    camera: str
    frames_analysed: int
    frames_dropped: int
    detector_runs: int
    crops: int
    lag_s: float
    lag_sum_s: float
    inference_wait_s: float
    inference_run_s: float


class CameraDetection:
    """The detection component of one camera: a decoding thread and an analysis thread.

    Packets come from `feed`, the camera stream the agent reads once for everybody (the
    sub stream's reader, or the recorder for the main stream); detection opens no RTSP
    session of its own. The detector itself runs on the shared inference `pool` (cameras
    in turn; without one, on the analysis thread). Setup problems (model, class map, rules)
    are logged with the file they concern and retried every few minutes; recording and
    live view never depend on this component.
    """

    def __init__(
        self,
        camera: CameraConfig,
        config: EdgeConfig,
        models: ModelCache,
        keeper: EventKeeper,
        feed: PacketFeed,
        pool: InferencePool | None = None,
    ) -> None:
        self.camera = camera
        self.config = config
        self.name = f"detect-{camera.id}"
        self.models = models
        self.keeper = keeper
        self.feed = feed
        self.pool = pool
        settings = config.detection
        own = camera.detection
        self.fps = (own.fps if own and own.fps else None) or settings.fps
        self.masks = [list(m) for m in (own.masks if own else [])]
        self.queue = DropOldestQueue(settings.queue_size)
        self.gate = MotionGate(settings.motion, self.masks)
        motion = settings.motion
        self.crop_settings = (
            CropSettings(motion.crop_pad, motion.crop_min_side, motion.crop_max_area)
            if motion.crop
            else None
        )
        self.tracker = IouTracker(max_age_s=settings.track_max_age_s)
        self.engine: RuleEngine | None = None
        self.detector: Detector | None = None
        # name@version of a model central installed (set by the installer with `detector`).
        self.installed_label: str | None = None
        # A model on trial beside it (shadow mode): run on the same frames, raises nothing.
        self.shadow: tuple[Detector, ShadowTally] | None = None
        self.source: PacketFrameSource | None = None
        self.error: str | None = None
        self.capability: list[RuleCapability] = []
        self.rules: list[RuleSpec] = []
        self.frames = 0
        self.detector_runs = 0
        self.crops = 0  # detector runs on a crop around the motion rather than the frame
        self.events_started = 0
        self.lag_s = 0.0  # capture to detections ready, last frame
        self.lag_max_s = 0.0
        self.lag_sum_s = 0.0
        self._meter = RateMeter(min_window_s=5.0)
        self._last: list[Detection] = []
        self._open: dict[str, str] = {}  # rule id -> event id
        self._best: dict[str, Sighting] = {}
        self._last_ts: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def model_label(self) -> str | None:
        """The running model as events and heartbeats name it: `name@version`."""
        detector = self.detector
        if detector is None:
            return None
        return self.installed_label or local_model_label(detector)

    def watched_labels(self) -> set[str]:
        """The labels the camera's enabled rules watch (empty before the rules are loaded)."""
        return {c for r in self.rules if r.enabled for c in r.classes}

    @property
    def dropped(self) -> int:
        """Frames dropped because analysis fell behind."""
        return self.queue.dropped

    def status(self) -> dict[str, object]:
        """Counters for the heartbeat and the logs."""
        source = self.source
        return {
            "camera": self.camera.id,
            "error": self.error,
            "stream": self.feed.stream,
            "stream_online": self.feed.online(),
            "frames_decoded": source.frames if source else 0,
            "frames_analysed": self.frames,
            "frames_dropped": self.queue.dropped,
            "packets_dropped": source.packets.dropped if source else 0,
            "gops_dropped": source.packets.gops_dropped if source else 0,
            "decode_errors": source.decode_errors if source else 0,
            "keyframes_only": source.keyframes.keyframes_only if source else False,
            "packets_not_decoded": source.not_decoded + source.tail_skipped if source else 0,
            "detector_runs": self.detector_runs,
            "crops": self.crops,
            "lag_s": round(self.lag_s, 3),
            "lag_max_s": round(self.lag_max_s, 3),
            "motion_skipped": self.gate.skipped,
            "stream_error": source.last_error if source else None,
            "events": self.events_started,
            "model": self.detector.path.name if self.detector is not None else None,
            "rules": {c.rule: c.status for c in self.capability},
        }

    def counters(self) -> DetectionCounters:
        """Totals since start: frames analysed and dropped, lag, time on the pool."""
        load = self.pool.load.get(self.camera.id) if self.pool is not None else None
        return DetectionCounters(
            camera=self.camera.id,
            frames_analysed=self.frames,
            frames_dropped=self.queue.dropped,
            detector_runs=self.detector_runs,
            crops=self.crops,
            lag_s=self.lag_s,
            lag_sum_s=self.lag_sum_s,
            inference_wait_s=load.wait_s if load is not None else 0.0,
            inference_run_s=load.run_s if load is not None else 0.0,
        )

    def start(self) -> None:
        """Start the analysis thread (it starts decoding once set up)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop decoding, end open events (their clips follow), and join the threads."""
        self._stop.set()
        if self.source is not None:
            self.source.stop()
        if self._thread is not None:
            self._thread.join(30.0)
        if self.engine is not None and self._last_ts is not None:
            for event in self.engine.close_all(self._last_ts, "detection stopped"):
                self._handle(event, None)

    def _run(self) -> None:
        while not self._setup():
            if self._stop.wait(RETRY_SETUP_S):
                return
        assert self.source is not None
        self.source.start()
        while not self._stop.is_set():
            frame = self.queue.get(timeout=1.0)
            if frame is not None:
                self.process(frame)

    def _setup(self) -> bool:
        """Load the model and the rules; False (logged) if either is unusable."""
        try:
            rules = camera_rules(self.config, self.camera)
        except ConfigError as e:
            self.error, self.capability = str(e), []
            log.error("%s: detection off (camera keeps recording): %s", self.camera.id, e)
            return False
        try:
            self.detector = self.models.get(model_choice(self.config, self.camera, rules))
            self.source = PacketFrameSource(
                f"frames-{self.camera.id}",
                self.feed,
                self.queue,
                self.fps,
                self.config.detection.frame_width,
            )
        except ModelError as e:
            self.error = str(e)
            self.capability = all_blind(rules, f"no model: {e}")
            log.error("%s: detection off (camera keeps recording): %s", self.camera.id, e)
            return False
        self.rules = rules
        if not rules:
            log.warning(
                "%s: no rules for station %r; detection idle", self.camera.id, self.camera.station
            )
        self.capability = assess_detector(rules, self.detector)
        self._log_capability()
        self.engine = RuleEngine(runnable(rules, self.capability), ZoneInfo(self.config.timezone))
        self.error = None
        return True

    def _log_capability(self) -> None:
        for c in self.capability:
            level = logging.INFO if c.status == "working" else logging.WARNING
            log.log(level, "%s: rule %r (%s) %s: %s", self.camera.id, c.rule, c.kind, c.status,
                    c.reason)  # fmt: skip

    def process(self, frame: Frame) -> list[RuleEvent]:
        """Analyse one frame: gate, detect (or reuse), track, apply rules, record events."""
        assert self.engine is not None and self.detector is not None
        self.frames += 1
        if self.gate.should_detect(frame.image, frame.ts):
            try:
                self._last = self._unmasked(self._detect(self.detector, frame.image))
            except ModelError as e:
                log.error("%s: %s", self.camera.id, e)
                self._last = []
            except InferenceStopped:
                return []  # the agent is stopping
            self.detector_runs += 1
            if self.shadow is not None:
                self._run_shadow(frame, *self.shadow)
        self._note_lag(frame.ts)
        # Gated out: the scene did not change, so what was there still is.
        objects = self.tracker.update(self._last, frame.ts)
        self._last_ts = frame.ts
        events = self.engine.update(frame.ts, objects)
        for event in events:
            self._handle(event, Sighting(frame.image, event.objects, frame.ts, event.score))
        return events

    def _run_shadow(self, frame: Frame, detector: Detector, tally: ShadowTally) -> None:
        try:
            found = self._unmasked(self._on_pool(lambda: detector.detect(frame.image)))
        except InferenceStopped:
            return  # the agent is stopping
        except Exception as e:  # noqa: BLE001 - a model on trial must never stop detection
            log.warning("%s: shadow model %s failed: %s", self.camera.id, tally.model, e)
            tally.failed(frame.ts)
            return
        tally.add(frame.ts, self._last, found)

    def _on_pool(self, job: Callable[[], list[Detection]]) -> list[Detection]:
        """Run an inference job on the shared pool's turn (here without a pool)."""
        return self.pool.run(self.camera.id, job) if self.pool is not None else job()

    def _detect(self, detector: Detector, image: Image) -> list[Detection]:
        """The detector on the motion crop or the whole frame, on the pool's turn."""
        crop = self._crop(detector, image)
        previous = self._last

        def job() -> list[Detection]:
            if crop is None:
                return detector.detect(image)
            return merge(previous, detect_in_crop(detector, image, crop), crop)

        found = self._on_pool(job)
        self.crops += crop is not None
        return found

    def _crop(self, detector: Detector, image: Image) -> Crop | None:
        if self.crop_settings is None or self.gate.region is None:
            return None
        height, width = image.shape[:2]
        aspect = input_aspect(detector, image)
        return plan_crop(self.gate.region, width, height, aspect, self.crop_settings)

    def _note_lag(self, ts: float) -> None:
        self.lag_s = max(0.0, time.time() - ts)
        self.lag_max_s = max(self.lag_max_s, self.lag_s)
        self.lag_sum_s += self.lag_s

    def analysed_fps(self) -> float:
        """Frames analysed per second (over at least the last 5 s between calls)."""
        return self._meter.sample(time.monotonic(), self.frames, 0)[0]

    def _unmasked(self, detections: list[Detection]) -> list[Detection]:
        if not self.masks:
            return detections
        return [d for d in detections if not in_any(self.masks, anchor_point(d.box, "bottom"))]

    def _handle(self, event: RuleEvent, sighting: Sighting | None) -> None:
        rule_id = event.rule.id
        if event.phase == "start" and sighting is not None:
            self._open[rule_id] = self.keeper.open_event(
                self.camera, event, sighting, self.model_label()
            )
            self.events_started += 1
            log.info("%s: %s started (rule %s)", self.camera.id, event.rule.event_kind, rule_id)
        elif event.phase == "update" and sighting is not None:
            self._best[rule_id] = sighting
        elif event.phase == "end" and rule_id in self._open:
            event_id = self._open.pop(rule_id)
            self.keeper.end_event(event_id, event, self._best.pop(rule_id, None))
            log.info("%s: %s ended (rule %s)", self.camera.id, event.rule.event_kind, rule_id)


def shadow_statuses(cameras: Sequence[CameraDetection]) -> list[ShadowStats]:
    """Today's shadow comparison of each camera running a shadow model, for the heartbeat."""
    out = []
    for c in cameras:
        shadow = c.shadow
        if shadow is not None:
            out.append(shadow[1].stats(c.model_label()))
    return out


def detection_statuses(cameras: Sequence[CameraDetection]) -> list[CameraDetectionStatus]:
    """Each camera's model, rule capability, analysis rate, lag and drops, for the heartbeat."""
    return [
        CameraDetectionStatus(
            camera=c.camera.id,
            model=c.detector.path.name if c.detector is not None else None,
            error=c.error[:500] if c.error else None,
            rules=[
                RuleStatus(rule=r.rule, kind=r.kind, status=r.status, reason=r.reason[:500])
                for r in c.capability
            ],
            fps=round(c.analysed_fps(), 2),
            lag_s=round(c.lag_s, 3),
            lag_max_s=round(c.lag_max_s, 3),
            frames_dropped=c.dropped,
        )
        for c in cameras
    ]


class SegmentSource(Protocol):
    """A recorder, as far as clips are concerned: it announces indexed segments."""

    def add_segment_listener(self, callback: Callable[[Segment], None]) -> None:
        """Call `callback` with every segment once it is indexed."""


def detection_cameras(config: EdgeConfig) -> list[CameraConfig]:
    """The cameras detection watches ([] when detection is off)."""
    if not config.detection.enabled:
        return []
    return [c for c in config.cameras if c.enabled and (c.detection is None or c.detection.enabled)]


def build_detection(
    config: EdgeConfig,
    index: SegmentIndex,
    feeds: Mapping[str, PacketFeed],
    sink: EventSink | None = None,
    recorders: Sequence[SegmentSource] = (),
) -> list[EventKeeper | InferencePool | CameraDetection]:
    """The event keeper, the shared inference pool and one detection component per watched
    camera that has a feed (camera id -> the stream it reads, edge_agent.uplink.streams);
    [] if detection is off. The keeper comes first so that it starts first and stops last.
    Without a sink (no MQTT), events are kept locally only."""
    cameras = [c for c in detection_cameras(config) if c.id in feeds]
    if not cameras:
        return []
    keeper = EventKeeper(config, index, sink)
    for recorder in recorders:
        recorder.add_segment_listener(keeper.segment_indexed)
    models = ModelCache(config)
    # The pool starts before the cameras and stops after them (components stop in reverse).
    pool = InferencePool(default_workers(config.detection.workers))
    return [
        keeper,
        pool,
        *(CameraDetection(c, config, models, keeper, feeds[c.id], pool) for c in cameras),
    ]
