"""Retention on a large index: SQL stats match the pure reference, reads go page by page."""

from __future__ import annotations

import pytest
from retention_site import DAY, T0, SimulatedDisk, SiteFactory

from edge_agent.retention import cleaner as cleaner_module
from edge_agent.retention import queries
from edge_agent.retention.cleaner import RetentionCleaner
from edge_agent.retention.forecast import stats_from_segments


def test_sql_stats_match_the_pure_reference(make_site: SiteFactory) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90})
    site.add_run("cam-a", T0, 3)
    site.add_run("cam-a", T0 + 2 * DAY, 4, every=30.0)  # the last day counts for the rate
    site.add_run("cam-b", T0 + 600, 2, every=120.0)
    site.add("cam-c", T0 - 10 * DAY, seconds=10.0)
    site.index.add_hold("cam-a", T0 + 2 * DAY + 40, T0 + 2 * DAY + 70, "alert")
    site.index.add_hold("cam-b", T0 + 650, T0 + 900, "alert")
    holds = site.index.active_holds()

    with site.index.reading() as db:
        sql = queries.camera_stats(db, holds)
    pure = stats_from_segments(site.index.segments(), holds)

    assert sql == pure
    assert sql["cam-a"].bytes_per_s == pytest.approx(site.size / 30)
    assert sql["cam-a"].held_bytes == 2 * site.size  # the hold spans two 30 s segments
    assert sql["cam-b"].held_bytes == 2 * site.size
    assert sql["cam-c"].segments == 1 and sql["cam-c"].held_bytes == 0


def test_oldest_segments_pages_in_start_order(make_site: SiteFactory) -> None:
    site = make_site({"cam-a": 90})
    segs = site.add_run("cam-a", T0, 5)
    with site.index.reading() as db:
        first = queries.oldest_segments(db, "cam-a", limit=2)
        second = queries.oldest_segments(db, "cam-a", first[-1], limit=2)
        rest = queries.oldest_segments(db, "cam-a", second[-1], limit=2)
    assert [s.id for s in first + second + rest] == [s.id for s in segs]


def test_watermark_reads_past_held_pages(
    make_site: SiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleaner_module, "PAGE", 2)
    site = make_site({"cam-a": 90, "cam-b": 90}, hard_min_free_percent=0)
    a = site.add_run("cam-a", T0, 6)
    b = site.add_run("cam-b", T0 + 30, 2)
    site.index.add_hold("cam-a", T0, T0 + 200, "alert")  # a's first four segments
    site.set_storage(hard_min_free_bytes=int(2.5 * site.size))
    disk = SimulatedDisk(site.storage, 8 * site.size + site.size // 2)
    cleaner = RetentionCleaner(site.config, site.index, disk_usage=disk)
    try:
        result = cleaner.run_once(now=T0 + DAY)
    finally:
        cleaner.stop()
    assert list(result.evicted) == [b[0].id, b[1].id, a[4].id]
    assert all(site.exists(s) for s in a[:4])


def test_expiry_backlog_is_worked_off_in_batches_past_held_pages(
    make_site: SiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleaner_module, "PAGE", 2)
    monkeypatch.setattr(cleaner_module, "EXPIRY_BATCH", 2)
    site = make_site({"cam-a": 30}, hard_min_free_bytes=0, hard_min_free_percent=0)
    segs = site.add_run("cam-a", T0, 7)
    site.index.add_hold("cam-a", T0, T0 + 120, "alert")  # the first page is all held
    cleaner = RetentionCleaner(
        site.config, site.index, disk_usage=SimulatedDisk(site.storage, 10**12)
    )
    try:
        first = cleaner.run_once(now=T0 + 40 * DAY)
        second = cleaner.run_once(now=T0 + 40 * DAY)
        third = cleaner.run_once(now=T0 + 40 * DAY)
    finally:
        cleaner.stop()
    assert list(first.expired) == [segs[2].id, segs[3].id]
    assert list(second.expired) == [segs[4].id, segs[5].id]
    assert list(third.expired) == [segs[6].id]
    assert site.indexed_ids() == {segs[0].id, segs[1].id}
