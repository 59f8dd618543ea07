"""The shared inference pool: cameras served in turn, errors handed back, a clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from edge_agent.detection.inference import InferencePool, default_workers
from edge_agent.errors import InferenceStopped, ModelError


def _wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_cameras_are_served_in_the_order_they_asked() -> None:
    pool = InferencePool(workers=1)
    order: list[str] = []
    release = threading.Event()
    pool.start()
    try:
        blocker = threading.Thread(target=lambda: pool.run("x", lambda: release.wait(10)))
        blocker.start()
        _wait_until(lambda: pool.load["x"].jobs == 0 and pool.waiting() == 0)
        threads = []
        for queued, name in enumerate(("c", "a", "b"), start=1):
            t = threading.Thread(target=lambda n=name: pool.run(n, lambda: order.append(n)))
            t.start()
            threads.append(t)
            _wait_until(lambda k=queued: pool.waiting() == k)
        release.set()
        for t in [blocker, *threads]:
            t.join(10)
    finally:
        pool.stop()
    assert order == ["c", "a", "b"]
    assert pool.load["c"].wait_s > pool.load["b"].wait_s > 0  # c waited longest


def test_a_busy_camera_does_not_starve_the_others() -> None:
    pool = InferencePool(workers=1)
    order: list[str] = []
    stop = threading.Event()

    def camera(name: str) -> None:
        while not stop.is_set():
            pool.run(name, lambda: (order.append(name), time.sleep(0.003)))

    pool.start()
    threads = [threading.Thread(target=camera, args=(c,)) for c in ("a", "b", "c")]
    try:
        for t in threads:
            t.start()
        _wait_until(lambda: len(order) >= 90)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        pool.stop()
    shares = {c: order.count(c) / len(order) for c in "abc"}
    assert all(0.25 <= share <= 0.42 for share in shares.values()), shares
    assert pool.load["a"].jobs == order.count("a") and pool.load["a"].run_s > 0


def test_errors_reach_the_camera_and_a_stop_releases_waiting_cameras() -> None:
    pool = InferencePool(workers=1)
    with pytest.raises(InferenceStopped):
        pool.run("a", lambda: 1)  # not started
    pool.start()
    assert pool.run("a", lambda: 41 + 1) == 42

    def broken() -> None:
        raise ModelError("model x: inference failed")

    with pytest.raises(ModelError, match="inference failed"):
        pool.run("a", broken)
    busy, waiting = threading.Event(), []
    release = threading.Event()

    def slow() -> None:
        busy.set()
        release.wait(10)

    first = threading.Thread(target=lambda: pool.run("a", slow))
    first.start()
    assert busy.wait(10)

    def second() -> None:
        try:
            pool.run("b", lambda: None)
        except InferenceStopped as e:
            waiting.append(e)

    behind = threading.Thread(target=second)
    behind.start()
    deadline = time.monotonic() + 10
    while pool.waiting() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    behind.join(10)
    assert len(waiting) == 1  # released at once, while the running job still runs
    release.set()
    for t in (first, stopper):
        t.join(10)
    assert not stopper.is_alive()


def test_pool_size_follows_the_box() -> None:
    assert default_workers(3) == 3
    assert default_workers(0) >= 1
