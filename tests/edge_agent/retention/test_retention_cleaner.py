"""The retention cleaner on real segment files in temp storage, indexed in a real SQLite index."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from retention_site import DAY, T0, SimulatedDisk, Site, SiteFactory

from edge_agent.retention import events as ev
from edge_agent.retention.cleaner import RetentionCleaner
from edge_agent.retention.events import RetentionEvent

TB = 10**12


class Alerts(list[RetentionEvent]):
    """Collects what the cleaner hands to on_alert."""

    def kinds(self) -> list[str]:
        return [e.kind for e in self]


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture
def cleaners() -> Iterator[list[RetentionCleaner]]:
    made: list[RetentionCleaner] = []
    yield made
    for cleaner in made:
        cleaner.stop()


def cleaner_for(
    site: Site, disk: SimulatedDisk, alerts: Alerts, made: list[RetentionCleaner]
) -> RetentionCleaner:
    cleaner = RetentionCleaner(
        site.config, site.index, disk_usage=disk, on_alert=alerts.append, forecast_interval_s=0
    )
    made.append(cleaner)
    return cleaner


def test_expired_segments_are_deleted_files_first_then_rows_and_folders(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 30}, hard_min_free_bytes=0, hard_min_free_percent=0)
    old_a = site.add_run("cam-a", T0, 3)
    kept_a = site.add_run("cam-a", T0 + 50 * DAY, 2)
    old_b = site.add_run("cam-b", T0, 3) + site.add_run("cam-b", T0 + 50 * DAY, 2)
    kept_b = site.add_run("cam-b", T0 + 80 * DAY, 2)
    cleaner = cleaner_for(site, SimulatedDisk(site.storage, TB), alerts, cleaners)

    result = cleaner.run_once(now=T0 + 95 * DAY)

    assert sorted(result.expired) == sorted(s.id for s in old_a + old_b)
    assert result.evicted == () and result.failed == ()
    assert site.indexed_ids() == {s.id for s in kept_a + kept_b}
    assert not any(site.exists(s) for s in old_a + old_b)
    assert all(site.exists(s) for s in kept_a + kept_b)
    assert result.freed_bytes == 8 * site.size
    # The emptied hour and day folders go; the camera folders and kept days stay.
    assert not (site.storage / old_a[0].path).parent.parent.exists()
    assert not (site.storage / old_b[-1].path).parent.parent.exists()
    assert (site.storage / "cam-b").is_dir() and (site.storage / kept_a[0].path).parent.is_dir()
    assert result.removed_dirs == 6
    assert alerts == []  # expiry at the duty is no news
    assert cleaner.run_once(now=T0 + 95 * DAY).expired == ()


def test_watermark_evicts_oldest_first_across_cameras_and_says_so_loudly(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90}, hard_min_free_percent=0)
    a = site.add_run("cam-a", T0, 5)
    b = site.add_run("cam-b", T0 + 30, 5)
    # The watermark wants 4.5 segments' worth free; only 2 are free: 3 oldest must go.
    site.set_storage(hard_min_free_bytes=int(4.5 * site.size))
    disk = SimulatedDisk(site.storage, total=12 * site.size)
    cleaner = cleaner_for(site, disk, alerts, cleaners)

    result = cleaner.run_once(now=T0 + DAY)

    assert list(result.evicted) == [a[0].id, b[0].id, a[1].id]
    assert result.expired == () and result.shortfall_bytes == 0
    assert not any(site.exists(s) for s in (a[0], b[0], a[1]))
    assert disk(site.storage).free == 5 * site.size
    assert site.indexed_ids() == {s.id for s in a[2:] + b[1:]}
    evictions = [e for e in alerts if e.kind == ev.EVICTION_BELOW_DUTY]
    assert [(e.camera, e.details["segments"]) for e in evictions] == [("cam-a", 2), ("cam-b", 1)]
    assert evictions[0].details["duty_days"] == 90
    assert evictions[0].details["evicted_from"] == T0
    assert evictions[0].details["days_held"] == pytest.approx((DAY - 120) / DAY, abs=1e-3)
    assert ev.RETENTION_AT_RISK in alerts.kinds()  # a disk this small holds minutes, not days
    kept = cleaner.events.recent()
    assert {e.kind for e in kept} == {ev.EVICTION_BELOW_DUTY, ev.RETENTION_AT_RISK}
    assert cleaner.run_once(now=T0 + DAY).evicted == ()  # above the watermark again


def test_held_evidence_is_never_deleted_until_the_hold_is_released(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90}, hard_min_free_percent=0)
    a = site.add_run("cam-a", T0, 4)
    b = site.add_run("cam-b", T0, 1)
    hold_id = site.index.add_hold("cam-a", T0 + 70, T0 + 80, "alert", ref="evt-1")
    site.index.add_hold("cam-b", T0 + 10, T0 + 20, "other camera, other hold")
    disk = SimulatedDisk(site.storage, TB)
    cleaner = cleaner_for(site, disk, alerts, cleaners)

    result = cleaner.run_once(now=T0 + 100 * DAY)
    assert sorted(result.expired) == [a[0].id, a[2].id, a[3].id]
    assert site.exists(a[1]) and site.exists(b[0])

    # Under the watermark too: everything left is held, so nothing goes and it is loud.
    disk.total = 3 * site.size  # the two held segments and one segment's worth free
    site.set_storage(hard_min_free_bytes=10 * TB)  # capped at half the disk
    cleaner.config = site.config
    result = cleaner.run_once(now=T0 + 100 * DAY)
    assert result.evicted == () and result.shortfall_bytes > 0
    assert site.indexed_ids() == {a[1].id, b[0].id}
    assert alerts.kinds().count(ev.SPACE_UNRECOVERABLE) == 1

    assert site.index.release_hold(hold_id)
    result = cleaner.run_once(now=T0 + 100 * DAY)
    assert list(result.expired) == [a[1].id]
    assert not site.exists(a[1]) and site.exists(b[0])


def test_watermark_skips_held_segments_and_takes_the_next_oldest(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90}, hard_min_free_percent=0)
    a = site.add_run("cam-a", T0, 3)
    b = site.add_run("cam-b", T0 + 30, 3)
    site.index.add_hold("cam-a", T0, T0 + 1, "alert")
    site.set_storage(hard_min_free_bytes=int(1.5 * site.size))
    cleaner = cleaner_for(site, SimulatedDisk(site.storage, 6 * site.size), alerts, cleaners)

    result = cleaner.run_once(now=T0 + DAY)

    assert list(result.evicted) == [b[0].id, a[1].id]
    assert site.exists(a[0])


def test_a_file_that_cannot_be_deleted_keeps_its_row_and_the_rest_goes_on(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 30}, hard_min_free_bytes=0, hard_min_free_percent=0)
    segs = site.add_run("cam-a", T0, 3)
    stuck = site.storage / segs[1].path
    stuck.unlink()
    stuck.mkdir()  # unlink() on it fails, as a permission error would, even for root
    (stuck / "keep").write_text("x")
    cleaner = cleaner_for(site, SimulatedDisk(site.storage, TB), alerts, cleaners)

    result = cleaner.run_once(now=T0 + 40 * DAY)

    assert sorted(result.expired) == [segs[0].id, segs[2].id]
    assert result.failed == (segs[1].path,)
    assert site.indexed_ids() == {segs[1].id}
    assert alerts.kinds() == [ev.DELETE_FAILED]
    assert alerts[0].details["paths"] == [segs[1].path]
    assert cleaner.run_once(now=T0 + 40 * DAY).failed == (segs[1].path,)
    assert alerts.kinds() == [ev.DELETE_FAILED]  # said once, not every pass


def test_missing_file_is_forgotten(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 30}, hard_min_free_bytes=0, hard_min_free_percent=0)
    segs = site.add_run("cam-a", T0, 2)
    (site.storage / segs[0].path).unlink()
    cleaner = cleaner_for(site, SimulatedDisk(site.storage, TB), alerts, cleaners)
    assert sorted(cleaner.run_once(now=T0 + 40 * DAY).expired) == [s.id for s in segs]
    assert site.indexed_ids() == set()


def test_status_forecasts_days_and_flags_risk_then_clears_it(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90}, hard_min_free_bytes=0, hard_min_free_percent=0)
    site.add_run("cam-a", T0, 10)
    site.add_run("cam-b", T0, 10)
    rate = site.size / 60  # bytes per second per camera
    per_day = 2 * rate * DAY
    used = 20 * site.size
    disk = SimulatedDisk(site.storage, total=int(50 * per_day) + 1)
    cleaner = cleaner_for(site, disk, alerts, cleaners)
    assert cleaner.status() is None

    cleaner.run_once(now=T0 + 700)
    status = cleaner.status()
    assert status is not None
    assert status.days_forecast == pytest.approx(50.0, abs=0.01)
    assert status.at_risk and status.at_risk_cameras == ["cam-a", "cam-b"]
    assert {c.camera: c.bytes for c in status.cameras} == {"cam-a": used // 2, "cam-b": used // 2}
    assert [c.bytes_per_s for c in status.cameras] == [pytest.approx(rate)] * 2
    assert alerts.kinds() == [ev.RETENTION_AT_RISK]
    assert alerts[0].details["days_forecast"] == pytest.approx(50.0, abs=0.01)

    cleaner.run_once(now=T0 + 760)
    assert alerts.kinds() == [ev.RETENTION_AT_RISK]  # raised once while it lasts

    disk.total = int(100 * per_day)  # a bigger disk: 100 days >= 90 + 7
    cleaner.run_once(now=T0 + 820)
    status = cleaner.status()
    assert status is not None and not status.at_risk
    assert status.days_forecast == pytest.approx(100.0, abs=0.01)
    assert alerts.kinds() == [ev.RETENTION_AT_RISK, ev.RETENTION_OK]


def test_a_failing_alert_callback_does_not_stop_the_pass(
    make_site: SiteFactory, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90}, hard_min_free_percent=0)
    segs = site.add_run("cam-a", T0, 3)
    site.set_storage(hard_min_free_bytes=int(1.5 * site.size))

    def broken(event: RetentionEvent) -> None:
        raise RuntimeError("subscriber is down")

    disk = SimulatedDisk(site.storage, 4 * site.size)
    cleaner = RetentionCleaner(site.config, site.index, disk_usage=disk, on_alert=broken)
    cleaners.append(cleaner)
    result = cleaner.run_once(now=T0 + DAY)
    assert list(result.evicted) == [segs[0].id]
    kinds = {e.kind for e in cleaner.events.recent()}
    assert kinds == {ev.EVICTION_BELOW_DUTY, ev.RETENTION_AT_RISK}  # kept though not delivered


def test_thread_runs_passes_and_stops_at_once(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site(
        {"cam-a": 30}, hard_min_free_bytes=0, hard_min_free_percent=0, cleanup_interval_s=3600
    )
    now = time.time()
    old = site.add_run("cam-a", now - 40 * DAY, 2)
    fresh = site.add_run("cam-a", now - 600, 2)
    cleaner = cleaner_for(site, SimulatedDisk(site.storage, TB), alerts, cleaners)

    cleaner.start()
    deadline = time.monotonic() + 20
    while cleaner.status() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cleaner.status() is not None
    assert "retention" in {t.name for t in threading.enumerate()}
    assert site.indexed_ids() == {s.id for s in fresh}
    assert not any(site.exists(s) for s in old)

    started = time.monotonic()
    cleaner.stop()
    assert time.monotonic() - started < 5  # the hour-long wait ends on stop
    assert "retention" not in {t.name for t in threading.enumerate()}


def test_at_risk_is_raised_on_time_at_first_start_and_once_across_restarts(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    site = make_site({"cam-a": 90}, hard_min_free_bytes=0, hard_min_free_percent=0)
    disk = SimulatedDisk(site.storage, total=10 * site.size)  # far less than 90 days
    first = RetentionCleaner(site.config, site.index, disk_usage=disk, on_alert=alerts.append)
    cleaners.append(first)  # the default forecast interval (600 s)
    status = first.run_once(now=T0).forecast
    assert status is not None and status.cameras_without_rate == ("cam-a",)
    assert first._next_pass_in() <= 10.0  # polls for the first rate instead of waiting
    site.add_run("cam-a", T0, 2)
    first.run_once(now=T0 + 10)  # seconds later, not after the forecast interval
    assert alerts.kinds() == [ev.RETENTION_AT_RISK]
    first.stop()
    again = RetentionCleaner(site.config, site.index, disk_usage=disk, on_alert=alerts.append)
    cleaners.append(again)  # a restart: the condition is already known
    again.run_once(now=T0 + 20)
    assert alerts.kinds() == [ev.RETENTION_AT_RISK]


def test_eviction_starts_before_the_watermark_is_reached(
    make_site: SiteFactory, alerts: Alerts, cleaners: list[RetentionCleaner]
) -> None:
    """Free space is a floor: evict while one interval of writing would cross it."""
    site = make_site({"cam-a": 90}, hard_min_free_percent=0)
    segs = site.add_run("cam-a", T0, 6)
    rate = site.size / 60
    interval = site.config.storage.cleanup_interval_s
    site.set_storage(hard_min_free_bytes=2 * site.size)
    disk = SimulatedDisk(site.storage, total=8 * site.size + int(rate * interval) // 2)
    cleaner = cleaner_for(site, disk, alerts, cleaners)
    assert disk(site.storage).free >= 2 * site.size  # not under the watermark yet
    result = cleaner.run_once(now=T0 + 400)
    assert result.evicted == (segs[0].id,)
    assert disk(site.storage).free >= 2 * site.size + rate * interval
