"""One inference pool for all cameras: a few worker threads run the detector, cameras in turn.

Each camera's analysis thread hands its detection job here and waits for it; a camera has
at most one job waiting, and jobs are served first come, first served, so under overload
every camera gets the same share (round robin) rather than the fastest thread winning. The
pool is sized to the box (half the cores, at least one worker), so inference never takes
more than its share of the CPU from the recorders. The default model's input is fixed at
batch 1 ([1, 3, 416, 416]), so jobs are scheduled one at a time, not batched.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from edge_agent.errors import InferenceStopped

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_workers(configured: int = 0) -> int:
    """Workers for `detection.workers` (0: half the CPU cores, at least one)."""
    if configured > 0:
        return configured
    return max(1, (os.cpu_count() or 1) // 2)


@dataclass
class _Job(Generic[T]):
    camera: str
    run: Callable[[], T]
    queued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


@dataclass
class CameraLoad:
    """What one camera asked of the pool: jobs run, seconds waiting and running."""

    jobs: int = 0
    wait_s: float = 0.0
    run_s: float = 0.0


class InferencePool:
    """Worker threads shared by every camera's detection (a Component of the agent)."""

    name = "inference"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._jobs: collections.deque[_Job[object]] = collections.deque()
        self._cond = threading.Condition()
        self._stopped = True
        self._threads: list[threading.Thread] = []
        self.load: dict[str, CameraLoad] = collections.defaultdict(CameraLoad)

    def start(self) -> None:
        """Start the workers."""
        with self._cond:
            self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"inference-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the workers; jobs still waiting fail with InferenceStopped."""
        with self._cond:
            self._stopped = True
            waiting, self._jobs = list(self._jobs), collections.deque()
            self._cond.notify_all()
        for job in waiting:
            job.error = InferenceStopped("inference stopped")
            job.done.set()
        for thread in self._threads:
            thread.join(30.0)
        self._threads = []

    def run(self, camera: str, job: Callable[[], T]) -> T:
        """Run `job` on a worker when the camera's turn comes; its result or its exception.

        InferenceStopped if the pool is not running (or stops before the turn comes)."""
        item: _Job[T] = _Job(camera, job)
        with self._cond:
            if self._stopped:
                raise InferenceStopped("inference is not running")
            self._jobs.append(item)  # type: ignore[arg-type]
            self._cond.notify()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def waiting(self) -> int:
        """Jobs queued now."""
        with self._cond:
            return len(self._jobs)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._jobs.popleft()
            started = time.monotonic()
            try:
                job.result = job.run()
            except Exception as e:  # noqa: BLE001 - handed to the camera that asked
                job.error = e
            ended = time.monotonic()
            load = self.load[job.camera]
            load.jobs += 1
            load.wait_s += started - job.queued
            load.run_s += ended - started
            job.done.set()
