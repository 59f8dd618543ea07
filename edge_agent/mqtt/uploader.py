"""The media uploader thread: PUTs queued snapshots and clips to central, retrying with backoff."""

from __future__ import annotations

import hashlib
import http.client
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, urlsplit

from edge_agent.central_http import CentralHttp
from edge_agent.credentials import Credential
from edge_agent.errors import UploadError
from edge_agent.mqtt.media_queue import MediaItem, MediaQueue
from edge_agent.mqtt.settings import UploadConfig

log = logging.getLogger(__name__)

SHA256_HEADER = "X-Content-SHA256"
CHUNK = 1 << 20
IDLE_WAIT_S = 30.0
# Central answers 404/409 while the event itself has not reached it yet: that passes.
_RETRY_STATUSES = {401, 403, 404, 408, 409, 425, 429}


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def backoff_delay(attempts: int, initial_s: float, max_s: float) -> float:
    """Seconds to wait after the `attempts`-th failure (1, 2, ...): doubling, capped."""
    return float(min(max_s, initial_s * 2 ** max(0, attempts - 1)))


class Readable(Protocol):
    """A file-like body http.client reads block by block."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to `n` bytes."""
        ...


# Wraps an upload body so each block waits for the site's uplink budget (class `evidence`).
Budget = Callable[[BinaryIO], Readable]


class MediaUploader:
    """Uploads each queued file once central has its event; idempotent, so retries are safe.

    Before each try the file is hashed again: a file that changed or vanished since it was
    queued, or is over `max_bytes`, is marked failed (kept, with the reason) instead of
    being sent. Everything else that fails is retried after a doubling delay.
    """

    name = "media-uploader"

    def __init__(
        self,
        queue: MediaQueue,
        central_url: str,
        credential: Credential,
        settings: UploadConfig,
        budget: Budget | None = None,
    ) -> None:
        parts = urlsplit(central_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UploadError(f"central_url {central_url!r} is not an http(s) URL", retry=False)
        self.queue = queue
        self.settings = settings
        self.budget = budget
        self._central = CentralHttp(central_url, credential, settings.ca_file)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0

    def wake(self) -> None:
        """Look at the queue now (something was queued)."""
        self._wake.set()

    def start(self) -> None:
        """Start the uploader thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the upload in progress (unfinished ones stay queued)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout_s + 5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                for item in self.queue.due(limit=5):
                    if self._stop.is_set():
                        return
                    self.upload_one(item)
                wait = self.queue.next_due_in()
            except Exception:  # noqa: BLE001 - e.g. the queue DB is busy: try again shortly
                log.exception("media upload round failed")
                wait = IDLE_WAIT_S
            if wait is None or wait > 0:
                self._wake.wait(IDLE_WAIT_S if wait is None else min(wait, IDLE_WAIT_S))

    def upload_one(self, item: MediaItem) -> bool:
        """Try one job; True if central has the file now."""
        try:
            self._put(item)
        except UploadError as e:
            if e.retry:
                delay = backoff_delay(
                    item.attempts + 1, self.settings.backoff_initial_s, self.settings.backoff_max_s
                )
                log.info("upload of %s/%s failed (%s); retry in %.0f s",
                         item.event_id, item.name, e, delay)  # fmt: skip
                self.queue.retry_later(item.id, delay, str(e))
            else:
                log.error("upload of %s/%s given up: %s", item.event_id, item.name, e)
                self.queue.fail(item.id, str(e))
            return False
        self.queue.done(item.id)
        self.uploaded += 1
        return True

    def _put(self, item: MediaItem) -> None:
        try:
            sha, size = file_digest(item.path)
        except OSError as e:
            raise UploadError(f"cannot read {item.path}: {e.strerror or e}", retry=False) from e
        if sha != item.sha256:
            raise UploadError("the file changed since it was queued", retry=False)
        if size > self.settings.max_bytes:
            raise UploadError(f"{size} bytes is over the {self.settings.max_bytes} limit", False)
        status, text = self._send(item, size)
        if status in (200, 201, 204):
            return
        retry = status >= 500 or status in _RETRY_STATUSES or status == 422
        raise UploadError(f"central answered {status}: {text[:200]}", retry=retry)

    def _send(self, item: MediaItem, size: int) -> tuple[int, str]:
        path = self._central.path(f"/api/v1/media/{quote(item.event_id)}/{quote(item.name)}")
        conn = self._central.connect(self.settings.timeout_s)
        try:
            with item.path.open("rb") as f:
                body = f if self.budget is None else self.budget(f)
                conn.request(
                    "PUT",
                    path,
                    body=body,
                    headers={
                        "Content-Type": item.content_type,
                        "Content-Length": str(size),
                        SHA256_HEADER: item.sha256,
                        "Authorization": self._central.authorization,
                    },
                )
                response = conn.getresponse()
                return response.status, response.read(1000).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            raise UploadError(f"cannot reach central: {e}") from e
        finally:
            conn.close()
