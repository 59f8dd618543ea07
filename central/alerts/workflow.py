"""The rectification workflow of an alert as a pure state machine (no database, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from central.errors import WorkflowError
from central.regulation.roles import Permission


class State(StrEnum):
    """Where an alert stands."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RECTIFICATION_REQUESTED = "rectification_requested"
    RECTIFICATION_SUBMITTED = "rectification_submitted"
    CLOSED = "closed"
    REOPENED = "reopened"


class Action(StrEnum):
    """What a user does to an alert."""

    ACKNOWLEDGE = "acknowledge"
    REQUEST_RECTIFICATION = "request_rectification"
    SUBMIT_RECTIFICATION = "submit_rectification"
    CLOSE = "close"
    REOPEN = "reopen"


OPEN_STATES = frozenset(State) - {State.CLOSED}

# action -> (states it may start from, state it leads to, permission it needs)
_RULES: dict[Action, tuple[frozenset[State], State, Permission]] = {
    Action.ACKNOWLEDGE: (frozenset({State.NEW}), State.ACKNOWLEDGED, Permission.ACKNOWLEDGE),
    Action.REQUEST_RECTIFICATION: (
        # From "submitted" it means: the evidence was not good enough, do it again.
        frozenset({State.NEW, State.ACKNOWLEDGED, State.REOPENED, State.RECTIFICATION_SUBMITTED}),
        State.RECTIFICATION_REQUESTED,
        Permission.REQUEST_RECTIFICATION,
    ),
    Action.SUBMIT_RECTIFICATION: (
        frozenset({State.RECTIFICATION_REQUESTED}),
        State.RECTIFICATION_SUBMITTED,
        Permission.SUBMIT_RECTIFICATION,
    ),
    Action.CLOSE: (OPEN_STATES, State.CLOSED, Permission.CLOSE),
    Action.REOPEN: (frozenset({State.CLOSED}), State.REOPENED, Permission.REOPEN),
}


@dataclass(frozen=True)
class Step:
    """One decided transition: from which state to which, and what it needs to carry."""

    action: Action
    before: State
    after: State
    needs_note: bool
    needs_deadline: bool

    @property
    def opens(self) -> bool:
        """True if the alert goes from closed to open (evidence must be held again)."""
        return self.before is State.CLOSED and self.after is not State.CLOSED

    @property
    def closes(self) -> bool:
        """True if the alert becomes closed (the evidence hold may be released)."""
        return self.after is State.CLOSED


def permission_for(action: Action) -> Permission:
    """The permission a user needs to perform `action`."""
    return _RULES[action][2]


def allowed_actions(state: State, permissions: frozenset[Permission]) -> list[Action]:
    """The actions someone holding `permissions` may take on an alert in `state`."""
    return [
        action
        for action, (starts, _after, permission) in _RULES.items()
        if state in starts and permission in permissions
    ]


def decide(state: State, action: Action, *, note: str, deadline: float | None) -> Step:
    """The transition `action` makes from `state`; WorkflowError if it is not allowed.

    A rectification request needs a note and a deadline (what to fix, by when); a submission
    needs a text saying what was done; closing and reopening need a reason.
    """
    starts, after, _perm = _RULES[action]
    if state not in starts:
        allowed = ", ".join(sorted(s.value for s in starts))
        raise WorkflowError(
            f"cannot {action.value} an alert that is {state.value} (allowed from: {allowed})"
        )
    needs_note = action in (
        Action.REQUEST_RECTIFICATION,
        Action.SUBMIT_RECTIFICATION,
        Action.CLOSE,  # why it is closed: fixed, or a false alarm
        Action.REOPEN,
    )
    needs_deadline = action is Action.REQUEST_RECTIFICATION
    if needs_note and not note.strip():
        raise WorkflowError(f"{action.value} needs a note")
    if needs_deadline and deadline is None:
        raise WorkflowError(f"{action.value} needs a deadline")
    return Step(action, state, after, needs_note, needs_deadline)


def is_overdue(state: State, deadline: float | None, now: float) -> bool:
    """True if a requested rectification has passed its deadline without a submission."""
    return state is State.RECTIFICATION_REQUESTED and deadline is not None and now > deadline
