"""Commands from central (`cmd/{verb}`): checked, run on a worker thread, answered by reply."""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from edge_agent.errors import EdgeAgentError
from fsv_contract.codec import decode
from fsv_contract.errors import ContractError
from fsv_contract.payloads import CommandPayload, ReplyPayload

log = logging.getLogger(__name__)

CommandHandler = Callable[[dict[str, Any]], dict[str, Any]]
REMEMBERED = 1000  # request ids kept to drop QoS 1 redeliveries


class ReplySink(Protocol):
    """Where replies go (the outbox)."""

    def put_reply(self, payload: ReplyPayload) -> None:
        """Store a reply for delivery to central."""
        ...


class CommandDispatcher:
    """Runs each command's handler once, in arrival order, on thread `mqtt-commands`.

    A handler takes the command's `args` and returns the reply's `result`; it raises
    EdgeAgentError (or ValueError) for a refusal whose message central may show. Expired
    commands and unknown verbs are answered with an error, never run.
    """

    name = "mqtt-commands"

    def __init__(self, sink: ReplySink, clock: Callable[[], datetime] | None = None) -> None:
        self.sink = sink
        self._clock = clock or (lambda: datetime.now(UTC))
        self._handlers: dict[str, CommandHandler] = {}
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=10_000)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.register("ping", lambda args: {"pong": True, "echo": args.get("echo")})

    def register(self, verb: str, handler: CommandHandler) -> None:
        """Handle `verb` with `handler` (a later registration replaces an earlier one)."""
        self._handlers[verb] = handler

    def receive(self, topic: str, payload: bytes) -> None:
        """Called on paho's thread: queue and return at once."""
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            log.error("command queue full; dropping a command on %s", topic)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the command in hand and stop."""
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def _loop(self) -> None:
        while (item := self._inbox.get()) is not None:
            try:
                self.handle(*item)
            except Exception:  # noqa: BLE001 - one bad command must not stop the others
                log.exception("command on %s failed", item[0])

    def handle(self, topic: str, data: bytes) -> ReplyPayload | None:
        """Check and run one command; returns the reply put in the outbox (None if none)."""
        try:
            message = decode(topic, data)
        except ContractError as e:
            log.warning("ignoring malformed command on %s: %s", topic[:200], e)
            return None
        command = message.payload
        verb = message.topic.verb
        if not isinstance(command, CommandPayload) or verb is None:
            return None
        rid = str(command.request_id)
        if rid in self._seen:
            return None
        self._remember(rid)
        reply = self._run(verb, command)
        self.sink.put_reply(reply)
        return reply

    def _remember(self, request_id: str) -> None:
        self._seen[request_id] = None
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    def _run(self, verb: str, command: CommandPayload) -> ReplyPayload:
        if command.expires_at is not None and command.expires_at < self._clock():
            return self._reply(command, verb, error="command expired before it arrived")
        handler = self._handlers.get(verb)
        if handler is None:
            return self._reply(command, verb, error=f"unknown command {verb!r}")
        try:
            return self._reply(command, verb, result=handler(dict(command.args)))
        except (EdgeAgentError, ValueError) as e:
            return self._reply(command, verb, error=str(e)[:500])
        except Exception as e:  # noqa: BLE001 - answer central instead of leaving it waiting
            log.exception("handler of %s failed", verb)
            return self._reply(command, verb, error=f"internal error: {type(e).__name__}")

    def _reply(
        self,
        command: CommandPayload,
        verb: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> ReplyPayload:
        return ReplyPayload(
            request_id=command.request_id,
            verb=verb,
            ok=error is None,
            result=result or {},
            error=error,
            finished_at=self._clock(),
        )
