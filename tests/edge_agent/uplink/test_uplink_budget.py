"""The uplink budget's pure decisions: token bucket, strict priority, archive pause, use."""

from __future__ import annotations

from collections import Counter

from edge_agent.uplink.budget import TokenBucket, TrafficClass, UsageMeter, may_send
from edge_agent.uplink.scheduler import UplinkScheduler

C = TrafficClass


def test_the_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=1000, burst=500, now=0.0)
    assert bucket.ready(0.0)
    bucket.take(1500, 0.0)  # a chunk larger than the burst still goes ...
    assert not bucket.ready(0.5)  # ... and the debt (1000 bytes) holds the next one back
    assert bucket.wait_s(0.5) == 0.5
    assert bucket.ready(1.0)
    bucket.refill(100.0)
    assert bucket.tokens == 500  # never more than the burst saved up


def test_an_unlimited_bucket_is_always_ready() -> None:
    bucket = TokenBucket(rate=None, burst=0, now=0.0)
    bucket.take(10**9, 0.0)
    assert bucket.ready(0.0) and bucket.wait_s(0.0) == 0.0


def test_a_class_waits_while_a_higher_one_waits() -> None:
    waiting = Counter({C.LIVE: 1})
    assert may_send(C.LIVE, Counter(), 0, True)
    assert not may_send(C.CONTROL, waiting, 0, True)
    assert not may_send(C.ARCHIVE, Counter({C.EVIDENCE: 2}), 0, True)
    assert may_send(C.EVIDENCE, Counter({C.ARCHIVE: 3, C.BULK: 1}), 0, True)
    assert not may_send(C.LIVE, Counter(), 0, False)  # nobody goes on an empty bucket


def test_archive_and_bulk_pause_while_someone_watches() -> None:
    assert not may_send(C.ARCHIVE, Counter(), watching=1, bucket_ready=True)
    assert not may_send(C.BULK, Counter(), watching=2, bucket_ready=True)
    assert may_send(C.EVIDENCE, Counter(), watching=1, bucket_ready=True)
    assert may_send(C.ARCHIVE, Counter(), watching=0, bucket_ready=True)


def test_use_per_class_is_reported_in_bits_per_second() -> None:
    meter = UsageMeter(now=0.0)
    meter.add(C.LIVE, 1000, 0.5)
    meter.add(C.ARCHIVE, 250, 0.7)
    rates = meter.rates(now=2.0)
    assert rates[C.LIVE] == 4000.0 and rates[C.ARCHIVE] == 1000.0 and rates[C.BULK] == 0.0
    assert meter.rates(now=4.0)[C.LIVE] == 0.0  # since the previous call


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_scheduler_grants_in_budget_and_pauses_archive_for_viewers() -> None:
    clock = _Clock()
    scheduler = UplinkScheduler(rate=100_000, burst_s=0.25, clock=clock)
    assert scheduler.try_acquire(C.ARCHIVE, 40_000)
    assert not scheduler.try_acquire(C.ARCHIVE, 1)  # in debt until the rate pays it back
    clock.now = 0.4
    with scheduler.watching():
        assert not scheduler.try_acquire(C.ARCHIVE, 1)
        assert scheduler.try_acquire(C.LIVE, 10_000)
        stats = scheduler.stats()
        assert stats.archive_paused and stats.watching == 1
    clock.now = 1.0
    assert scheduler.try_acquire(C.ARCHIVE, 1)
    stats = scheduler.stats()
    assert stats.budget_bps == 800_000 and not stats.archive_paused
    assert [c.name for c in stats.classes] == ["live", "control", "evidence", "archive", "bulk"]
    paused_at, resumed_at = scheduler.pause_log[-1]
    assert (paused_at, resumed_at) == (0.4, 0.4)


def test_charged_traffic_takes_budget_from_the_classes_below() -> None:
    clock = _Clock()
    scheduler = UplinkScheduler(rate=10_000, burst_s=1.0, clock=clock)
    scheduler.charge(C.CONTROL, 20_000)  # MQTT never waits ...
    assert not scheduler.try_acquire(C.EVIDENCE, 1)  # ... and evidence pays for it
    assert scheduler.sent(C.CONTROL) == 20_000


def test_an_event_loop_sender_waits_on_the_loop_and_goes_before_lower_classes() -> None:
    import asyncio
    import threading

    scheduler = UplinkScheduler(rate=200_000, burst_s=0.1)
    scheduler.charge(C.CONTROL, 60_000)  # about 0.3 s of debt: everybody waits
    order: list[str] = []

    def archive() -> None:
        scheduler.acquire(C.ARCHIVE, 1000, timeout=30)
        order.append("archive")

    async def live() -> None:
        await asyncio.sleep(0.05)  # archive is already waiting when live arrives
        await scheduler.acquire_async(C.LIVE, 1000)
        order.append("live")

    waiter = threading.Thread(target=archive)
    waiter.start()
    asyncio.run(live())
    waiter.join(30)
    assert order == ["live", "archive"]
    assert scheduler.stats().classes[0].waiting == 0  # nobody left counted as waiting
