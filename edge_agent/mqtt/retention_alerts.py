"""Turns the retention cleaner's events (eviction below duty, at risk, ...) into outbox events."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from edge_agent.errors import OutboxError
from edge_agent.mqtt.sink import EventSink
from fsv_contract.payloads import EventPayload

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "critical"]
# Losing footage inside the legal duty, or being about to, is what regulators must see first.
SEVERITY: dict[str, Severity] = {
    "eviction_below_duty": "critical",
    "retention_at_risk": "critical",
    "space_unrecoverable": "critical",
    "retention_ok": "info",
    "delete_failed": "warning",
    "cleanup_failed": "warning",
}


class RetentionEventLike(Protocol):
    """What edge_agent.retention.events.RetentionEvent offers."""

    @property
    def kind(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def camera(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


def retention_payload(
    event: RetentionEventLike, site: str, stations: dict[str, str]
) -> EventPayload:
    """An instant event (sent once, already ended) for one retention event."""
    at = datetime.fromtimestamp(event.ts, UTC)
    camera = event.camera or ""
    return EventPayload(
        event_id=uuid.uuid4(),
        site=site,
        camera=camera,
        phase="end",
        kind=event.kind,
        station=stations.get(camera, ""),
        rule="retention",
        severity=SEVERITY.get(event.kind, "warning"),
        start=at,
        end=at,
        score=1.0,
        details={"message": event.message, **event.details},
    )


def retention_alert_sink(
    sink: EventSink, site: str, stations: dict[str, str]
) -> Callable[[RetentionEventLike], None]:
    """The cleaner's `on_alert` callback: one outbox event per retention event."""

    def on_alert(event: RetentionEventLike) -> None:
        try:
            sink.put_event(retention_payload(event, site, stations))
        except (OutboxError, ValueError) as e:
            log.error("retention event %s could not be queued: %s", event.kind, e)

    return on_alert
