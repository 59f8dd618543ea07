"""What the regulator side does with each message ingest stored (ingest's IngestHooks).

Ingest calls the state and heartbeat hooks on its worker thread after the batch is
committed; the alert feed calls `on_event`. Each new or ended event opens or updates its
alert (and the evidence hold) and, in the same transaction, its push jobs; the dispatcher
is then woken, so a slow receiver never slows ingest. Heartbeats are sampled into a
history (ingest keeps only the latest; raw samples stay two days, hourly rollups for good)
for the recording-completeness and retention reports; cameras seen in states are listed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from central.alerts.store import AlertStore, public_alert
from central.regulation.org import OrgStore, site_org_paths, upsert_cameras_in
from central.schema import CAMERA_RECORDING_UPSERT, LockedDb
from fsv_contract import CameraStatePayload, EventPayload, HeartbeatPayload

log = logging.getLogger(__name__)

# One heartbeat sample per site every SAMPLE_S at most.
SAMPLE_S = 300.0
# A sample vouches for at most this long before it (lost heartbeats are not credited).
MAX_CREDIT_S = 2 * SAMPLE_S
# A camera is recording at a heartbeat if its last segment ended at most this long before.
RECORDING_FRESH_S = 300.0
# Raw samples are kept this long (reports read the hourly rollup a trigger keeps from them);
# older ones are deleted at most once every PURGE_EVERY_S.
RAW_SAMPLES_KEEP_S = 2 * 86400.0
PURGE_EVERY_S = 3600.0

PushSubmit = Callable[[dict[str, Any]], None]
# (org path, site, camera, state): a camera went online/offline, for the open pages.
StateAnnounce = Callable[[str, str, str, str], None]


def is_recording(last_segment_end: datetime | None, state: str, at: datetime) -> bool:
    """True if a camera in a heartbeat counts as recording at time `at`."""
    if last_segment_end is None or state == "offline":
        return False
    return (at - last_segment_end).total_seconds() <= RECORDING_FRESH_S


class RegulatorHooks:
    """Alerts from events, the camera list from states, a heartbeat history from heartbeats."""

    def __init__(self, ldb: LockedDb, orgs: OrgStore, alerts: AlertStore) -> None:
        self._ldb = ldb
        self._orgs = orgs
        self._alerts = alerts
        self.push: PushSubmit | None = None
        self.announce_state: StateAnnounce | None = None
        self._last_sample: dict[str, float] | None = None
        self._lock = threading.Lock()
        self._purged_at = 0.0

    def on_event(self, event: EventPayload) -> None:
        """An event was stored (either phase, maybe a duplicate): open or update its alert."""
        self.on_events([event])

    def on_events(self, events: Sequence[EventPayload]) -> None:
        """Events were stored (in change order): open or update their alerts.

        The cameras, the alerts and their push jobs commit together, in one transaction
        for all the events. A database error (e.g. another process holds the write lock) is
        raised, so the alert feed tries these events again later. Any other failure rolls
        the transaction back and the events are recorded one at a time: one bad event is
        skipped (logged), the others are recorded.
        """
        if not events:
            return
        try:
            with self._ldb.transaction() as db:
                org_paths = site_org_paths(db, {e.site for e in events})
                cameras = [(e.site, e.camera, None, e.station) for e in events if e.camera]
                upsert_cameras_in(db, cameras, org_paths)
                recorded = self._alerts.record_events_in(db, events, org_paths)
        except sqlite3.OperationalError:
            raise
        except Exception:  # noqa: BLE001 - the events are stored; find the bad one
            if len(events) == 1:
                log.exception("cannot open the alert of event %s", events[0].event_id)
                return
            log.exception("cannot open the alerts of %d events; one at a time", len(events))
            for event in events:
                self.on_events([event])
            return
        if self.push is not None:
            for r in recorded:
                if r.created:  # wakes the dispatcher: the jobs are already committed
                    self.push(public_alert(r.row, r.now))
        self._alerts.after_recorded(recorded)

    def on_camera_state(self, site: str, payload: CameraStatePayload) -> None:
        """A camera state was stored (ingest logs the change): make sure the camera is listed."""
        try:
            self._orgs.upsert_camera(
                site, payload.camera, name=payload.name, station=payload.station
            )
        except Exception:  # noqa: BLE001 - the state itself is stored; listing is best effort
            log.exception("cannot list camera %s/%s", site, payload.camera)
            return
        if self.announce_state is not None:
            try:
                org_path = self._orgs.site_org_path(site)
                if org_path is not None:
                    self.announce_state(org_path, site, payload.camera, payload.state)
            except Exception:  # noqa: BLE001 - the wall re-syncs on its next list request
                log.exception("cannot announce the state of %s/%s", site, payload.camera)

    def on_heartbeat(self, site: str, payload: HeartbeatPayload) -> None:
        """A heartbeat was stored: sample it for the recording and retention reports."""
        try:
            self._sample(site, payload)
        except Exception:  # noqa: BLE001 - history is best effort; the heartbeat is stored
            log.exception("cannot sample the heartbeat of %s", site)

    def _sample(self, site: str, beat: HeartbeatPayload) -> None:
        ts = beat.ts.timestamp()
        with self._lock:
            last = self._last_samples()
            prev = last.get(site)
            if prev is not None and ts - prev < SAMPLE_S * 0.9:
                return
            last[site] = ts
        interval = SAMPLE_S if prev is None else min(max(ts - prev, 0.0), MAX_CREDIT_S)
        flags = {c.camera: is_recording(c.last_segment_end, c.state, beat.ts) for c in beat.cameras}
        # One transaction for the cameras and the sample, a few statements whatever the
        # number of cameras: ingest waits for this before it writes its next batch.
        with self._ldb.transaction() as db:
            cameras = [(site, c.camera, None, None) for c in beat.cameras]
            upsert_cameras_in(db, cameras, site_org_paths(db, [site]))
            db.table("heartbeat_samples").insert(
                {
                    "site_id": site,
                    "ts": ts,
                    "interval_s": interval,
                    "retention_days": beat.retention_days_available,
                    "cameras": json.dumps(flags),
                }
            )
            db.conn.executemany(
                CAMERA_RECORDING_UPSERT,
                [
                    (site, camera, ts, ts, None if recording else ts)
                    for camera, recording in flags.items()
                ],
            )
            if ts - self._purged_at >= PURGE_EVERY_S:
                self._purged_at = ts
                db.execute("delete from heartbeat_samples where ts < ?", [ts - RAW_SAMPLES_KEEP_S])

    def _last_samples(self) -> dict[str, float]:
        if self._last_sample is None:
            with self._ldb.lock:
                rows = self._ldb.db.query(
                    "select site_id, max(ts) as ts from heartbeat_samples group by site_id"
                )
                self._last_sample = {r["site_id"]: r["ts"] for r in rows}
        return self._last_sample
