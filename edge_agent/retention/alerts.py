"""Making retention loud: turns what a pass did into logged, stored and published events."""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from edge_agent.recording.index import Segment
from edge_agent.retention import events as ev
from edge_agent.retention.events import RetentionEvent, RetentionEventLog
from edge_agent.retention.forecast import StorageForecast
from edge_agent.retention.planner import DAY, cuts_into_duty

log = logging.getLogger(__name__)

AlertCallback = Callable[[RetentionEvent], None]


class RetentionAlerts:
    """Raises retention events: logs them, keeps them, hands them to `on_alert`.

    Conditions that last (retention at risk, space that cannot be freed, files that cannot
    be deleted, failing passes) are raised when they begin, not on every pass; an eviction
    under the duty is raised every time it happens, one event per camera.
    """

    def __init__(self, log_db: RetentionEventLog, on_alert: AlertCallback | None = None) -> None:
        self.log_db = log_db
        self.on_alert = on_alert
        self.raised: list[RetentionEvent] = []  # events of the current pass
        # At risk is a lasting condition: one raised before a restart is not raised again.
        try:
            last = log_db.last_kind((ev.RETENTION_AT_RISK, ev.RETENTION_OK))
        except sqlite3.Error:
            log.exception("cannot read the last retention risk event")
            last = None
        self._at_risk = last == ev.RETENTION_AT_RISK
        self._unrecoverable = False
        self._failed_paths: set[str] = set()
        self._pass_failing = False

    def begin_pass(self) -> None:
        """Forget the previous pass's events."""
        self.raised = []

    def evictions(
        self,
        evicted: Sequence[Segment],
        oldest_kept: Mapping[str, float],
        duties: Mapping[str, int],
        fallback_days: int,
        now: float,
    ) -> None:
        """One event per camera whose duty the watermark eviction cut into."""
        cut: dict[str, list[Segment]] = defaultdict(list)
        for seg in evicted:
            if cuts_into_duty(seg, duties.get(seg.camera, fallback_days), now):
                cut[seg.camera].append(seg)
        for camera, segs in sorted(cut.items()):
            duty = duties.get(camera, fallback_days)
            days_kept = (now - oldest_kept.get(camera, now)) / DAY
            self.emit(
                RetentionEvent(
                    ev.EVICTION_BELOW_DUTY,
                    now,
                    camera,
                    f"camera {camera}: disk full, evicted {len(segs)} segments under the "
                    f"{duty}-day retention duty; footage now held for {days_kept:.1f} days",
                    {
                        "segments": len(segs),
                        "bytes": sum(s.bytes for s in segs),
                        "evicted_from": min(s.start for s in segs),
                        "evicted_to": max(s.end for s in segs),
                        "duty_days": duty,
                        "days_held": round(days_kept, 3),
                    },
                )
            )

    def shortfall(self, short: int, free: int, required: int, now: float) -> None:
        """Raise once when only held evidence is left and free space stays under the watermark."""
        if short <= 0:
            self._unrecoverable = False
            return
        if self._unrecoverable:
            log.error("still %d bytes short of the hard watermark", short)
            return
        self._unrecoverable = True
        self.emit(
            RetentionEvent(
                ev.SPACE_UNRECOVERABLE,
                now,
                None,
                f"free space {free} bytes is under the hard watermark of {required} bytes and "
                f"only held evidence is left to delete: {short} bytes short",
                {"free_bytes": free, "required_free_bytes": required, "shortfall_bytes": short},
            )
        )

    def failures(self, failed: Sequence[str], now: float) -> None:
        """Raise for files that newly failed to delete, not again while they keep failing."""
        new = sorted(set(failed) - self._failed_paths)
        self._failed_paths = set(failed)
        if not new:
            return
        self.emit(
            RetentionEvent(
                ev.DELETE_FAILED,
                now,
                None,
                f"{len(new)} segment files cannot be deleted (first: {new[0]})",
                {"paths": new[:20], "count": len(new)},
            )
        )

    def risk(self, forecast: StorageForecast) -> None:
        """Raise when retention becomes at risk and when it is safe again."""
        if forecast.at_risk == self._at_risk:
            return
        self._at_risk = forecast.at_risk
        days = forecast.days_forecast
        details = {
            "days_forecast": None if days is None else round(days, 3),
            "risk_margin_days": forecast.risk_margin_days,
            "cameras": forecast.at_risk_cameras,
            "free_bytes": forecast.free_bytes,
            "capacity_bytes": forecast.capacity_bytes,
        }
        if forecast.at_risk:
            message = (
                f"retention at risk: the disk holds {days or 0.0:.1f} days, less than the duty "
                f"plus {forecast.risk_margin_days} days for {', '.join(forecast.at_risk_cameras)}"
            )
            self.emit(RetentionEvent(ev.RETENTION_AT_RISK, forecast.ts, None, message, details))
        else:
            message = "retention no longer at risk: the disk holds every camera's duty"
            self.emit(RetentionEvent(ev.RETENTION_OK, forecast.ts, None, message, details))

    def pass_failed(self, error: Exception, now: float) -> None:
        """Raise once when passes start failing."""
        if not self._pass_failing:
            self._pass_failing = True
            self.emit(
                RetentionEvent(ev.CLEANUP_FAILED, now, None, f"retention pass failed: {error!r}")
            )

    def pass_succeeded(self) -> None:
        """Passes work again."""
        self._pass_failing = False

    def emit(self, event: RetentionEvent) -> None:
        """Log, keep and hand one event to the alert callback."""
        level = logging.INFO if event.kind == ev.RETENTION_OK else logging.ERROR
        log.log(level, "%s", event.message)
        self.raised.append(event)
        try:
            self.log_db.add(event)
        except sqlite3.Error:
            # A full disk can refuse the write: the log line and the callback still carry it.
            log.exception("cannot keep retention event %s", event.kind)
        callback = self.on_alert
        if callback is None:
            return
        try:
            callback(event)
        except Exception:  # noqa: BLE001 - a broken subscriber must not stop retention
            log.exception("retention alert callback failed for %s", event.kind)
