"""The narrow interface detectors and recorders use to hand events and media to the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from fsv_contract.payloads import CameraStatePayload, EventPayload


class EventSink(Protocol):
    """Where events go. `put_event` returns once the event is durable on disk."""

    def put_event(self, payload: EventPayload) -> None:
        """Store an event for delivery to central (QoS 1, in order per camera)."""

    def queue_media(
        self, event_id: str, name: str, path: Path, sha256: str, content_type: str
    ) -> None:
        """Queue a snapshot or clip file for upload to central under the event id."""


class CameraStateSink(Protocol):
    """Where camera online/offline changes go (the same outbox as events)."""

    def put_camera_state(self, payload: CameraStatePayload) -> None:
        """Store a camera state change for delivery to central."""
