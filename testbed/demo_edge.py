"""The demo's edge agent configuration: one builder for every demo site."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.rtsp import RtspServer


@dataclass(frozen=True)
class DemoCamera:
    """A demo camera: its RTSP paths are `id` (main) and `id_sub` (sub stream)."""

    id: str
    name: str
    station: str
    detection: dict[str, Any] = field(default_factory=dict)


def demo_edge_config(
    *,
    site: str,
    recordings: Path,
    state: Path,
    rtsp: RtspServer,
    broker_port: int,
    central_url: str,
    timezone: str,
    cameras: Sequence[DemoCamera],
    detection: dict[str, Any],
) -> dict[str, Any]:
    """A demo edge agent's configuration: `site` recording `cameras` (60 s segments) under
    `recordings`, its state under `state`, reporting to the broker and central on loopback."""
    return {
        "site_id": site,
        "timezone": timezone,
        "storage": {"path": str(recordings), "segment_seconds": 60},
        "data_dir": str(state),
        "log_level": "INFO",
        "central_url": central_url,
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker_port,
            "tls": None,
            "heartbeat_interval_s": 10,
            "reconnect_max_s": 5,
        },
        "detection": detection,
        "cameras": [
            {
                "id": camera.id,
                "name": camera.name,
                "station": camera.station,
                "main_url": rtsp.url(camera.id),
                "sub_url": rtsp.url(f"{camera.id}_sub"),
                **({"detection": camera.detection} if camera.detection else {}),
            }
            for camera in cameras
        ],
    }
