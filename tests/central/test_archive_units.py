"""The archive's pure decisions: policy windows and stations, best source, watermark, plan."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from central.archive.plan import CapacityPlan, parse_size
from central.archive.policy import SitePolicy, Window, wants
from central.archive.retention import below_watermark, days_left, expired
from central.archive.settings import ArchiveConfig
from central.archive.sources import best_sources
from central.archive.store import Stored
from central.cli import main as central_cli

ZONE = "Asia/Shanghai"


def _at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 3, 2, hour, minute, tzinfo=ZoneInfo(ZONE)).timestamp()


def test_policies_take_what_they_name() -> None:
    assert not wants(SitePolicy(policy="evidence"), "quarantine", _at(1), _at(1, 1), ZONE)
    assert not wants(SitePolicy(policy="sub"), "quarantine", _at(1), _at(1, 1), ZONE)
    assert wants(SitePolicy(policy="sub"), "quarantine", _at(1), _at(1, 1), ZONE, "sub")
    assert not wants(SitePolicy(policy="main"), "quarantine", _at(1), _at(1, 1), ZONE, "sub")
    assert wants(SitePolicy(policy="main"), "anything", _at(1), _at(1, 1), ZONE)
    key = SitePolicy(policy="main", stations=["quarantine"])
    assert wants(key, "quarantine", _at(1), _at(1, 1), ZONE)
    assert not wants(key, "rest_pen", _at(1), _at(1, 1), ZONE)


def test_windows_run_in_the_sites_zone_and_over_midnight() -> None:
    night = SitePolicy(policy="main", windows=[Window(start="22:00", end="06:00")])
    assert wants(night, None, _at(23), _at(23, 1), ZONE)
    assert wants(night, None, _at(5, 58), _at(5, 59), ZONE)
    assert not wants(night, None, _at(12), _at(12, 1), ZONE)
    assert Window(start="08:00", end="08:00").contains(datetime(2026, 1, 1, 3).time())
    with pytest.raises(ValueError):
        Window(start="25:00", end="06:00")
    with pytest.raises(ValueError):
        SitePolicy(policy="main", stations=["../x"])


def test_the_archive_is_the_first_source_then_the_edge() -> None:
    archived = [Stored("s", "c", "a.mp4", 10.0, 20.0, 1, "x")]
    parts = best_sources(0.0, 40.0, archived, [(10.0, 30.0)], edge_online=True)
    assert [(p.start, p.end, p.source) for p in parts] == [
        (0.0, 10.0, "none"), (10.0, 20.0, "archive"), (20.0, 30.0, "edge"), (30.0, 40.0, "none"),
    ]  # fmt: skip
    assert parts[1].files == ["a.mp4"]
    offline = best_sources(0.0, 40.0, archived, [(10.0, 30.0)], edge_online=False)
    assert offline[2].source == "edge_offline"
    # Where the archive holds only the sub lane, that plays and says so; main wins over it.
    lanes = [Stored("s", "c--sub", "c--sub/a.mp4", 0.0, 20.0, 1, "x"), *archived]
    parts = best_sources(0.0, 20.0, lanes, [], edge_online=False)
    assert [(p.start, p.end, p.source, p.stream) for p in parts] == [
        (0.0, 10.0, "archive", "sub"), (10.0, 20.0, "archive", "main"),
    ]  # fmt: skip


def test_retention_and_the_free_space_watermark() -> None:
    config = ArchiveConfig(retention_days=90, min_free_percent=10, min_free_bytes=100)
    assert expired(0.0, 91 * 86400, 90) and not expired(0.0, 89 * 86400, 90)
    assert below_watermark(1000, 99, config)  # under the byte floor
    assert below_watermark(10_000, 900, config)  # under 10 %
    assert not below_watermark(10_000, 2000, config)
    assert days_left(1000, 100.0) == 10.0 and days_left(1000, 0.0) is None


def test_capacity_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_size("512k") == 512_000 and parse_size("2Ti") == 2 * 1024**4
    with pytest.raises(ValueError):
        parse_size("lots")
    plan = CapacityPlan(10, 8, 512_000, 90, int(parse_size("60T")), 10.0)
    assert plan.bytes_per_day == 10 * 8 * 64_000 * 86400
    assert plan.fits and plan.days_held > 90 and plan.uplink_mbps_per_site == pytest.approx(4.096)
    code = central_cli(["archive", "plan", "--sites", "50", "--disk", "20T"])
    out = capsys.readouterr().out
    assert code == 1 and "DOES NOT FIT" in out and "400 cameras" in out
    assert central_cli(["archive", "plan", "--sites", "1", "--disk", "20T"]) == 0
    assert central_cli(["archive", "plan", "--sites", "1", "--disk", "huge"]) == 2
