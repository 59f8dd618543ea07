"""The command dispatcher: one reply per request id, refusals answered, holds on real SQLite."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from edge_agent.errors import EdgeAgentError
from edge_agent.mqtt.commands import CommandDispatcher
from edge_agent.mqtt.evidence_commands import register_evidence_commands
from edge_agent.recording.index import SegmentIndex
from fsv_contract import CommandPayload, ReplyPayload, encode, topics

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class Replies:
    def __init__(self) -> None:
        self.sent: list[ReplyPayload] = []

    def put_reply(self, payload: ReplyPayload) -> None:
        self.sent.append(payload)


def command(**args: Any) -> CommandPayload:
    return CommandPayload(request_id=uuid4(), issued_at=NOW, args=args)


def test_ping_is_answered_once_per_request_id() -> None:
    replies = Replies()
    d = CommandDispatcher(replies, clock=lambda: NOW)
    c = command(echo="hi")
    d.handle(topics.command("s1", "ping"), encode(c))
    d.handle(topics.command("s1", "ping"), encode(c))  # a QoS 1 redelivery
    (reply,) = replies.sent
    assert reply.ok and reply.result == {"pong": True, "echo": "hi"}
    assert reply.request_id == c.request_id and reply.verb == "ping"


def test_refusals_are_answered_with_a_reason() -> None:
    replies = Replies()
    d = CommandDispatcher(replies, clock=lambda: NOW)

    def fails(args: dict[str, Any]) -> dict[str, Any]:
        raise EdgeAgentError("camera busy")

    def crashes(args: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("oops")

    d.register("busy", fails)
    d.register("crash", crashes)
    d.handle(topics.command("s1", "nope"), encode(command()))
    d.handle(topics.command("s1", "busy"), encode(command()))
    d.handle(topics.command("s1", "crash"), encode(command()))
    late = command().model_copy(update={"expires_at": NOW - timedelta(seconds=1)})
    d.handle(topics.command("s1", "ping"), encode(late))
    assert d.handle(topics.command("s1", "ping"), b"{not json") is None
    errors = [r.error for r in replies.sent]
    assert errors == [
        "unknown command 'nope'",
        "camera busy",
        "internal error: KeyError",
        "command expired before it arrived",
    ]
    assert not any(r.ok for r in replies.sent)


def test_hold_replaces_by_ref_and_release_frees(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    replies = Replies()
    d = CommandDispatcher(replies, clock=lambda: NOW)
    register_evidence_commands(d, index)
    args = {"ref": "alert:1", "camera": "cam-1", "start": "2025-03-01T08:00:00Z"}
    d.handle(topics.command("s1", "hold"), encode(command(**args, end="2025-03-01T08:01:00Z")))
    d.handle(topics.command("s1", "hold"), encode(command(**args, end="2025-03-01T08:05:00Z")))
    (hold,) = index.active_holds("cam-1")
    assert hold.end - hold.start == 300 and hold.ref == "alert:1"
    d.handle(topics.command("s1", "hold"), encode(command(ref="x", camera="cam-1")))
    d.handle(topics.command("s1", "release"), encode(command(ref="alert:1")))
    assert index.active_holds() == []
    ok = [r.ok for r in replies.sent]
    assert ok == [True, True, False, True] and replies.sent[-1].result == {"released": 1}
    index.close()
