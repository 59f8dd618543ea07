"""The push worker: takes due jobs from the database and makes one attempt each, in parallel.

Jobs are durable (central.alerts.push_jobs): the worker keeps nothing that a crash could
lose. `wake()` (any thread) tells it new jobs were committed; otherwise it looks again when
the next retry falls due, and at least every POLL_S.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import psycopg
from py_vapid import Vapid

from central.alerts.endpoint_policy import EndpointPolicy
from central.alerts.push import build_webpush
from central.alerts.push_jobs import Job, PushJobs
from central.alerts.push_rules import (
    OutgoingRequest,
    backoff_delays,
    is_permanent_failure,
    webhook_request,
    webhook_test_request,
    webpush_message,
)
from central.errors import EndpointRefused
from central.settings import PushConfig
from fsv_common.aio import wait_event

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
POLL_S = 1.0
# Waits before storing an attempt's outcome again while the database is busy (seconds).
STORE_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0)
# After a failed round (e.g. the database is busy), wait this long before the next.
ERROR_PAUSE_S = 1.0


class PushDispatcher:
    """Delivers pending push jobs without ever making ingest wait."""

    def __init__(
        self,
        jobs: PushJobs,
        config: PushConfig,
        base_url: str,
        session: aiohttp.ClientSession,
        vapid: Vapid | None,
    ) -> None:
        self._jobs = jobs
        self._config = config
        self._base_url = base_url
        self._session = session
        self._vapid = vapid
        self._policy = EndpointPolicy(config.allow_networks)
        # Built inside a running loop (a cleanup context): wake-ups from other threads.
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._delays = backoff_delays(
            config.attempts, config.backoff_first_s, cap_s=config.backoff_max_s
        )
        self.outcomes: dict[str, int] = {}

    def wake(self, _alert: Any = None) -> None:
        """New jobs were committed; callable from any thread, never blocks."""
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        """Deliver until cancelled."""
        try:
            while True:
                self._wakeup.clear()
                try:
                    wait_s = await self._round()
                except Exception:  # noqa: BLE001 - e.g. the database is busy: the jobs stay
                    log.exception("push round failed")
                    wait_s = ERROR_PAUSE_S
                await wait_event(self._wakeup, wait_s)
        finally:
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _round(self) -> float:
        """Start attempts of due jobs in free slots; returns how long to wait for the next."""
        free = self._config.concurrency - len(self._tasks)
        now = time.time()
        if free > 0:
            due = await asyncio.to_thread(self._jobs.due, now, free, set(self._tasks))
            for job in due:
                task = asyncio.create_task(self._attempt(job), name=f"push-{job.id}")
                self._tasks[job.id] = task
                task.add_done_callback(functools.partial(self._done, job.id))
            if len(due) == free:
                return 0.0 if not self._tasks else POLL_S
        nxt = await asyncio.to_thread(self._jobs.next_due)
        return POLL_S if nxt is None else min(POLL_S, max(0.0, nxt - time.time()))

    def _done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        self._wakeup.set()

    async def idle(self, wait_s: float = 10.0) -> None:
        """Wait until no job is pending nor in flight (for tests and shutdown)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not self._tasks and not await asyncio.to_thread(self._jobs.pending):
                return
            await asyncio.sleep(0.02)

    async def _attempt(self, job: Job) -> None:
        attempts = job.attempts + 1
        try:
            status, error = await self._send(job)
        except Exception as e:  # noqa: BLE001 - one bad job must not stop the others
            log.exception("push job %d failed unexpectedly", job.id)
            status, error = "failed", f"{type(e).__name__}: {e}"
        now = time.time()
        if status == "retry":
            if attempts < self._config.attempts and now < job.expires_at:
                delay = self._delays[min(attempts, len(self._delays)) - 1]
                later = functools.partial(self._jobs.retry_later, job, attempts, error, now + delay)
                await self._store_outcome(job, later)
                return
            status = "expired" if now >= job.expires_at else "failed"
        if status != "ok":
            log.warning("push job %d of alert %s %s: %s", job.id, job.alert["id"], status, error)
        self.outcomes[status] = self.outcomes.get(status, 0) + 1
        await self._store_outcome(
            job, functools.partial(self._jobs.settle, job, status, attempts, error)
        )

    async def _store_outcome(self, job: Job, write: Callable[[], None]) -> None:
        """Write an attempt's outcome, waiting out a database another process holds for a
        while. An outcome never stored leaves the job claimed: it is taken again (and sent
        twice) once its claim lapses, which is logged."""
        for delay in (*STORE_RETRY_S, None):
            try:
                await asyncio.to_thread(write)
                return
            except (sqlite3.Error, psycopg.Error) as e:
                if delay is None:
                    log.error("push job %d: its outcome could not be stored (%s); it will be "
                              "sent again once its claim lapses", job.id, e)  # fmt: skip
                    return
                log.warning("push job %d: storing its outcome failed (%s); trying again in "
                            "%.1f s", job.id, e, delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def _send(self, job: Job) -> tuple[str, str]:
        """One attempt: ("ok" | "gone" | "failed" | "retry", error)."""
        if job.target is None:
            return "failed", "the receiver was removed"
        try:
            # Built per try: a VAPID token and an encryption are for one send.
            request = await self._build(job.alert, job.target.kind, job.target.row)
            code, text = await self._post(request)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return "retry", f"{type(e).__name__}: {e}"
        except (RuntimeError, ValueError, EndpointRefused) as e:
            return "failed", str(e)
        if 200 <= code < 300:
            return "ok", ""
        error = f"HTTP {code}: {text[:200]}"
        if is_permanent_failure(code):
            gone = job.target.kind == "webpush" and code in (404, 410)
            return ("gone" if gone else "failed"), error
        return "retry", error

    async def send_test(self, hook: dict[str, Any]) -> tuple[bool, str]:
        """Post one test message to a webhook now (same checks as a delivery): (ok, error)."""
        request = webhook_test_request(
            hook["format"], hook["url"], self._base_url, hook["secret"] or "", time.time()
        )
        try:
            code, text = await self._post(request)
        except EndpointRefused as e:
            return False, str(e)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return False, f"{type(e).__name__}: {e}"
        if 200 <= code < 300:
            return True, ""
        return False, f"HTTP {code}: {text[:200]}"

    async def _build(
        self, alert: dict[str, Any], kind: str, row: dict[str, Any]
    ) -> OutgoingRequest:
        if kind == "webhook":
            return webhook_request(
                row["format"], row["url"], alert, self._base_url, row["secret"] or "", time.time()
            )
        if self._vapid is None:
            raise RuntimeError("Web Push is not configured (push.vapid_private_key_file)")
        data = webpush_message(alert, self._base_url)
        # Encryption and signing are CPU work: keep them off the event loop.
        return await asyncio.to_thread(
            build_webpush, row, data, self._vapid, self._config.vapid_subject, self._config.ttl_s
        )

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
