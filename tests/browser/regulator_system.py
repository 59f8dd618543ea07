"""Broker and seeded central without an edge agent: the regulator pages' world, on loopback.

Alerts come the way an edge sends them: an EventPayload published with the site's broker
login, then the snapshot PUT to central's media endpoint with the same login.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import paho.mqtt.publish as publish
from video_system import CAMERA, SITE, VideoSystem, wait_until

from fsv_contract import (
    Box,
    CameraStatePayload,
    EventPayload,
    HeartbeatPayload,
    MediaRef,
    encode,
    topics,
)
from testbed.demo import start_site_broker
from testbed.rtsp import RtspServer


class RegulatorSystem(VideoSystem):
    """VideoSystem's broker and seeded central, with no edge agent and so no camera server."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, cast(RtspServer, None))  # only the edge agent would use it

    def start(self) -> None:
        """Broker with central's and the site's accounts, then central, seeded."""
        self.root.mkdir(parents=True, exist_ok=True)
        site_broker = start_site_broker(self.root, SITE)
        self.site_password = site_broker.site_password
        self.broker = site_broker.broker
        self._start_central(site_broker.admin, site_broker.central_password)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self.broker is not None
        publish.single(
            topic,
            payload,
            qos=1,
            retain=retain,
            hostname="127.0.0.1",
            port=self.broker.port,
            auth={"username": SITE, "password": self.site_password},
            client_id=f"{SITE}-test",
        )

    def raise_alert_with_snapshot(
        self,
        jpeg: bytes,
        kind: str = "no_chef_hat",
        severity: str = "warning",
        frame: bytes | None = None,
        boxes: list[Box] | None = None,
        model: str | None = None,
    ) -> str:
        """Camera online, an event announcing `jpeg` as its snapshot (and `frame` as its clean
        frame), then the uploads: its id."""
        before = self.api("GET", "/api/v1/alerts", user="admin")["total"]
        now = datetime.now(UTC)
        state = CameraStatePayload(camera=CAMERA, state="online", since=now)
        self._publish(topics.camera_state(SITE, CAMERA), encode(state), retain=True)
        sha = hashlib.sha256(jpeg).hexdigest()
        snapshot = MediaRef(
            name="snapshot.jpg", sha256=sha, bytes=len(jpeg), content_type="image/jpeg"
        )
        clean = None
        if frame is not None:
            clean = MediaRef(
                name="frame.jpg", sha256=hashlib.sha256(frame).hexdigest(), bytes=len(frame),
                content_type="image/jpeg",
            )  # fmt: skip
        event = EventPayload(
            event_id=uuid.uuid4(), site=SITE, camera=CAMERA, phase="start", kind=kind,
            station="kitchen_prep", rule="hat", start=now, score=0.9, snapshot=snapshot,
            severity=severity, frame=clean, boxes=boxes or [], model=model,
        )  # fmt: skip
        self._publish(topics.camera_event(SITE, CAMERA), encode(event))
        alert_id = str(event.event_id)
        wait_until(
            lambda: self.api("GET", "/api/v1/alerts", user="admin")["total"] == before + 1,
            20,
            "central to open the alert",
        )
        self.upload(alert_id, "snapshot.jpg", jpeg)
        if frame is not None:
            self.upload(alert_id, "frame.jpg", frame)
        return alert_id

    def heartbeat(self, payload: HeartbeatPayload) -> None:
        """Publish the site's heartbeat and wait until central's camera data shows it."""
        self._publish(topics.heartbeat(SITE), encode(payload))
        wait_until(
            lambda: (
                self.api("GET", f"/api/v1/sites/{SITE}/cameras/{CAMERA}", user="admin").get(
                    "sub_lane"
                )
                is not None
            ),
            20,
            "central to store the heartbeat",
        )

    def upload(self, event_id: str, name: str, data: bytes) -> None:
        """PUT an announced media file with the site's login, as the edge does."""
        login = base64.b64encode(f"{SITE}:{self.site_password}".encode()).decode()
        put = urllib.request.Request(
            f"{self.url}/api/v1/media/{event_id}/{name}",
            data=data,
            method="PUT",
            headers={
                "Authorization": f"Basic {login}",
                "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
                "Content-Type": "image/jpeg",
            },
        )
        with urllib.request.urlopen(put, timeout=30) as resp:
            assert resp.status in (200, 201), resp.status
