"""Topic builders and the parser agree, and malformed levels are refused."""

import pytest

from fsv_contract import topics
from fsv_contract.errors import InvalidTopic
from fsv_contract.topics import TopicKind


def test_builders_round_trip_through_the_parser() -> None:
    rid = "0b7c9c38-5d2e-4b43-9a57-1d0c1f0b2a11"
    cases = [
        (topics.agent_state("s1"), TopicKind.AGENT_STATE, {}),
        (topics.heartbeat("s1"), TopicKind.HEARTBEAT, {}),
        (topics.agent_event("s1"), TopicKind.AGENT_EVENT, {}),
        (topics.camera_state("s1", "cam-1"), TopicKind.CAMERA_STATE, {"camera": "cam-1"}),
        (topics.camera_event("s1", "cam-1"), TopicKind.EVENT, {"camera": "cam-1"}),
        (topics.command("s1", "ping"), TopicKind.COMMAND, {"verb": "ping"}),
        (topics.reply("s1", rid), TopicKind.REPLY, {"request_id": rid}),
    ]
    for topic, kind, levels in cases:
        info = topics.parse(topic)
        assert info.kind is kind and info.site == "s1", topic
        for name, value in levels.items():
            assert getattr(info, name) == value


def test_layout_matches_the_design() -> None:
    assert topics.agent_state("a") == "fsv/v1/a/agent/state"
    assert topics.camera_event("a", "c") == "fsv/v1/a/camera/c/event"
    assert topics.command_filter("a") == "fsv/v1/a/cmd/+"
    assert topics.event_topic("a", "") == "fsv/v1/a/agent/event"


@pytest.mark.parametrize("site", ["", "A", "a/b", "+", "#", "a b", "x" * 64, "-a"])
def test_bad_site_levels_are_refused(site: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.agent_state(site)


@pytest.mark.parametrize(
    "topic",
    ["fsv/v2/s/agent/state", "fsv/v1/s", "fsv/v1/s/agent/other", "fsv/v1/s/camera/c", "x/y/z/w"],
)
def test_foreign_topics_do_not_parse(topic: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.parse(topic)
