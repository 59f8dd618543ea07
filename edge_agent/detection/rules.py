"""The rule engine: tracked objects and a time in, event transitions out. Pure, no video."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from edge_agent.detection.schedule import in_schedule
from edge_agent.detection.settings import RuleSpec
from edge_agent.detection.tracker import TrackedObject
from edge_agent.detection.zones import in_zone

Phase = Literal["start", "update", "end"]


@dataclass(frozen=True)
class RuleEvent:
    """A transition of one rule's violation: it started, got a better score, or ended."""

    phase: Phase
    rule: RuleSpec
    start: float
    end: float | None
    score: float  # peak so far
    objects: tuple[TrackedObject, ...]  # the objects that make the violation, at this instant
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _RuleState:
    pending_since: float | None = None  # condition true (uninterrupted) since
    last_true: float | None = None
    open_start: float | None = None
    peak: float = 0.0
    cooldown_until: float = float("-inf")
    zone_since: dict[int, float] = field(default_factory=dict)  # loitering: track -> entered
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Check:
    violated: bool
    objects: tuple[TrackedObject, ...]
    score: float
    details: dict[str, Any]


class RuleEngine:
    """Evaluates a camera's rules frame by frame; one open event per rule at most."""

    def __init__(self, rules: Sequence[RuleSpec], zone: ZoneInfo) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.zone = zone
        self._state = {r.id: _RuleState() for r in self.rules}

    def update(self, now: float, objects: Sequence[TrackedObject]) -> list[RuleEvent]:
        """Advance every rule to `now` (UTC epoch seconds) given the objects seen then."""
        events: list[RuleEvent] = []
        for rule in self.rules:
            event = self._step(rule, self._state[rule.id], now, objects)
            if event is not None:
                events.append(event)
        return events

    def close_all(self, now: float, reason: str = "stopped") -> list[RuleEvent]:
        """End every open event (the camera or the agent stops)."""
        events = []
        for rule in self.rules:
            state = self._state[rule.id]
            if state.open_start is not None:
                events.append(self._end(rule, state, max(now, state.open_start), reason))
        return events

    def is_open(self, rule_id: str) -> bool:
        """True while the rule has an open event."""
        return self._state[rule_id].open_start is not None

    def _step(
        self, rule: RuleSpec, state: _RuleState, now: float, objects: Sequence[TrackedObject]
    ) -> RuleEvent | None:
        if not self._applies(rule, now):
            state.pending_since = None
            state.zone_since.clear()
            if state.open_start is not None:
                return self._end(rule, state, now, "outside schedule")
            return None
        check = self._check(rule, state, now, objects)
        if state.open_start is not None:
            return self._step_open(rule, state, now, check)
        if not check.violated or now < state.cooldown_until:
            # In cooldown a violation must build up afresh once the quiet time is over.
            state.pending_since = None
            return None
        if state.pending_since is None:
            state.pending_since = now
        if now - state.pending_since < self._hold(rule):
            return None
        state.open_start, state.last_true = state.pending_since, now
        state.peak, state.details = check.score, check.details
        return RuleEvent(
            "start", rule, state.open_start, None, check.score, check.objects, check.details
        )

    def _step_open(
        self, rule: RuleSpec, state: _RuleState, now: float, check: _Check
    ) -> RuleEvent | None:
        assert state.open_start is not None
        if check.violated:
            state.last_true = now
            if now - state.open_start >= rule.max_event_s:
                return self._end(rule, state, now, "maximum event length")
            if check.score > state.peak:
                state.peak, state.details = check.score, check.details
                return RuleEvent(
                    "update", rule, state.open_start, None, state.peak, check.objects, check.details
                )
            return None
        last = state.last_true if state.last_true is not None else state.open_start
        if now - last >= rule.end_after_s:
            return self._end(rule, state, last, "condition cleared")
        return None

    def _end(self, rule: RuleSpec, state: _RuleState, end: float, reason: str) -> RuleEvent:
        assert state.open_start is not None
        event = RuleEvent(
            "end",
            rule,
            state.open_start,
            end,
            state.peak,
            (),
            {**state.details, "ended_by": reason},
        )
        state.open_start = state.pending_since = state.last_true = None
        state.peak = 0.0
        state.cooldown_until = end + rule.cooldown_s
        return event

    def _applies(self, rule: RuleSpec, now: float) -> bool:
        if not in_schedule(rule.schedule, now, self.zone):
            return False
        if rule.type == "after_hours":
            return not in_schedule(rule.permitted or [], now, self.zone)
        return True

    @staticmethod
    def _hold(rule: RuleSpec) -> float:
        if rule.type == "required_presence":
            return rule.max_absent_s
        if rule.type == "loitering":
            return 0.0  # the dwell time per track is the hold
        return rule.min_seconds

    def _check(
        self, rule: RuleSpec, state: _RuleState, now: float, objects: Sequence[TrackedObject]
    ) -> _Check:
        matched = tuple(
            o
            for o in objects
            if o.label in rule.classes
            and o.score >= rule.min_score
            and in_zone(rule.zone, o.box, rule.anchor)
        )
        best = max((o.score for o in matched), default=0.0)
        count = {"count": len(matched)}
        if rule.type == "required_presence":
            # Absence has no detector score; the event's score says how sure the absence is.
            return _Check(
                len(matched) < rule.min_count, matched, 1.0, {**count, "min_count": rule.min_count}
            )
        if rule.type == "crowding":
            return _Check(
                len(matched) > rule.max_count, matched, best, {**count, "max_count": rule.max_count}
            )
        if rule.type == "loitering":
            return self._check_loitering(rule, state, now, matched)
        return _Check(bool(matched), matched, best, count)

    @staticmethod
    def _check_loitering(
        rule: RuleSpec, state: _RuleState, now: float, matched: tuple[TrackedObject, ...]
    ) -> _Check:
        present = {o.track_id for o in matched}
        for track_id in list(state.zone_since):
            if track_id not in present:
                del state.zone_since[track_id]
        for o in matched:
            state.zone_since.setdefault(o.track_id, now)
        loiterers = tuple(
            o for o in matched if now - state.zone_since[o.track_id] >= rule.min_seconds
        )
        dwell = max((now - state.zone_since[o.track_id] for o in loiterers), default=0.0)
        best = max((o.score for o in loiterers), default=0.0)
        return _Check(
            bool(loiterers), loiterers, best, {"count": len(loiterers), "dwell_s": round(dwell, 1)}
        )
