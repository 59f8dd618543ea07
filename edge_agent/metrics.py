"""Prometheus metrics of the edge agent on a loopback port: recorders, disk, retention, uplink.

Figures are read when scraped (a collector, no counters kept elsewhere), from the same
sources the heartbeat reads: each recorder's status, the retention forecast, the disk, the
outbox and the uplink rate the last heartbeat reported. The server binds 127.0.0.1 only: a
node exporter or an SSH tunnel reaches it, the network does not.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.mqtt.heartbeat import CameraFigures, StorageFigures

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EdgeCollector(Collector):
    """The agent's figures at scrape time."""

    def __init__(
        self,
        storage_path: Path,
        cameras: Callable[[], Sequence[CameraFigures]],
        storage: Callable[[], StorageFigures | None],
        pending: Callable[[], tuple[int, int]] | None = None,
        uplink_bps: Callable[[], float | None] | None = None,
    ) -> None:
        self.storage_path = storage_path
        self._cameras = cameras
        self._storage = storage
        self._pending = pending
        self._uplink = uplink_bps

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read now."""
        yield from self._recorders()
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
