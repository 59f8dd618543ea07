"""A camera's outages as index rows: gaps where no video was recorded, online/offline states."""

from __future__ import annotations

import logging
import sqlite3
import time

from edge_agent.recording.index import SegmentIndex

log = logging.getLogger(__name__)

AGENT_STOPPED = "agent stopped"
AGENT_NOT_RUNNING = "agent not running"


class GapKeeper:
    """Keeps one camera's open gap and state rows; index failures are logged, never raised.

    Recording goes on when the index cannot be written (the start-up repair indexes the
    files later), so every write here is best effort.
    """

    def __init__(self, index: SegmentIndex, camera: str) -> None:
        self.index = index
        self.camera = camera
        self.gap_id: int | None = None
        self._gap_start = 0.0
        self._downtime = False  # the open gap is the agent's own downtime, not the camera's
        self._state: tuple[str, str] | None = None

    def resume(self, last_end: float | None, now: float | None = None) -> None:
        """At start-up: adopt an open gap, or open one for the agent's downtime since `last_end`."""
        now = time.time() if now is None else now
        try:
            gaps = self.index.gaps(self.camera)
            open_gaps = [g for g in gaps if g.end is None]
            if open_gaps:
                gap = open_gaps[-1]
                self.gap_id, self._gap_start = gap.id, gap.start
                self._downtime = gap.reason in (AGENT_STOPPED, AGENT_NOT_RUNNING)
                return
            if last_end is None:
                return
            covered = max([last_end, *(g.end for g in gaps if g.end is not None)])
            latest = gaps[-1] if gaps else None
            if (
                latest is not None
                and latest.end == covered
                and latest.start >= last_end
                and latest.reason in (AGENT_STOPPED, AGENT_NOT_RUNNING)
            ):
                # The agent's previous downtime never ended in video (it died again before
                # its first segment, and the start-up repair closed the gap): it goes on.
                self.index.reopen_gap(latest.id)
                self.gap_id, self._gap_start, self._downtime = latest.id, latest.start, True
                return
            # Any time at all: a kill -9 and restart take a few seconds and lose them, and
            # the keyframe wait after the reconnect is part of the same hole.
            if now > covered:
                self.gap_id = self.index.open_gap(self.camera, covered, AGENT_NOT_RUNNING)
                self._gap_start, self._downtime = covered, True
        except sqlite3.Error as e:
            log.error("%s: cannot read or write gaps in the index: %s", self.camera, e)

    def online(self) -> None:
        """Video flows again."""
        self._set_state("online", "recording")

    def resumed(self, start: float) -> None:
        """The first segment after an outage starts at `start`: close the open gap there."""
        if self.gap_id is None:
            return
        try:
            self.index.close_gap(self.gap_id, max(start, self._gap_start))
        except sqlite3.Error as e:
            log.error("%s: cannot close a gap in the index: %s", self.camera, e)
        self.gap_id = None
        self._downtime = False

    def offline(self, reason: str, since: float) -> None:
        """Recording stopped at `since` for `reason`; consecutive failures share one gap."""
        try:
            if self.gap_id is None:
                self.gap_id = self.index.open_gap(self.camera, since, reason)
                self._gap_start = since
            elif self._downtime:
                now = time.time()
                self.index.close_gap(self.gap_id, now)
                self.gap_id = self.index.open_gap(self.camera, now, reason)
                self._gap_start, self._downtime = now, False
        except sqlite3.Error as e:
            log.error("%s: cannot record a gap in the index: %s", self.camera, e)
        self._set_state("offline", reason)

    def hole(self, start: float, end: float, reason: str) -> None:
        """A closed gap inside one connection (the stream's clock jumped)."""
        try:
            gap = self.index.open_gap(self.camera, start, reason)
            self.index.close_gap(gap, end)
        except sqlite3.Error as e:
            log.error("%s: cannot record a gap in the index: %s", self.camera, e)

    def stopped(self, last_end: float | None) -> None:
        """The agent stops: leave a gap open from the last segment until the next start."""
        try:
            if self.gap_id is None and last_end is not None:
                self.gap_id = self.index.open_gap(self.camera, last_end, AGENT_STOPPED)
                self._gap_start = last_end
        except sqlite3.Error as e:
            log.error("%s: cannot record a gap in the index: %s", self.camera, e)
        self._set_state("offline", "recorder stopped")

    def _set_state(self, state: str, reason: str) -> None:
        """Write a state row when state or reason changes (not on every failed retry)."""
        if self._state == (state, reason):
            return
        try:
            self.index.record_state(self.camera, state, reason)
            self._state = (state, reason)
        except sqlite3.Error as e:
            log.error("%s: cannot record the camera state in the index: %s", self.camera, e)
