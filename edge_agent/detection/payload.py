"""A stored event as the MQTT contract's EventPayload (start or end phase)."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.detection.store import MediaInfo, StoredEvent
from fsv_contract.payloads import Box, EventPayload, MediaRef


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ref(media: MediaInfo | None) -> MediaRef | None:
    if media is None:
        return None
    return MediaRef(
        name=media.name,
        sha256=media.sha256,
        bytes=media.bytes,
        content_type=media.content_type,
        start=_utc(media.start),
        end=_utc(media.end),
    )


def event_payload(site: str, event: StoredEvent, phase: str) -> EventPayload:
    """The payload of one phase: `start` when the violation began (again with the first
    clip, once cut), `end` with the clip."""
    ending = phase == "end"
    details = dict(event.details)
    if ending and event.clip_state != "done":
        details["clip"] = event.clip_state
        if event.clip_error:
            details["clip_error"] = event.clip_error
    return EventPayload(
        event_id=event.id,  # pydantic parses the UUID text
        site=site,
        camera=event.camera,
        phase="end" if ending else "start",
        kind=event.kind,
        station=event.station,
        rule=event.rule,
        severity=event.severity,
        start=_utc(event.start),
        end=_utc(event.end) if ending else None,
        score=min(1.0, max(0.0, event.score)),
        boxes=[Box.model_validate(b) for b in event.boxes[:256]],
        snapshot=_ref(event.snapshot),
        clip=_ref(event.clip) if ending else None,
        first_clip=_ref(event.first_clip),
        frame=_ref(event.frame),
        model=event.model,
        details=details,
        created_at=datetime.now(UTC),
    )
