"""The rectification state machine, step by step."""

import pytest

from central.alerts.workflow import Action, State, allowed_actions, decide, is_overdue
from central.errors import WorkflowError
from central.regulation.roles import GRANTS, Role


def test_happy_path_to_closed_and_reopen() -> None:
    s = decide(State.NEW, Action.ACKNOWLEDGE, note="", deadline=None).after
    assert s is State.ACKNOWLEDGED
    s = decide(s, Action.REQUEST_RECTIFICATION, note="wear hats", deadline=100.0).after
    s = decide(s, Action.SUBMIT_RECTIFICATION, note="done, see photo", deadline=None).after
    assert s is State.RECTIFICATION_SUBMITTED
    step = decide(s, Action.CLOSE, note="hats worn, checked", deadline=None)
    assert step.closes and not step.opens
    step = decide(step.after, Action.REOPEN, note="seen again", deadline=None)
    assert step.after is State.REOPENED and step.opens


def test_refused_steps_say_why() -> None:
    with pytest.raises(WorkflowError, match="cannot submit_rectification an alert that is new"):
        decide(State.NEW, Action.SUBMIT_RECTIFICATION, note="x", deadline=None)
    with pytest.raises(WorkflowError, match="needs a deadline"):
        decide(State.NEW, Action.REQUEST_RECTIFICATION, note="fix", deadline=None)
    with pytest.raises(WorkflowError, match="needs a note"):
        decide(State.NEW, Action.REQUEST_RECTIFICATION, note=" ", deadline=5.0)
    with pytest.raises(WorkflowError):
        decide(State.CLOSED, Action.CLOSE, note="again", deadline=None)
    with pytest.raises(WorkflowError, match="close needs a note"):  # why it is closed
        decide(State.NEW, Action.CLOSE, note="", deadline=None)


def test_allowed_actions_follow_state_and_role() -> None:
    inspector, staff = GRANTS[Role.COUNTY_INSPECTOR], GRANTS[Role.ENTERPRISE_STAFF]
    assert allowed_actions(State.NEW, inspector) == [
        Action.ACKNOWLEDGE,
        Action.REQUEST_RECTIFICATION,
        Action.CLOSE,
    ]
    assert allowed_actions(State.CLOSED, inspector) == [Action.REOPEN]
    assert allowed_actions(State.RECTIFICATION_REQUESTED, staff) == [Action.SUBMIT_RECTIFICATION]
    assert allowed_actions(State.NEW, staff) == []


def test_rejecting_a_submission_requests_again() -> None:
    step = decide(
        State.RECTIFICATION_SUBMITTED, Action.REQUEST_RECTIFICATION, note="blurry", deadline=9.0
    )
    assert step.after is State.RECTIFICATION_REQUESTED


def test_overdue_only_while_requested() -> None:
    assert is_overdue(State.RECTIFICATION_REQUESTED, 10.0, now=11.0)
    assert not is_overdue(State.RECTIFICATION_REQUESTED, 10.0, now=9.0)
    assert not is_overdue(State.RECTIFICATION_SUBMITTED, 10.0, now=11.0)
