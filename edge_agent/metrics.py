"""Prometheus metrics of the edge agent on a loopback port: recorders (a recorded sub stream
under its lane id `<camera>--sub` as the `camera` label), disk, retention, uplink,
detection (frames analysed and dropped per camera, lag, time waiting for the inference pool),
and the CPU time of each of the agent's threads (named by component: rec-<camera>,
frames-<camera>, inference-<n>, ...), which says what the box spends its cores on.

Figures are read when scraped (a collector, no counters kept elsewhere), from the same
sources the heartbeat reads: each recorder's status, the retention forecast, the disk, the
outbox and the uplink rate the last heartbeat reported. The server binds 127.0.0.1 only: a
node exporter or an SSH tunnel reaches it, the network does not.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol
from wsgiref.simple_server import WSGIServer

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from edge_agent.mqtt.heartbeat import CameraFigures, StorageFigures

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class RecorderCounters(Protocol):
    """A recorder's running totals (edge_agent.recording.status.RecorderStatus)."""

    @property
    def camera(self) -> str: ...
    @property
    def video_packets(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def segments(self) -> int: ...


class DetectionFigures(Protocol):
    """A camera's detection totals (edge_agent.detection.pipeline.DetectionCounters)."""

    @property
    def camera(self) -> str: ...
    @property
    def frames_analysed(self) -> int: ...
    @property
    def frames_dropped(self) -> int: ...
    @property
    def detector_runs(self) -> int: ...
    @property
    def crops(self) -> int: ...
    @property
    def lag_s(self) -> float: ...
    @property
    def lag_sum_s(self) -> float: ...
    @property
    def inference_wait_s(self) -> float: ...
    @property
    def inference_run_s(self) -> float: ...


class EdgeCollector(Collector):
    """The agent's figures at scrape time."""

    def __init__(
        self,
        storage_path: Path,
        cameras: Callable[[], Sequence[CameraFigures]],
        storage: Callable[[], StorageFigures | None],
        pending: Callable[[], tuple[int, int]] | None = None,
        uplink_bps: Callable[[], float | None] | None = None,
        counters: Callable[[], Sequence[RecorderCounters]] | None = None,
        detection: Callable[[], Sequence[DetectionFigures]] | None = None,
    ) -> None:
        self.storage_path = storage_path
        self._cameras = cameras
        self._storage = storage
        self._pending = pending
        self._uplink = uplink_bps
        self._counters = counters
        self._detection = detection

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read now."""
        yield from self._recorders()
        yield _thread_cpu()
        if self._counters is not None:
            yield from self._recorder_totals(self._counters())
        if self._detection is not None:
            yield from self._detection_figures(self._detection())
        usage = shutil.disk_usage(self.storage_path)
        yield _gauge("fsv_edge_disk_total_bytes", "size of the recording disk", usage.total)
        yield _gauge("fsv_edge_disk_free_bytes", "free space on the recording disk", usage.free)
        forecast = self._storage()
        days = forecast.days_forecast if forecast is not None else None
        if days is not None:
            yield _gauge("fsv_edge_retention_days_forecast",
                         "days of recording the disk holds at the current rate", days)  # fmt: skip
        at_risk = bool(forecast.at_risk) if forecast is not None else False
        yield _gauge("fsv_edge_retention_at_risk", "1 when the 90-day duty is at risk", at_risk)
        if self._pending is not None:
            outbox, media = self._pending()
            yield _gauge("fsv_edge_outbox_pending", "messages waiting for the broker", outbox)
            yield _gauge("fsv_edge_media_pending", "snapshots and clips waiting for upload", media)
        rate = self._uplink() if self._uplink is not None else None
        if rate is not None:
            yield _gauge("fsv_edge_uplink_bps", "video pushed to central (last heartbeat)", rate)

    def _recorders(self) -> Iterator[Metric]:
        cam = ["camera"]
        online = GaugeMetricFamily("fsv_edge_camera_online", "1 if receiving video", labels=cam)
        fps = GaugeMetricFamily("fsv_edge_camera_fps", "frames per second recorded", labels=cam)
        bitrate = GaugeMetricFamily("fsv_edge_camera_bitrate_bps", "bits/s recorded", labels=cam)
        age = GaugeMetricFamily(
            "fsv_edge_camera_last_segment_age_seconds", "since the last segment", labels=cam
        )
        now = time.time()
        for c in self._cameras():
            online.add_metric([c.camera], float(c.state == "online"))
            fps.add_metric([c.camera], max(0.0, c.fps))
            bitrate.add_metric([c.camera], max(0.0, c.bitrate_bps))
            if c.last_segment_end is not None:
                age.add_metric([c.camera], max(0.0, now - c.last_segment_end))
        yield from (online, fps, bitrate, age)

    @staticmethod
    def _recorder_totals(counters: Sequence[RecorderCounters]) -> Iterator[Metric]:
        cam = ["camera"]
        packets = CounterMetricFamily(
            "fsv_edge_camera_video_packets", "video packets recorded", labels=cam
        )
        dropped = CounterMetricFamily(
            "fsv_edge_camera_packets_dropped", "packets the recorder lost", labels=cam
        )
        segments = CounterMetricFamily("fsv_edge_camera_segments", "segments written", labels=cam)
        for c in counters:
            packets.add_metric([c.camera], c.video_packets)
            dropped.add_metric([c.camera], c.dropped)
            segments.add_metric([c.camera], c.segments)
        yield from (packets, dropped, segments)

    @staticmethod
    def _detection_figures(figures: Sequence[DetectionFigures]) -> Iterator[Metric]:
        cam = ["camera"]
        families = {
            "frames_analysed": CounterMetricFamily(
                "fsv_edge_detection_frames_analysed", "frames analysed", labels=cam
            ),
            "frames_dropped": CounterMetricFamily(
                "fsv_edge_detection_frames_dropped",
                "frames dropped because analysis fell behind",
                labels=cam,
            ),
            "detector_runs": CounterMetricFamily(
                "fsv_edge_detection_detector_runs", "frames the detector ran on", labels=cam
            ),
            "crops": CounterMetricFamily(
                "fsv_edge_detection_crops", "detector runs on a motion crop", labels=cam
            ),
            "inference_wait_s": CounterMetricFamily(
                "fsv_edge_inference_wait_seconds", "waiting for the inference pool", labels=cam
            ),
            "inference_run_s": CounterMetricFamily(
                "fsv_edge_inference_run_seconds", "running on the inference pool", labels=cam
            ),
        }
        last = GaugeMetricFamily(
            "fsv_edge_detection_last_lag_seconds",
            "capture to detections ready, last frame",
            labels=cam,
        )
        lag = SummaryMetricFamily(
            "fsv_edge_detection_lag_seconds", "capture to detections ready", labels=cam
        )
        for f in figures:
            for key, family in families.items():
                family.add_metric([f.camera], getattr(f, key))
            last.add_metric([f.camera], f.lag_s)
            lag.add_metric([f.camera], count_value=f.frames_analysed, sum_value=f.lag_sum_s)
        yield from (*families.values(), last, lag)


def _thread_cpu() -> CounterMetricFamily:
    """CPU seconds of each thread of this process, by thread name (native threads: `other`)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    family = CounterMetricFamily(
        "fsv_edge_thread_cpu_seconds", "CPU time of each agent thread", labels=["thread"]
    )
    totals: dict[str, float] = {}
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "other")
        totals[name] = totals.get(name, 0.0) + thread.user_time + thread.system_time
    for name, seconds in sorted(totals.items()):
        family.add_metric([name], seconds)
    return family


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=float(value))


class MetricsServer:
    """The /metrics HTTP server on 127.0.0.1:`port` (a component of the agent)."""

    name = "metrics"

    def __init__(self, port: int, collector: Collector) -> None:
        self.port = port
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self._server: WSGIServer | None = None

    def start(self) -> None:
        """Serve in a background thread."""
        self._server, _thread = start_http_server(self.port, addr=LOOPBACK, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", LOOPBACK, self.port)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
