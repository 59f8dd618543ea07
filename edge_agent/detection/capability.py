"""What a camera's rules can really see: each rule is working, partial or blind, with a reason.

A rule declares the labels it watches (`classes`); the camera's model produces a set of
labels through its class map, some with a caveat (a COCO "cell phone" is a phone in view,
not phone use). Pure functions: the pipeline, `check-config` and the heartbeat share them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from edge_agent.detection.settings import RuleSpec

Status = Literal["working", "partial", "blind"]
STATUSES: tuple[Status, ...] = ("working", "partial", "blind")


@dataclass(frozen=True)
class RuleCapability:
    """One rule's capability on one camera."""

    rule: str
    kind: str
    status: Status
    reason: str


def assess_rule(
    rule: RuleSpec,
    labels: set[str],
    caveats: Mapping[str, str],
    unavailable: Mapping[str, str] | None = None,
) -> RuleCapability:
    """Whether the model behind `labels` lets `rule` work, and why not if it does not.

    `unavailable` names labels a declared model would give but could not be loaded (why)."""
    seen = [c for c in rule.classes if c in labels]
    missing = [c for c in rule.classes if c not in labels]
    kind = rule.event_kind
    why = [f"{c}: {unavailable[c]}" for c in missing if unavailable and c in unavailable]
    if not seen:
        reason = f"the model does not see {_names(missing)}; needs a model trained for it"
        if why:
            reason = f"the model for {_names(missing)} is not loaded: {'; '.join(why)}"
        if rule.type == "required_presence":
            reason += " (the rule is not run: it would report every moment as absence)"
        return RuleCapability(rule.id, kind, "blind", reason)
    notes = [f"{c}: {caveats[c]}" for c in seen if c in caveats]
    if missing:
        notes.insert(0, f"sees {_names(seen)} but not {_names(missing)}")
    if notes:
        return RuleCapability(rule.id, kind, "partial", "; ".join(notes))
    return RuleCapability(rule.id, kind, "working", f"the model sees {_names(seen)}")


def assess_rules(
    rules: Iterable[RuleSpec],
    labels: set[str],
    caveats: Mapping[str, str],
    unavailable: Mapping[str, str] | None = None,
) -> list[RuleCapability]:
    """Capability of every enabled rule."""
    return [assess_rule(r, labels, caveats, unavailable) for r in rules if r.enabled]


def all_blind(rules: Iterable[RuleSpec], reason: str) -> list[RuleCapability]:
    """Every enabled rule blind for one reason (no model could be loaded)."""
    return [RuleCapability(r.id, r.event_kind, "blind", reason) for r in rules if r.enabled]


def counts(capabilities: Sequence[RuleCapability]) -> dict[Status, int]:
    """How many rules are working, partial and blind."""
    tally = Counter(c.status for c in capabilities)
    return {s: tally.get(s, 0) for s in STATUSES}


def runnable(rules: Sequence[RuleSpec], capabilities: Sequence[RuleCapability]) -> list[RuleSpec]:
    """The rules worth running: a blind `required_presence` rule would fire all the time."""
    blind = {c.rule for c in capabilities if c.status == "blind"}
    return [r for r in rules if not (r.type == "required_presence" and r.id in blind)]


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels)
