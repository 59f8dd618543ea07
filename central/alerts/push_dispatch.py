"""The push worker: a bounded queue fed by ingest, delivering with retries in the background."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from py_vapid import Vapid

from central.alerts.endpoint_policy import EndpointPolicy
from central.alerts.push import PushStore, Target, build_webpush
from central.alerts.push_rules import (
    OutgoingRequest,
    backoff_delays,
    is_permanent_failure,
    webhook_request,
    webpush_message,
)
from central.errors import EndpointRefused
from central.settings import PushConfig

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class PushDispatcher:
    """Delivers alerts to their receivers without ever making the submitter wait."""

    def __init__(
        self,
        store: PushStore,
        config: PushConfig,
        base_url: str,
        session: aiohttp.ClientSession,
        vapid: Vapid | None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._config = config
        self._base_url = base_url
        self._session = session
        self._vapid = vapid
        self._sleep = sleep
        self._policy = EndpointPolicy(config.allow_networks)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(config.queue_size)
        # Built inside a running loop (a cleanup context): submissions from ingest's worker
        # thread are handed to this loop.
        self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        # Alerts submitted and not yet turned into deliveries (counted at submit, in any
        # thread), so `idle()` cannot miss one still on its way to the loop.
        self._pending = 0
        self._pending_lock = threading.Lock()

    def submit(self, alert: dict[str, Any]) -> None:
        """Queue an alert for push; callable from any thread, never blocks."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning("push not running, alert %s not pushed", alert.get("id"))
            return
        with self._pending_lock:
            self._pending += 1
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue(alert)
        else:
            loop.call_soon_threadsafe(self._enqueue, alert)

    def _enqueue(self, alert: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self._settle()
            self.dropped += 1
            log.error("push queue full, alert %s not pushed", alert.get("id"))

    async def run(self) -> None:
        """Take alerts off the queue forever; cancel the task to stop."""
        try:
            while True:
                alert = await self._queue.get()
                try:
                    targets = await asyncio.to_thread(self._store.targets, alert, time.time())
                except Exception:  # noqa: BLE001 - one bad alert must not stop all push
                    log.exception("cannot find receivers of alert %s", alert.get("id"))
                    targets = []
                try:
                    for target in targets:
                        await self._slots.acquire()
                        task = asyncio.create_task(self._deliver(alert, target))
                        self._tasks.add(task)
                        task.add_done_callback(self._done)
                finally:
                    self._settle()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _settle(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def idle(self, wait_s: float = 10.0) -> None:
        """Wait until the queue is empty and no delivery is in flight (for tests, shutdown)."""
        deadline = time.monotonic() + wait_s
        # Polling is fine here: a drain helper for tests and shutdown, not a hot path.
        while (self._pending or self._tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def _build(self, alert: dict[str, Any], target: Target) -> OutgoingRequest:
        if target.kind == "webhook":
            row = target.row
            return webhook_request(
                row["format"], row["url"], alert, self._base_url, row["secret"] or "", time.time()
            )
        if self._vapid is None:
            raise RuntimeError("Web Push is not configured (push.vapid_private_key_file)")
        data = webpush_message(alert, self._base_url)
        # Encryption and signing are CPU work: keep them off the event loop.
        return await asyncio.to_thread(
            build_webpush,
            target.row,
            data,
            self._vapid,
            self._config.vapid_subject,
            self._config.ttl_s,
        )

    async def _deliver(self, alert: dict[str, Any], target: Target) -> None:
        cfg = self._config
        delays = backoff_delays(cfg.attempts, cfg.backoff_first_s, cap_s=cfg.backoff_max_s)
        status, error, attempt = "failed", "", 0
        for attempt in range(1, cfg.attempts + 1):
            try:
                # Built per try: a VAPID token and an encryption are for one send.
                request = await self._build(alert, target)
                code, text = await self._post(request)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                code, text = 0, f"{type(e).__name__}: {e}"
            except (RuntimeError, ValueError, EndpointRefused) as e:
                status, error = "failed", str(e)
                break
            if 200 <= code < 300:
                status, error = "ok", ""
                break
            error = f"HTTP {code}: {text[:200]}" if code else text
            if code and is_permanent_failure(code):
                gone = target.kind == "webpush" and code in (404, 410)
                status = "gone" if gone else "failed"
                break
            if attempt <= len(delays):
                await self._sleep(delays[attempt - 1])
        if status != "ok":
            log.warning(
                "push of alert %s to %s %s failed: %s",
                alert["id"],
                target.kind,
                target.target_id,
                error,
            )
        await asyncio.to_thread(self._store.record, alert["id"], target, status, attempt, error)

    async def _post(self, request: OutgoingRequest) -> tuple[int, str]:
        # Checked again at every send (the name may point elsewhere now); the session's
        # resolver pins the connection to checked addresses, and redirects are not followed.
        await self._policy.check(request.url)
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        async with self._session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            return resp.status, await resp.text(errors="replace")
