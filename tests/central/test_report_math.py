"""Report arithmetic on small known inputs."""

from central.reports.arithmetic import (
    count_by,
    expected_seconds,
    mean_delay,
    online_seconds,
    ratio,
    recorded_seconds,
)


def test_counts_and_means() -> None:
    rows = [{"k": "a", "s": 0, "e": 10}, {"k": "b", "s": 5, "e": None}, {"k": "a", "s": 0, "e": 30}]
    assert count_by(rows, "k") == {"a": 2, "b": 1}
    assert mean_delay(rows, "s", "e") == 20
    assert mean_delay([], "s", "e") is None
    assert ratio(1, 3) == 0.3333 and ratio(1, 0) is None


def test_online_seconds_over_changes() -> None:
    changes = [(10.0, "offline"), (40.0, "online"), (200.0, "offline")]
    assert online_seconds(changes, 0, 100, "online") == 10 + 60
    assert online_seconds(changes, 0, 100, None) == 60
    assert online_seconds([], 0, 100, "online") == 100
    assert online_seconds([(-5.0, "online")], 0, 100, None) == 100


def test_recorded_and_expected() -> None:
    samples = [
        (300.0, 300.0, True),
        (600.0, 300.0, False),
        (900.0, 300.0, True),
        (1300.0, 300.0, True),
    ]
    assert recorded_seconds(samples, 0, 1200) == 300 + 300 + 200
    assert expected_seconds(created_at=600, start=0, end=1200) == 600
    assert expected_seconds(created_at=2000, start=0, end=1200) == 0
