"""The retention cleaner thread: expires footage past its duty, evicts under the hard watermark."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlite_utils

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import Hold, Segment, SegmentIndex
from edge_agent.retention import queries
from edge_agent.retention.alerts import AlertCallback, RetentionAlerts
from edge_agent.retention.events import RetentionEvent, RetentionEventLog
from edge_agent.retention.files import DiskUsageProbe, delete_segment_file, remove_empty_dirs
from edge_agent.retention.forecast import StorageForecast, build_forecast, recording_cameras
from edge_agent.retention.planner import (
    duty_cutoff,
    fallback_retention_days,
    is_held,
    plan_expiry,
    plan_watermark,
    required_free_bytes,
    retention_by_camera,
    watermark_deficit,
)

log = logging.getLogger(__name__)

# Rows follow their files in batches this size, so a crash mid-pass leaves at most one
# batch of rows without files (the start-up repair drops those).
ROW_BATCH = 500
# The forecast sums the whole index (a table scan): often enough for a daily-scale figure.
FORECAST_INTERVAL_S = 600.0
# While a recording camera has no observed rate yet (first start), a pass this often.
RATE_POLL_S = 10.0
# Segments read per camera and query while looking for the oldest ones to delete.
PAGE = 500
# Expired segments deleted per camera and pass at most (a minute's pass normally has one).
EXPIRY_BATCH = 20_000


@dataclass(frozen=True)
class CleanupResult:
    """What one cleanup pass did."""

    expired: tuple[int, ...]  # segment ids deleted because they are past their duty
    evicted: tuple[int, ...]  # segment ids deleted under the hard watermark
    failed: tuple[str, ...]  # relative paths that could not be deleted (rows kept)
    freed_bytes: int
    shortfall_bytes: int  # watermark deficit left after every unheld segment was taken
    removed_dirs: int
    forecast: StorageForecast | None  # None when no forecast was due this pass
    events: tuple[RetentionEvent, ...]


@dataclass
class _Deleted:
    segments: list[Segment] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(s.id for s in self.segments)

    @property
    def freed(self) -> int:
        return sum(s.bytes for s in self.segments)


class RetentionCleaner:
    """Keeps each camera's footage for its duty and the disk from filling, in a named thread.

    Alerts: every event (an eviction that cuts into a camera's duty, retention at risk and
    back to normal, space that cannot be freed because everything left is held, files that
    cannot be deleted, a failed pass) is logged, kept in `<state_dir>/retention.db`, and
    handed to `on_alert(event)`. The callback runs on the cleaner thread and must return
    quickly (queue the event, e.g. into the MQTT outbox); if it raises, the error is logged
    and the cleaner carries on. Set it in the constructor or as the `on_alert` attribute.
    """

    name = "retention"

    def __init__(
        self,
        config: EdgeConfig,
        index: SegmentIndex,
        *,
        disk_usage: DiskUsageProbe = shutil.disk_usage,
        on_alert: AlertCallback | None = None,
        events: RetentionEventLog | None = None,
        forecast_interval_s: float = FORECAST_INTERVAL_S,
    ) -> None:
        self.config = config
        self.index = index
        self.disk_usage = disk_usage
        self.forecast_interval_s = forecast_interval_s
        self.events = events or RetentionEventLog(config.state_dir / "retention.db")
        self.alerts = RetentionAlerts(self.events, on_alert)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()
        self._status: StorageForecast | None = None
        self._stats_db: sqlite_utils.Database | None = None

    @property
    def on_alert(self) -> AlertCallback | None:
        """The callback every retention event is handed to (None: log and keep only)."""
        return self.alerts.on_alert

    @on_alert.setter
    def on_alert(self, callback: AlertCallback | None) -> None:
        self.alerts.on_alert = callback

    # --- component ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the cleaner thread: a pass at once, then one every cleanup interval."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (a recorder found the disk full or low); safe from any thread."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (a pass in progress stops deleting at once) and close databases."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            if self._thread.is_alive():
                log.error("retention cleaner did not stop within 30 s")
            self._thread = None
        with self._pass_lock:
            if self._stats_db is not None:
                self._stats_db.close()
                self._stats_db = None
            self.events.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.alerts.pass_succeeded()
            except Exception as e:  # noqa: BLE001 - the duty outlives one bad pass: retry next time
                log.exception("retention pass failed")
                self.alerts.pass_failed(e, time.time())
            self._wake.wait(self._next_pass_in())
            self._wake.clear()

    def _next_pass_in(self) -> float:
        """Seconds to the next pass: the cleanup interval, sooner while the forecast lacks
        a camera's rate (first start: at-risk is raised as soon as the rates are known)."""
        interval = self.config.storage.cleanup_interval_s
        status = self._status
        if status is not None and status.cameras_without_rate:
            return min(interval, RATE_POLL_S)
        return interval

    def status(self) -> StorageForecast | None:
        """The latest forecast (days forecast, at-risk flag, bytes per camera); None before it."""
        # Read without the pass lock so a heartbeat never waits for a long pass; the
        # forecast is immutable and replaced whole.
        return self._status

    # --- one pass ----------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> CleanupResult:
        """Expire, evict under the watermark, forecast when due; returns what was done."""
        now = time.time() if now is None else now
        with self._pass_lock:
            return self._run(now)

    def _run(self, now: float) -> CleanupResult:
        self.alerts.begin_pass()
        cameras = self.index.cameras()
        expired = self._delete(self._expiry_plan(cameras, now))
        evicted, shortfall = self._enforce_watermark(cameras, now)
        self.alerts.failures(expired.failed + evicted.failed, now)
        removed_dirs = remove_empty_dirs(
            self.config.storage.path, [s.path for s in expired.segments + evicted.segments], now
        )
        forecast = None
        last = self._status
        if (
            last is None
            or last.cameras_without_rate  # a camera's first segment: forecast at once
            or now - last.ts >= self.forecast_interval_s
            or now < last.ts
        ):
            forecast = self._forecast(now)
            self.alerts.risk(forecast)
            self._status = forecast
        if expired.segments or evicted.segments:
            log.info(
                "retention: %d expired, %d evicted, %d bytes freed, %d folders removed",
                len(expired.segments),
                len(evicted.segments),
                expired.freed + evicted.freed,
                removed_dirs,
            )
        return CleanupResult(
            expired=expired.ids,
            evicted=evicted.ids,
            failed=tuple(expired.failed + evicted.failed),
            freed_bytes=expired.freed + evicted.freed,
            shortfall_bytes=shortfall,
            removed_dirs=removed_dirs,
            forecast=forecast,
            events=tuple(self.alerts.raised),
        )

    def _expiry_plan(self, cameras: Sequence[str], now: float) -> list[Segment]:
        """Segments past their camera's duty and not held, oldest first, camera by camera.

        At most EXPIRY_BATCH per camera and pass: after a long stop or a shortened duty the
        backlog is worked off over a few passes instead of loaded into memory at once.
        """
        duties = retention_by_camera(self.config)
        fallback = fallback_retention_days(self.config)
        holds = self.index.active_holds()
        plan: list[Segment] = []
        for camera in cameras:
            cutoff = duty_cutoff(duties.get(camera, fallback), now)
            chosen: list[Segment] = []
            last = None
            while len(chosen) < EXPIRY_BATCH:
                with self.index.reading() as db:
                    page = queries.oldest_segments(db, camera, last, PAGE)
                page = [s for s in page if s.start < cutoff]
                ids = set(plan_expiry(page, holds, duties, now, fallback))
                chosen += [s for s in page if s.id in ids]
                if len(page) < PAGE:
                    break
                last = page[-1]
            plan += chosen[:EXPIRY_BATCH]
        return plan

    def _enforce_watermark(self, cameras: Sequence[str], now: float) -> tuple[_Deleted, int]:
        """Evict oldest-first across cameras while free space is under the hard watermark."""
        storage = self.config.storage
        disk = self.disk_usage(storage.path)
        required = required_free_bytes(storage, disk.total)
        with self.index.reading() as db:
            rate = queries.write_rate(db, recording_cameras(self.config))
        deficit = watermark_deficit(disk.free, required, rate, storage.cleanup_interval_s)
        if deficit <= 0:
            self.alerts.shortfall(0, disk.free, required, now)
            return _Deleted(), 0
        holds = self.index.active_holds()
        candidates = self._oldest_candidates(cameras, holds, deficit)
        chosen = set(plan_watermark(candidates, holds, deficit))
        plan = [s for s in candidates if s.id in chosen]
        log.warning(
            "free space %d bytes would fall under the hard watermark of %d bytes before the "
            "next pass: evicting %d segments",
            disk.free,
            required,
            len(plan),
        )
        deleted = self._delete(plan)
        oldest_kept: dict[str, float] = {}
        for camera in {s.camera for s in deleted.segments}:
            with self.index.reading() as db:
                first = queries.oldest_segments(db, camera, limit=1)
            oldest_kept[camera] = first[0].start if first else now
        duties = retention_by_camera(self.config)
        fallback = fallback_retention_days(self.config)
        self.alerts.evictions(deleted.segments, oldest_kept, duties, fallback, now)
        short = max(0, deficit - deleted.freed)
        self.alerts.shortfall(short, disk.free, required, now)
        return deleted, short

    def _oldest_candidates(
        self, cameras: Sequence[str], holds: Sequence[Hold], deficit: int
    ) -> list[Segment]:
        """Each camera's oldest segments until their unheld bytes cover the deficit.

        The global oldest-first plan never reaches past that prefix of any one camera, so
        it is the same plan as over the whole index, at the cost of a few index pages.
        """
        found: list[Segment] = []
        for camera in cameras:
            unheld, last = 0, None
            while unheld < deficit:
                with self.index.reading() as db:
                    page = queries.oldest_segments(db, camera, last, PAGE)
                if not page:
                    break
                found += page
                unheld += sum(s.bytes for s in page if not is_held(s, holds))
                last = page[-1]
        return found

    def _delete(self, plan: Sequence[Segment]) -> _Deleted:
        """Delete files first, then their index rows; a file that will not go keeps its row."""
        done = _Deleted()
        if not plan:
            return done
        # Holds are read again right before deleting: one may have been placed meanwhile.
        holds = self.index.active_holds()
        forgotten = 0
        for seg in sorted(plan, key=lambda s: (s.start, s.id)):
            if self._stop.is_set():
                break  # shutting down: the rest waits for the next start
            if is_held(seg, holds):
                continue
            try:
                if not delete_segment_file(self.config.storage.path, seg.path):
                    log.warning("segment file %s was already gone; forgetting it", seg.path)
            except OSError as e:
                log.error("cannot delete segment %s: %s; keeping it indexed", seg.path, e)
                done.failed.append(seg.path)
                continue
            done.segments.append(seg)
            if len(done.segments) - forgotten >= ROW_BATCH:
                self.index.delete_segments(s.id for s in done.segments[forgotten:])
                forgotten = len(done.segments)
        self.index.delete_segments(s.id for s in done.segments[forgotten:])
        return done

    # --- forecast ----------------------------------------------------------------------

    def _forecast(self, now: float) -> StorageForecast:
        """Sum the index up on a read-only connection, so recorders never wait on the scan."""
        holds = self.index.active_holds()
        db = self._readonly_index()
        if db is None:
            with self.index.reading() as shared:
                stats = queries.camera_stats(shared, holds)
        else:
            stats = queries.camera_stats(db, holds)
        disk = self.disk_usage(self.config.storage.path)
        return build_forecast(self.config, stats, disk.total, disk.free, now)

    def _readonly_index(self) -> sqlite_utils.Database | None:
        """A second, read-only connection to the index file; None for an in-memory index."""
        if self._stats_db is None:
            with self.index.reading() as db:
                path = db.execute("pragma database_list").fetchone()[2]
            if not path:
                return None
            try:
                self._stats_db = queries.open_readonly(path)
            except sqlite3.Error as e:
                log.warning("cannot open the index read-only (%s); sharing the connection", e)
                return None
        return self._stats_db
