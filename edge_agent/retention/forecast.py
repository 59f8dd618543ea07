"""Pure storage forecast: observed bitrates, how many days the disk holds, retention at risk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import Hold, Segment
from edge_agent.recording.lanes import recording_lanes
from edge_agent.retention.planner import (
    DAY,
    fallback_retention_days,
    is_held,
    required_free_bytes,
    retention_by_camera,
)

# Bitrates are averaged over the last day a camera recorded, so day and night scenes
# (IR noise at night often costs more bits) both weigh in.
RATE_WINDOW_S = DAY


def observed_rates(
    segments: Iterable[Segment], window_s: float = RATE_WINDOW_S
) -> dict[str, float]:
    """Bytes per recorded second of each camera, over the window before its newest segment.

    The window ends at each camera's own newest segment, so a camera offline for a week
    still has the rate it records at.
    """
    by_camera: dict[str, list[Segment]] = defaultdict(list)
    for seg in segments:
        by_camera[seg.camera].append(seg)
    rates: dict[str, float] = {}
    for camera, segs in by_camera.items():
        newest_end = max(s.end for s in segs)
        recent = [s for s in segs if s.end > newest_end - window_s and s.duration > 0]
        seconds = sum(s.duration for s in recent)
        if seconds > 0:
            rates[camera] = sum(s.bytes for s in recent) / seconds
    return rates


def forecast_days(
    bytes_per_day: Mapping[str, float], duty_days: Mapping[str, int], capacity_bytes: float
) -> float | None:
    """Days of footage the capacity holds for all cameras together; None if no rate is known.

    The cleaner expires each camera at its duty and evicts oldest-first across cameras
    beyond that, so every camera keeps the same horizon D, capped by its own duty: D solves
    sum(rate_c * min(duty_c, D)) = capacity. Past the longest duty, the spare space is
    spread over all cameras, so D keeps growing with capacity (and equals capacity / total
    rate whenever all duties are equal).
    """
    rates = {c: r for c, r in bytes_per_day.items() if r > 0}
    if not rates:
        return None
    if capacity_bytes <= 0:
        return 0.0
    total_rate = sum(rates.values())
    active_rate = total_rate
    used = 0.0
    prev = 0.0
    for duty in sorted({float(duty_days[c]) for c in rates}):
        cost = active_rate * (duty - prev)
        if used + cost >= capacity_bytes:
            return prev + (capacity_bytes - used) / active_rate
        used += cost
        active_rate -= sum(r for c, r in rates.items() if duty_days[c] == duty)
        prev = duty
    return prev + (capacity_bytes - used) / total_rate


@dataclass(frozen=True)
class CameraStats:
    """What the index holds of one camera, summed up."""

    segments: int
    bytes: int
    held_bytes: int  # bytes of segments overlapping an active evidence hold
    oldest_start: float | None
    newest_end: float | None
    bytes_per_s: float | None  # observed over the last day it recorded


def stats_from_segments(
    segments: Sequence[Segment], holds: Sequence[Hold], window_s: float = RATE_WINDOW_S
) -> dict[str, CameraStats]:
    """Per-camera stats from segment rows (the reference the SQL in `queries` must match)."""
    rates = observed_rates(segments, window_s)
    by_camera: dict[str, list[Segment]] = defaultdict(list)
    for seg in segments:
        by_camera[seg.camera].append(seg)
    return {
        camera: CameraStats(
            segments=len(segs),
            bytes=sum(s.bytes for s in segs),
            held_bytes=sum(s.bytes for s in segs if is_held(s, holds)),
            oldest_start=min(s.start for s in segs),
            newest_end=max(s.end for s in segs),
            bytes_per_s=rates.get(camera),
        )
        for camera, segs in sorted(by_camera.items())
    }


@dataclass(frozen=True)
class CameraUsage:
    """One camera's footage on disk and its outlook."""

    camera: str
    configured: bool
    duty_days: int
    segments: int
    bytes: int
    held_bytes: int
    bytes_per_s: float | None
    oldest_start: float | None
    newest_end: float | None
    days_held: float
    at_risk: bool


@dataclass(frozen=True)
class StorageForecast:
    """The disk's state and how many days it holds, as of `ts`."""

    ts: float
    total_bytes: int
    free_bytes: int
    required_free_bytes: int
    segment_bytes: int
    held_bytes: int
    capacity_bytes: int
    days_forecast: float | None
    risk_margin_days: int
    at_risk: bool
    cameras: tuple[CameraUsage, ...]
    cameras_without_rate: tuple[str, ...]

    @property
    def at_risk_cameras(self) -> list[str]:
        """Cameras whose duty (plus margin) the disk is forecast not to hold."""
        return [c.camera for c in self.cameras if c.at_risk]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (heartbeats, the storage report)."""
        data = asdict(self)
        data["cameras"] = [asdict(c) for c in self.cameras]
        data["cameras_without_rate"] = list(self.cameras_without_rate)
        data["at_risk_cameras"] = self.at_risk_cameras
        return data


def recording_cameras(config: EdgeConfig) -> list[str]:
    """Cameras (recording lanes: main streams and recorded sub streams) that fill the disk."""
    return recording_lanes(config)


def build_forecast(
    config: EdgeConfig,
    stats: Mapping[str, CameraStats],
    total_bytes: int,
    free_bytes: int,
    now: float,
) -> StorageForecast:
    """Everything `status()` and the storage report say about the disk, from plain inputs.

    Capacity is what the footage may occupy: free space plus every segment that is not
    under an evidence hold, less the space the hard watermark keeps free.
    """
    duties = retention_by_camera(config)
    fallback = fallback_retention_days(config)
    segment_bytes = sum(s.bytes for s in stats.values())
    held_bytes = sum(s.held_bytes for s in stats.values())
    required = required_free_bytes(config.storage, total_bytes)
    capacity = free_bytes + segment_bytes - held_bytes - required
    rates = {c: s.bytes_per_s for c, s in stats.items() if s.bytes_per_s}
    recording = recording_cameras(config)
    days = forecast_days(
        {c: rates[c] * DAY for c in recording if c in rates}, duties, float(capacity)
    )
    margin = config.storage.risk_margin_days
    cameras = [
        _camera_usage(
            camera,
            stats.get(camera),
            duty=duties.get(camera, fallback),
            configured=camera in duties,
            at_risk=camera in recording
            and days is not None
            and days < duties.get(camera, fallback) + margin,
        )
        for camera in [*duties, *sorted(set(stats) - set(duties))]
    ]
    return StorageForecast(
        ts=now,
        total_bytes=total_bytes,
        free_bytes=free_bytes,
        required_free_bytes=required,
        segment_bytes=segment_bytes,
        held_bytes=held_bytes,
        capacity_bytes=capacity,
        days_forecast=days,
        risk_margin_days=margin,
        at_risk=any(c.at_risk for c in cameras),
        cameras=tuple(cameras),
        cameras_without_rate=tuple(c for c in recording if c not in rates),
    )


def _camera_usage(
    camera: str, stats: CameraStats | None, *, duty: int, configured: bool, at_risk: bool
) -> CameraUsage:
    stats = stats or CameraStats(0, 0, 0, None, None, None)
    oldest, newest = stats.oldest_start, stats.newest_end
    held = (newest - oldest) / DAY if oldest is not None and newest is not None else 0.0
    return CameraUsage(
        camera=camera,
        configured=configured,
        duty_days=duty,
        segments=stats.segments,
        bytes=stats.bytes,
        held_bytes=stats.held_bytes,
        bytes_per_s=stats.bytes_per_s,
        oldest_start=oldest,
        newest_end=newest,
        days_held=held,
        at_risk=at_risk,
    )
