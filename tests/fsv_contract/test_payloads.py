"""Payload models: required fields enforced, unknown fields ignored, times in UTC."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fsv_contract import CameraStatePayload, EventPayload, HeartbeatPayload, MediaRef

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def event_dict(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "event_id": str(uuid4()),
        "site": "s1",
        "camera": "cam-1",
        "phase": "start",
        "kind": "no_chef_hat",
        "station": "kitchen_prep",
        "rule": "hat-1",
        "start": "2025-03-01T08:00:00Z",
        "score": 0.8,
    }
    base.update(changes)
    return base


def test_unknown_fields_are_ignored_and_defaults_filled() -> None:
    e = EventPayload.model_validate(event_dict(future_field={"x": 1}))
    assert e.severity == "warning" and e.boxes == [] and e.details == {}
    assert "future_field" not in e.model_dump()


@pytest.mark.parametrize("missing", ["event_id", "site", "phase", "kind", "start", "score"])
def test_missing_required_field_is_rejected(missing: str) -> None:
    data = event_dict()
    del data[missing]
    with pytest.raises(ValidationError, match=missing):
        EventPayload.model_validate(data)


def test_times_are_normalised_to_utc_and_naive_times_refused() -> None:
    e = EventPayload.model_validate(event_dict(start="2025-03-01T16:00:00+08:00"))
    assert e.start == T0 and e.start.tzinfo is UTC
    with pytest.raises(ValidationError, match="timezone"):
        EventPayload.model_validate(event_dict(start="2025-03-01T08:00:00"))


def test_end_phase_needs_an_end_after_the_start() -> None:
    with pytest.raises(ValidationError, match="needs `end`"):
        EventPayload.model_validate(event_dict(phase="end"))
    with pytest.raises(ValidationError, match="before"):
        EventPayload.model_validate(event_dict(phase="end", end="2025-03-01T07:00:00Z"))
    e = EventPayload.model_validate(event_dict(phase="end", end="2025-03-01T08:00:05Z"))
    assert e.end == T0 + timedelta(seconds=5)


@pytest.mark.parametrize(
    "change",
    [
        {"score": 1.5},
        {"score": "NaN"},
        {"phase": "middle"},
        {"severity": "fatal"},
        {"kind": "Bad Kind"},
        {"event_id": "not-a-uuid"},
        {"boxes": [{"x": 2, "y": 0, "w": 0, "h": 0, "label": "p", "score": 1}]},
        {"site": "../etc"},
    ],
)
def test_wrong_values_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EventPayload.model_validate(event_dict(**change))


def test_media_ref_names_cannot_escape_a_folder() -> None:
    ok = {"name": "clip.mp4", "sha256": "a" * 64, "bytes": 10, "content_type": "video/mp4"}
    assert MediaRef.model_validate(ok).name == "clip.mp4"
    for name in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(ValidationError):
            MediaRef.model_validate({**ok, "name": name})


def test_other_payloads_carry_v_and_utc() -> None:
    cs = CameraStatePayload(
        camera="cam-1", state="offline", since=T0.astimezone(timezone(timedelta(hours=8)))
    )
    assert cs.v == 1 and cs.since.tzinfo is UTC
    hb = HeartbeatPayload(ts=T0, uptime_s=1, disk_free_bytes=1, disk_total_bytes=2, cpu_percent=3)
    assert hb.model_dump(mode="json")["ts"] == "2025-03-01T08:00:00Z"
