"""`edge-agent storage`: per-camera days held, duty, days forecast, bytes, gaps and holds."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.config import EdgeConfig
from edge_agent.errors import StorageReportError
from edge_agent.recording.index import Gap, Hold
from edge_agent.retention import queries
from edge_agent.retention.events import RetentionEvent, read_recent_events
from edge_agent.retention.files import DiskUsageProbe
from edge_agent.retention.forecast import CameraStats, CameraUsage, build_forecast


@dataclass(frozen=True)
class IndexSnapshot:
    """What the report reads from the segment index."""

    stats: dict[str, CameraStats]
    gaps: list[Gap]
    holds: list[Hold]
    states: dict[str, dict[str, Any]]  # each camera's latest state row (state, reason, ts)
    first_seen: dict[str, float]  # when the agent first reported each camera's state


def read_index(path: Path) -> IndexSnapshot:
    """Per-camera stats, gaps and active holds from the index at `path`, opened read-only."""
    if not path.is_file():
        raise StorageReportError(f"no segment index at {path} (has the agent run yet?)")
    try:
        db = queries.open_readonly(path)
        try:
            holds = [
                Hold(**r)
                for r in db.table("holds").rows_where("released_at is null", order_by="id")
            ]
            gaps = [Gap(**r) for r in db.table("gaps").rows_where(order_by="start, id")]
            stats = queries.camera_stats(db, holds)
            states, first_seen = _states(db)
        finally:
            db.close()
    except sqlite3.Error as e:
        raise StorageReportError(f"cannot read the segment index {path}: {e}") from e
    return IndexSnapshot(stats, gaps, holds, states, first_seen)


def _states(db: Any) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Each camera's latest state row and the time of its first one."""
    latest: dict[str, dict[str, Any]] = {}
    first: dict[str, float] = {}
    rows = db.execute(
        "select camera, state, reason, ts, min_ts from camera_states join "
        "(select camera as c, max(id) as last, min(ts) as min_ts from camera_states "
        "group by camera) on camera = c and id = last"
    ).fetchall()
    for camera, state, reason, ts, min_ts in rows:
        latest[camera] = {"state": state, "reason": reason, "since": ts}
        first[camera] = min_ts
    return latest, first


def _recent_events(config: EdgeConfig) -> list[RetentionEvent]:
    path = config.state_dir / "retention.db"
    try:
        return read_recent_events(path)
    except sqlite3.Error as e:
        raise StorageReportError(f"cannot read the retention events {path}: {e}") from e


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def gap_summary(
    gaps: Sequence[Gap], held_from: float | None, now: float, never_since: float | None = None
) -> dict[str, Any]:
    """Count and seconds of a camera's gaps within [held_from, now], and its open gap if any.

    A camera that never recorded (`held_from` None) counts all its gaps; without any gap
    row, `never_since` (when the agent first knew it) opens one: nothing was ever recorded.
    """
    count, seconds = 0, 0.0
    open_since: float | None = None
    for gap in gaps:
        end = now if gap.end is None else gap.end
        if gap.end is None:
            open_since = gap.start if open_since is None else min(open_since, gap.start)
        if held_from is not None and end <= held_from:
            continue
        count += 1
        seconds += max(0.0, end - max(gap.start, held_from or gap.start))
    if held_from is None and count == 0 and never_since is not None:
        count, seconds, open_since = 1, max(0.0, now - never_since), never_since
    return {
        "count": count,
        "seconds": round(seconds, 3),
        "open_since": _iso(open_since),
        "open_seconds": None if open_since is None else round(now - open_since, 3),
    }


def _camera_entry(
    cam: CameraUsage, days_forecast: float | None, snap: IndexSnapshot, now: float
) -> dict[str, Any]:
    return {
        "camera": cam.camera,
        "configured": cam.configured,
        "retention_days": cam.duty_days,
        "days_held": round(cam.days_held, 3),
        "oldest": _iso(cam.oldest_start),
        "newest": _iso(cam.newest_end),
        "days_forecast": None if days_forecast is None else round(days_forecast, 3),
        "at_risk": cam.at_risk,
        "bytes": cam.bytes,
        "held_bytes": cam.held_bytes,
        "segments": cam.segments,
        "bytes_per_s": None if cam.bytes_per_s is None else round(cam.bytes_per_s, 3),
        "gaps": gap_summary(
            [g for g in snap.gaps if g.camera == cam.camera],
            cam.oldest_start,
            now,
            snap.first_seen.get(cam.camera, now) if cam.configured else None,
        ),
        "state": _state_entry(snap.states.get(cam.camera), cam.configured),
        "holds": [
            {
                "id": h.id,
                "start": _iso(h.start),
                "end": _iso(h.end),
                "reason": h.reason,
                "ref": h.ref,
            }
            for h in snap.holds
            if h.camera == cam.camera
        ],
    }


def _state_entry(row: dict[str, Any] | None, configured: bool) -> dict[str, Any]:
    """The camera's latest state and why (what makes it offline, or that it never ran)."""
    if row is None:
        reason = "never started by the agent" if configured else "not configured"
        return {"state": "offline" if configured else "removed", "reason": reason, "since": None}
    return {"state": row["state"], "reason": row["reason"], "since": _iso(row["since"])}


def storage_report(
    config: EdgeConfig,
    now: float | None = None,
    disk_usage: DiskUsageProbe = shutil.disk_usage,
) -> dict[str, Any]:
    """The storage report as plain data (what `--json` prints)."""
    now = time.time() if now is None else now
    snap = read_index(config.state_dir / "index.db")
    try:
        disk = disk_usage(config.storage.path)
    except OSError as e:
        raise StorageReportError(
            f"cannot read the storage folder {config.storage.path}: {e.strerror or e}"
        ) from e
    forecast = build_forecast(config, snap.stats, disk.total, disk.free, now)
    days = forecast.days_forecast
    return {
        "site_id": config.site_id,
        "generated_at": _iso(now),
        "storage_path": str(config.storage.path),
        "disk": {
            "total_bytes": disk.total,
            "free_bytes": disk.free,
            "required_free_bytes": forecast.required_free_bytes,
        },
        "days_forecast": None if days is None else round(days, 3),
        "risk_margin_days": forecast.risk_margin_days,
        "at_risk": forecast.at_risk,
        "at_risk_cameras": forecast.at_risk_cameras,
        "cameras_without_rate": list(forecast.cameras_without_rate),
        "totals": {
            "bytes": forecast.segment_bytes,
            "segments": sum(s.segments for s in snap.stats.values()),
            "held_bytes": forecast.held_bytes,
            "capacity_bytes": forecast.capacity_bytes,
            "active_holds": len(snap.holds),
        },
        "cameras": [_camera_entry(c, days, snap, now) for c in forecast.cameras],
        "recent_events": [e.as_dict() for e in _recent_events(config)],
    }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _local(iso: str | None, zone: ZoneInfo) -> str:
    if iso is None:
        return "-"
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _days(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def format_report(report: dict[str, Any], zone: ZoneInfo) -> str:
    """The report as a table for a terminal, times in the site's zone."""
    lines = [
        f"site {report['site_id']}  storage {report['storage_path']}  (times {zone.key})",
        f"{'camera':<20} {'held':>6} {'duty':>5} {'fcast':>6} {'size':>10} {'segs':>7} "
        f"{'gaps':>5} {'gap s':>8} {'holds':>5}  oldest -> newest",
    ]
    for cam in report["cameras"]:
        gaps, state = cam["gaps"], cam["state"]
        flag = "  AT RISK" if cam["at_risk"] else ""
        offline = ""
        if state["state"] != "online" and cam["configured"]:
            since = gaps["open_since"] or state["since"]
            offline = f"  offline since {_local(since, zone)}: {state['reason']}"
        lines.append(
            f"{cam['camera']:<20} {_days(cam['days_held']):>6} {cam['retention_days']:>5} "
            f"{_days(cam['days_forecast']):>6} {_size(cam['bytes']):>10} {cam['segments']:>7} "
            f"{gaps['count']:>5} {gaps['seconds']:>8.0f} {len(cam['holds']):>5}  "
            f"{_local(cam['oldest'], zone)} -> {_local(cam['newest'], zone)}{flag}{offline}"
        )
    disk, totals = report["disk"], report["totals"]
    lines.append(
        f"total {_size(totals['bytes'])} in {totals['segments']} segments, "
        f"{_size(totals['held_bytes'])} under {totals['active_holds']} active holds; "
        f"disk free {_size(disk['free_bytes'])} of {_size(disk['total_bytes'])} "
        f"(watermark {_size(disk['required_free_bytes'])})"
    )
    days = _days(report["days_forecast"])
    if report["at_risk"]:
        lines.append(
            f"RETENTION AT RISK: the disk holds {days} days, less than the duty plus "
            f"{report['risk_margin_days']} days for {', '.join(report['at_risk_cameras'])}"
        )
    else:
        lines.append(f"retention OK: the disk holds {days} days for all cameras together")
    if report["cameras_without_rate"]:
        lines.append(
            "no bitrate observed yet (not in the forecast): "
            + ", ".join(report["cameras_without_rate"])
        )
    return "\n".join(lines)


def print_storage_report(config: EdgeConfig, as_json: bool = False) -> int:
    """Print the storage report (a table, or JSON); returns the exit code."""
    report = storage_report(config)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_report(report, ZoneInfo(config.timezone)))
    return 0
