"""Pure retention decisions: which segments expire, which the watermark evicts, what is held."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from edge_agent.config import CameraConfig, EdgeConfig, StorageConfig
from edge_agent.recording.index import Hold, Segment
from fsv_contract.lanes import lane_id, split_lane

DAY = 86400.0
# The duty a camera gets when the config does not say (the field's own default).
DEFAULT_RETENTION_DAYS: int = CameraConfig.model_fields["retention_days"].default


def retention_by_camera(config: EdgeConfig) -> dict[str, int]:
    """Each configured camera's retention duty in days; its recorded sub lane has the same."""
    duties = {cam.id: cam.retention_days for cam in config.cameras}
    duties |= {lane_id(c.id, "sub"): c.retention_days for c in config.cameras if c.records_sub}
    return duties


def fallback_retention_days(config: EdgeConfig) -> int:
    """Duty for footage of cameras no longer in the config.

    Removing a camera from the config does not lift the duty on what it recorded, and the
    config no longer says which duty it had: keep it as long as the longest duty in force,
    never less than the default, so nothing is ever kept for less than it may have owed.
    """
    return max([DEFAULT_RETENTION_DAYS, *retention_by_camera(config).values()])


def is_held(segment: Segment, holds: Iterable[Hold]) -> bool:
    """True if an evidence hold on the segment's camera overlaps any part of it."""
    camera = split_lane(segment.camera)[0]  # a hold covers both lanes of its camera
    return any(
        h.camera == camera and segment.start < h.end and segment.end > h.start for h in holds
    )


def duty_cutoff(duty_days: float, now: float) -> float:
    """Footage that ended at or before this instant is past a duty of `duty_days`."""
    return now - duty_days * DAY


def cuts_into_duty(segment: Segment, duty_days: float, now: float) -> bool:
    """True if deleting the segment now removes footage still under its camera's duty."""
    return segment.end > duty_cutoff(duty_days, now)


def plan_expiry(
    segments: Iterable[Segment],
    holds: Sequence[Hold],
    retention_by_camera: Mapping[str, int],
    now: float,
    default_days: int = DEFAULT_RETENTION_DAYS,
) -> list[int]:
    """Ids of segments wholly older than their camera's duty and not held, oldest first.

    A segment is expired only once its *end* is past the duty: one that straddles the
    cutoff still holds footage the law asks for.
    """
    expired = [
        s
        for s in segments
        if not cuts_into_duty(s, retention_by_camera.get(s.camera, default_days), now)
        and not is_held(s, holds)
    ]
    return [s.id for s in sorted(expired, key=lambda s: (s.start, s.id))]


def plan_watermark(
    segments: Iterable[Segment],
    holds: Sequence[Hold],
    bytes_to_free: int,
    exclude: Iterable[int] = (),
) -> list[int]:
    """Ids to evict to free `bytes_to_free`: oldest first across cameras, never held ones.

    Only indexed segments are candidates, and the index holds finished segments only, so
    the segment a recorder is writing is never among them. Returns fewer bytes than asked
    when everything else is held (see `planned_bytes`).
    """
    if bytes_to_free <= 0:
        return []
    skip = set(exclude)
    chosen: list[int] = []
    freed = 0
    for seg in sorted(segments, key=lambda s: (s.start, s.id)):
        if freed >= bytes_to_free:
            break
        if seg.id in skip or is_held(seg, holds):
            continue
        chosen.append(seg.id)
        freed += seg.bytes
    return chosen


def planned_bytes(segments: Iterable[Segment], ids: Iterable[int]) -> int:
    """Bytes the given segment ids occupy."""
    wanted = set(ids)
    return sum(s.bytes for s in segments if s.id in wanted)


def required_free_bytes(storage: StorageConfig, total_bytes: int) -> int:
    """Free space the hard watermark demands: the larger of the percent and the byte floor.

    Never more than half the disk: a byte floor mistyped larger than the disk would
    otherwise have the cleaner wipe the whole archive in one pass.
    """
    by_percent = math.ceil(total_bytes * storage.hard_min_free_percent / 100.0)
    return min(max(storage.hard_min_free_bytes, by_percent), total_bytes // 2)


def watermark_deficit(
    free_bytes: int, required_bytes: int, write_bytes_per_s: float, interval_s: float
) -> int:
    """Bytes to evict now; 0 while the cameras cannot reach the watermark before the next pass.

    The watermark is a floor, not a trigger: the pass evicts as soon as one interval of
    writing would take free space under it, so it never does.
    """
    headroom = math.ceil(max(write_bytes_per_s, 0.0) * interval_s)
    if free_bytes >= required_bytes + headroom:
        return 0
    return required_bytes + headroom - free_bytes
