"""The anchor sender: puts every sealed segment's chain link into the outbox, about once a minute.

Thread `integrity-anchor` reads the index (never writes it) and the anchor cursors kept in
the outbox database; each round puts one `AnchorPayload` with every camera's new links and
tombstones, and moves the cursors in the same transaction. The outbox then delivers it like
any event (QoS 1, kept while central is unreachable), so a box offline for a day anchors
its backlog in order when it comes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from edge_agent.errors import OutboxError
from edge_agent.integrity.links import CameraBatch, anchored_cameras, camera_batch
from edge_agent.mqtt.outbox import AnchorCursor, Outbox
from edge_agent.recording.index import SegmentIndex
from fsv_contract.integrity import MAX_LINKS, AnchorPayload, CameraAnchor

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
# Links per message over all cameras: a day's backlog of one camera (1440 links) takes a
# few messages, each well under the contract's payload limit.
MAX_LINKS_PER_MESSAGE = 600


class AnchorSender:
    """Component `integrity-anchor`: one anchor message per round when anything is new."""

    name = "integrity-anchor"

    def __init__(
        self,
        index: SegmentIndex,
        outbox: Outbox,
        retention_days: Mapping[str, int],
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.index = index
        self.outbox = outbox
        self.retention_days = dict(retention_days)
        self.interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_links = 0

    def start(self) -> None:
        """Start the thread (its first round runs at once)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the round in hand; one last round flushes what was sealed meanwhile."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self._round_safely()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._round_safely()
            self._stop.wait(self.interval_s)

    def _round_safely(self) -> None:
        try:
            while self.run_once() > 0:
                pass  # a backlog: keep going until it is all in the outbox
        except (OutboxError, OSError) as e:
            log.error("cannot anchor segment links this round: %s", e)
        except Exception:  # noqa: BLE001 - the next round tries again; recording is not affected
            log.exception("anchor round failed")

    def run_once(self) -> int:
        """Put one anchor message if anything is new; returns how many links and tombstones."""
        cursors = self.outbox.anchor_cursors()
        batches: list[CameraBatch] = []
        room = MAX_LINKS_PER_MESSAGE
        with self.index.reading() as db:
            for camera in anchored_cameras(db):
                if room <= 0:
                    break
                cursor = cursors.get(camera, AnchorCursor(camera))
                batch = camera_batch(db, cursor, min(room, MAX_LINKS))
                if not batch.empty:
                    batches.append(batch)
                    room -= max(len(batch.links), len(batch.removed))
        if not batches:
            return 0
        payload = AnchorPayload(
            cameras=[
                CameraAnchor(
                    camera=b.camera,
                    links=b.links,
                    removed=b.removed,
                    retention_days=self.retention_days.get(b.camera, 90),
                )
                for b in batches
            ],
            created_at=self._clock(),
        )
        self.outbox.put_anchor(payload, [b.cursor for b in batches if b.cursor is not None])
        links = sum(len(b.links) for b in batches)
        self.sent_links += links
        log.debug("anchored %d links of %d cameras", links, len(batches))
        return links + sum(len(b.removed) for b in batches)
