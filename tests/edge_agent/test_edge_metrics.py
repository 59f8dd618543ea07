"""The edge agent's /metrics on a loopback port: recorders, disk, retention, outbox, uplink."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.config import parse_config
from edge_agent.errors import ConfigError
from edge_agent.metrics import EdgeCollector, MetricsServer
from testbed.ports import free_port


@dataclass
class Cam:
    camera: str
    state: str
    fps: float
    bitrate_bps: float
    last_segment_end: float | None


@dataclass
class Forecast:
    days_forecast: float | None
    at_risk: bool


def test_metrics_served_on_loopback(tmp_path: Path) -> None:
    now = time.time()
    cams = [Cam("kitchen", "online", 25.0, 4e6, now - 12), Cam("store", "offline", 0.0, 0.0, None)]
    collector = EdgeCollector(
        tmp_path, cameras=lambda: cams, storage=lambda: Forecast(64.5, True),
        pending=lambda: (7, 2), uplink_bps=lambda: 1.5e6,
    )  # fmt: skip
    server = MetricsServer(free_port(), collector)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        server.stop()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got[("fsv_edge_camera_online", (("camera", "kitchen"),))] == 1.0
    assert got[("fsv_edge_camera_online", (("camera", "store"),))] == 0.0
    assert got[("fsv_edge_camera_fps", (("camera", "kitchen"),))] == 25.0
    assert 12 <= got[("fsv_edge_camera_last_segment_age_seconds", (("camera", "kitchen"),))] < 60
    assert ("fsv_edge_camera_last_segment_age_seconds", (("camera", "store"),)) not in got
    assert got[("fsv_edge_retention_days_forecast", ())] == 64.5
    assert got[("fsv_edge_retention_at_risk", ())] == 1.0
    assert got[("fsv_edge_outbox_pending", ())] == 7.0
    assert got[("fsv_edge_uplink_bps", ())] == 1.5e6
    assert got[("fsv_edge_disk_total_bytes", ())] > got[("fsv_edge_disk_free_bytes", ())] > 0
    threads = {labels[0][1]: v for (name, labels), v in got.items()
               if name == "fsv_edge_thread_cpu_seconds_total"}  # fmt: skip
    assert threads["MainThread"] > 0  # this test's own thread has run


def test_metrics_port_is_optional_and_checked(tmp_path: Path) -> None:
    base = f"site_id: s1\nstorage: {{path: {tmp_path}}}\n"
    assert parse_config(base).metrics_port is None
    assert parse_config(base + "metrics_port: 9101\n").metrics_port == 9101
    with pytest.raises(ConfigError, match="metrics_port"):
        parse_config(base + "metrics_port: 0\n")


@dataclass
class Totals:
    camera: str
    video_packets: int
    dropped: int
    segments: int


def test_recorder_totals_and_detection_per_camera(tmp_path: Path) -> None:
    from edge_agent.detection.pipeline import DetectionCounters

    detection = DetectionCounters(
        camera="kitchen", frames_analysed=40, frames_dropped=3, detector_runs=38, crops=5,
        lag_s=0.4, lag_sum_s=10.0, inference_wait_s=1.5, inference_run_s=2.5,
    )  # fmt: skip
    collector = EdgeCollector(
        tmp_path, cameras=lambda: [], storage=lambda: None,
        counters=lambda: [Totals("kitchen", 1500, 2, 6)], detection=lambda: [detection],
    )  # fmt: skip
    got = {
        (s.name, tuple(s.labels.values())): s.value
        for family in collector.collect()
        for s in family.samples
    }
    assert got[("fsv_edge_camera_video_packets_total", ("kitchen",))] == 1500
    assert got[("fsv_edge_camera_packets_dropped_total", ("kitchen",))] == 2
    assert got[("fsv_edge_camera_segments_total", ("kitchen",))] == 6
    assert got[("fsv_edge_detection_frames_analysed_total", ("kitchen",))] == 40
    assert got[("fsv_edge_detection_frames_dropped_total", ("kitchen",))] == 3
    assert got[("fsv_edge_detection_crops_total", ("kitchen",))] == 5
    assert got[("fsv_edge_detection_last_lag_seconds", ("kitchen",))] == 0.4
    assert got[("fsv_edge_detection_lag_seconds_sum", ("kitchen",))] == 10.0
    assert got[("fsv_edge_detection_lag_seconds_count", ("kitchen",))] == 40
    assert got[("fsv_edge_inference_wait_seconds_total", ("kitchen",))] == 1.5
