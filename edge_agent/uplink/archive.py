"""Archive transfer: sends central's city archive the recorded segments it asks for.

Central decides what it wants (its site policy over the segments this agent anchored) and
says how many bytes of each it already holds; this thread sends the rest, oldest first, as
class `archive` of the uplink budget. While anyone watches live or replay the budget holds
archive back; a request held longer than `pause_give_up_s` is closed and resumes later
from the byte central holds. An outage is caught up the same way, in order.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edge_agent.central_http import CentralHttp
from edge_agent.credentials import Credential
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.uplink.budget import TrafficClass
from edge_agent.uplink.scheduler import BudgetedReader, UplinkPaused, UplinkScheduler
from edge_agent.uplink.settings import ArchiveSenderConfig

log = logging.getLogger(__name__)

WANTS_PATH = "/api/v1/archive/wants"
SEGMENT_PATH = "/api/v1/archive/segments"
RESUME_POLL_S = 0.2


@dataclass(frozen=True)
class Wanted:
    """A segment central's archive asks for, and how much of it it holds."""

    camera: str
    path: str
    bytes: int
    sha256: str
    have_bytes: int


def segment_at(index: SegmentIndex, path: str) -> Segment | None:
    """The indexed segment stored at a relative path, if any."""
    with index.reading() as db:
        rows = list(db.table("segments").rows_where("path = ?", [path], limit=1))
    return Segment(**rows[0]) if rows else None


class ArchiveSender:
    """Component `archive-sender`: one thread, one request at a time."""

    name = "archive-sender"

    def __init__(
        self,
        settings: ArchiveSenderConfig,
        central_url: str,
        credential: Credential,
        storage: Path,
        index: SegmentIndex,
        scheduler: UplinkScheduler,
        ca_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.index = index
        self.scheduler = scheduler
        self._central = CentralHttp(central_url, credential, ca_file)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_segments = 0
        self.backlog = 0
        self.last_error = ""
        # Told the site's archive policy each time central answers (must return at once).
        self.on_policy: Callable[[str], object] | None = None

    def start(self) -> None:
        """Start the thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop (a transfer in progress is closed; central keeps what it got)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout_s + 5)
            self._thread = None

    def wake(self) -> None:
        """Ask central now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_round()
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.last_error = str(e)
                log.info("archive transfer: %s; trying again later", e)
                busy = False
            if not busy:
                self._wake.wait(self.settings.poll_interval_s)

    def run_round(self) -> bool:
        """Ask what central wants and send it; True if there may be more right away."""
        wanted = self.wants()
        self.backlog = len(wanted)
        for item in wanted:
            if self._stop.is_set():
                return False
            self._wait_for_viewers()
            try:
                self.send(item)
            except UplinkPaused:
                continue  # someone watches: resume this one from central's bytes next round
            self.backlog = max(0, self.backlog - 1)
        return len(wanted) >= self.settings.batch

    def _wait_for_viewers(self) -> None:
        while self.scheduler.watchers > 0 and not self._stop.is_set():
            self._stop.wait(RESUME_POLL_S)

    def wants(self) -> list[Wanted]:
        """The segments central's archive still wants of this site."""
        status, body = self._request("GET", f"{WANTS_PATH}?limit={self.settings.batch}")
        if status != 200:
            raise OSError(f"central answered {status} to the archive's wants: {body[:200]!r}")
        data = json.loads(body)
        policy = data.get("policy")
        if self.on_policy is not None and isinstance(policy, dict):
            name = policy.get("policy")
            if isinstance(name, str):
                self.on_policy(name)
        return [
            Wanted(s["camera"], s["path"], int(s["bytes"]), s["sha256"], int(s["have_bytes"]))
            for s in data.get("segments", [])
        ]

    def send(self, item: Wanted) -> bool:
        """Send a segment from the byte central holds; True if central has all of it now."""
        seg = segment_at(self.index, item.path)
        path = self.storage / item.path
        if seg is None or seg.sha256 != item.sha256 or not path.is_file():
            log.warning("archive asks for %s, which this box no longer holds as anchored",
                        item.path)  # fmt: skip
            return False
        offset = min(item.have_bytes, item.bytes)
        with path.open("rb") as f:
            f.seek(offset)
            body = BudgetedReader(
                f, self.scheduler, TrafficClass.ARCHIVE, self.settings.pause_give_up_s, self._stop
            )
            status, text = self._request(
                "PUT",
                f"{SEGMENT_PATH}/{quote(item.camera)}/{quote(item.path)}",
                body,
                {"Content-Length": str(item.bytes - offset), "X-Offset": str(offset),
                 "X-Content-SHA256": item.sha256, "Content-Type": "video/mp4"},
            )  # fmt: skip
        if status in (200, 201):
            self.sent_segments += 1
            return True
        if status in (202, 409, 416):
            return False  # partial, not anchored yet, or resume elsewhere: next round
        raise OSError(f"central refused archive segment {item.path}: {status} {text[:200]}")

    def _request(
        self, method: str, target: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        conn = self._central.connect(self.settings.timeout_s)
        try:
            sent = {"Authorization": self._central.authorization, **(headers or {})}
            conn.request(method, self._central.path(target), body=body, headers=sent)
            response = conn.getresponse()
            return response.status, response.read(1 << 20).decode("utf-8", "replace")
        finally:
            conn.close()
