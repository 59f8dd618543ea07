"""The rule engine, without video: each rule type, zones, schedules, cooldown, hysteresis."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.detection.rules import RuleEngine, RuleEvent
from edge_agent.detection.settings import RuleSpec
from edge_agent.detection.tracker import TrackedObject

SH = ZoneInfo("Asia/Shanghai")
LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


def rule(**fields: Any) -> RuleSpec:
    base: dict[str, Any] = {"id": "r", "type": "forbidden", "end_after_s": 2, "cooldown_s": 0}
    return RuleSpec.model_validate({**base, **fields})


def person(
    track: int = 1, x: float = 0.2, label: str = "person", score: float = 0.8
) -> TrackedObject:
    # A box whose bottom centre is at (x, 0.9).
    return TrackedObject(track, label, score, (x - 0.05, 0.5, x + 0.05, 0.9), 0.0, 0.0)


def run(
    engine: RuleEngine, t0: float, seconds: int, objects: list[TrackedObject], step: float = 1.0
) -> list[RuleEvent]:
    events: list[RuleEvent] = []
    for i in range(int(seconds / step)):
        events += engine.update(t0 + i * step, objects)
    return events


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


T0 = local("2026-03-02 10:00:00")  # a Monday


def test_forbidden_needs_min_seconds_then_ends_after_the_hysteresis() -> None:
    engine = RuleEngine([rule(min_seconds=3)], SH)
    assert run(engine, T0, 3, [person()]) == []  # seen for 0, 1, 2 s: not yet
    started = engine.update(T0 + 3, [person()])
    assert [e.phase for e in started] == ["start"] and started[0].start == T0
    assert run(engine, T0 + 4, 1, []) == []  # gone for less than end_after_s
    ended = engine.update(T0 + 6, [])
    assert [(e.phase, e.start, e.end) for e in ended] == [("end", T0, T0 + 3)]


def test_forbidden_only_counts_its_classes_its_zone_and_its_score() -> None:
    engine = RuleEngine(
        [rule(classes=["no_chef_hat"], zone=LEFT, min_seconds=0, min_score=0.5)], SH
    )
    assert engine.update(T0, [person()]) == []  # wrong class
    assert engine.update(T0 + 1, [person(label="no_chef_hat", x=0.8)]) == []  # outside zone
    assert engine.update(T0 + 2, [person(label="no_chef_hat", score=0.3)]) == []  # weak
    events = engine.update(T0 + 3, [person(label="no_chef_hat")])
    assert events[0].phase == "start" and events[0].rule.event_kind == "no_chef_hat"


def test_zone_anchor_bottom_versus_center() -> None:
    band = [(0.0, 0.8), (1.0, 0.8), (1.0, 1.0), (0.0, 1.0)]  # the floor strip
    feet = RuleEngine([rule(id="feet", zone=band, min_seconds=0)], SH)
    centre = RuleEngine([rule(id="centre", zone=band, anchor="center", min_seconds=0)], SH)
    assert len(feet.update(T0, [person()])) == 1  # feet at y=0.9 are in the strip
    assert centre.update(T0, [person()]) == []  # the centre (y=0.7) is not


def test_required_presence_fires_after_max_absent_and_ends_when_someone_returns() -> None:
    spec = rule(type="required_presence", zone=LEFT, min_count=1, max_absent_s=10)
    engine = RuleEngine([spec], SH)
    assert run(engine, T0, 5, [person()]) == []  # attended
    assert run(engine, T0 + 5, 10, [person(x=0.8)]) == []  # only someone outside the zone
    started = engine.update(T0 + 15, [])
    assert started[0].phase == "start" and started[0].rule.event_kind == "unattended_station"
    assert started[0].start == T0 + 5
    assert engine.update(T0 + 16, [person()]) == []
    ended = engine.update(T0 + 17, [person()])
    assert ended[0].phase == "end" and ended[0].end == T0 + 15


def test_required_presence_counts_persons() -> None:
    engine = RuleEngine([rule(type="required_presence", min_count=2, max_absent_s=0)], SH)
    assert engine.update(T0, [person(1), person(2, x=0.7)]) == []
    assert engine.update(T0 + 1, [person(1)])[0].details["count"] == 1


def test_schedule_window_across_midnight() -> None:
    night = [{"days": ["fri"], "start": "22:00", "end": "06:00"}]
    engine = RuleEngine([rule(min_seconds=0, schedule=night, max_event_s=86400)], SH)
    friday_noon, friday_late = local("2026-03-06 12:00:00"), local("2026-03-06 23:00:00")
    saturday_early, saturday_late = local("2026-03-07 05:59:00"), local("2026-03-07 23:00:00")
    thursday_early = local("2026-03-06 03:00:00")  # Friday 03:00 belongs to Thursday's night
    assert engine.update(friday_noon, [person()]) == []
    assert engine.update(thursday_early, [person()]) == []
    assert engine.update(friday_late, [person()])[0].phase == "start"
    assert engine.update(saturday_early, [person()]) == []  # still open, still in the window
    assert engine.update(saturday_late, [person()])[0].details["ended_by"] == "outside schedule"


def test_after_hours_fires_only_outside_permitted_hours() -> None:
    spec = rule(type="after_hours", permitted=[{"start": "08:00", "end": "18:00"}], min_seconds=0)
    engine = RuleEngine([spec], SH)
    assert engine.update(local("2026-03-02 12:00:00"), [person()]) == []
    events = engine.update(local("2026-03-02 19:00:00"), [person()])
    assert events[0].phase == "start" and events[0].rule.event_kind == "after_hours_activity"


def test_crowding_needs_more_than_max_count_for_min_seconds() -> None:
    engine = RuleEngine([rule(type="crowding", max_count=2, min_seconds=2)], SH)
    three = [person(1), person(2, x=0.4), person(3, x=0.6)]
    assert run(engine, T0, 5, three[:2]) == []
    events = run(engine, T0 + 5, 3, three)
    assert [e.phase for e in events] == ["start"] and events[0].details["count"] == 3


def test_loitering_is_per_track_dwell() -> None:
    engine = RuleEngine([rule(type="loitering", min_seconds=5)], SH)
    # Different people passing through, each for 2 s: no loitering.
    events = [e for i in range(6) for e in run(engine, T0 + 2 * i, 2, [person(track=i)])]
    assert events == []
    events = run(engine, T0 + 20, 7, [person(track=99)])
    assert [e.phase for e in events] == ["start"] and events[0].objects[0].track_id == 99


def test_cooldown_suppresses_a_new_event_then_allows_it() -> None:
    engine = RuleEngine([rule(min_seconds=0, cooldown_s=30, end_after_s=1)], SH)
    assert engine.update(T0, [person()])[0].phase == "start"
    assert engine.update(T0 + 2, [])[0].phase == "end"  # ended at T0; cooldown till T0 + 30
    assert run(engine, T0 + 3, 20, [person()]) == []
    assert engine.update(T0 + 31, [person()])[0].phase == "start"


def test_peak_updates_and_max_event_length() -> None:
    engine = RuleEngine([rule(min_seconds=0, max_event_s=10)], SH)
    assert engine.update(T0, [person(score=0.5)])[0].phase == "start"
    update = engine.update(T0 + 1, [person(score=0.9)])
    assert update[0].phase == "update" and update[0].score == 0.9
    assert engine.update(T0 + 2, [person(score=0.6)]) == []
    ended = run(engine, T0 + 3, 8, [person(score=0.6)])
    assert ended[-1].phase == "end" and ended[-1].details["ended_by"] == "maximum event length"
    assert ended[-1].score == 0.9


def test_close_all_ends_open_events_and_disabled_rules_never_fire() -> None:
    engine = RuleEngine([rule(min_seconds=0), rule(id="off", min_seconds=0, enabled=False)], SH)
    assert len(engine.update(T0, [person()])) == 1
    closed = engine.close_all(T0 + 5)
    assert [(e.rule.id, e.phase, e.end) for e in closed] == [("r", "end", T0 + 5)]
