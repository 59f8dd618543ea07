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
    commands and unknown verbs are answered with an error, never run. Verbs registered as
    `background` (work of seconds: decoding sample frames) run in arrival order on thread
    `mqtt-commands-bg` instead, so the commands behind them (a live view, a ping) are
    answered meanwhile; their reply goes to the same sink when they finish.
    """

    name = "mqtt-commands"

    def __init__(self, sink: ReplySink, clock: Callable[[], datetime] | None = None) -> None:
        self.sink = sink
        self._clock = clock or (lambda: datetime.now(UTC))
        self._handlers: dict[str, CommandHandler] = {}
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=10_000)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._background: set[str] = set()
        self._slow: queue.Queue[tuple[str, CommandPayload] | None] = queue.Queue(maxsize=1000)
        self._slow_thread: threading.Thread | None = None
        self.register("ping", lambda args: {"pong": True, "echo": args.get("echo")})

    def register(self, verb: str, handler: CommandHandler, background: bool = False) -> None:
        """Handle `verb` with `handler` (a later registration replaces an earlier one);
        `background`: on the background thread, not in line with the other commands."""
        self._handlers[verb] = handler
        if background:
            self._background.add(verb)
        else:
            self._background.discard(verb)

    def receive(self, topic: str, payload: bytes) -> None:
        """Called on paho's thread: queue and return at once."""
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            log.error("command queue full; dropping a command on %s", topic)

    def start(self) -> None:
        """Start the worker threads."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        self._slow_thread = threading.Thread(
            target=self._slow_loop, name=f"{self.name}-bg", daemon=True
        )
        self._slow_thread.start()

    def stop(self) -> None:
        """Finish the commands in hand and stop."""
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        if self._slow_thread is not None:
            self._slow.put(None)
            self._slow_thread.join(timeout=10.0)
            self._slow_thread = None

    def _slow_loop(self) -> None:
        while (item := self._slow.get()) is not None:
            verb, command = item
            try:
                self.sink.put_reply(self._run(verb, command))
            except Exception:  # noqa: BLE001 - one bad command must not stop the others
                log.exception("command %s failed", verb)

    def _loop(self) -> None:
        while (item := self._inbox.get()) is not None:
            try:
                self.handle(*item)
            except Exception:  # noqa: BLE001 - one bad command must not stop the others
                log.exception("command on %s failed", item[0])

    def handle(self, topic: str, data: bytes) -> ReplyPayload | None:
        """Check and run one command; returns the reply put in the outbox (None if none, or
        if a background verb's reply comes later)."""
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
        if verb in self._background and self._slow_thread is not None:
            try:
                self._slow.put_nowait((verb, command))
                return None  # answered when it is done
            except queue.Full:
                reply = self._reply(command, verb, error="too many commands waiting; try later")
                self.sink.put_reply(reply)
                return reply
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
