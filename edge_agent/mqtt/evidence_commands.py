"""The `hold` and `release` commands: central keeps an alert's recordings as evidence."""

from __future__ import annotations

from typing import Any, Protocol

from edge_agent.mqtt.commands import CommandDispatcher
from fsv_contract.commands import HOLD, RELEASE, HoldArgs, ReleaseArgs


class HoldIndex(Protocol):
    """The evidence-hold part of the segment index."""

    def add_hold(
        self, camera: str, start: float, end: float, reason: str, ref: str | None = None
    ) -> int:
        """Hold [start, end) of a camera; returns the hold id."""
        ...

    def release_holds_by_ref(self, ref: str) -> int:
        """Release the holds made for `ref`; returns how many."""
        ...


def register_evidence_commands(dispatcher: CommandDispatcher, index: HoldIndex) -> None:
    """Handle `hold` (idempotent by ref: a new range replaces the old) and `release`."""

    def hold(args: dict[str, Any]) -> dict[str, Any]:
        a = HoldArgs.model_validate(args)  # a ValidationError is a ValueError: refused
        replaced = index.release_holds_by_ref(a.ref)
        hold_id = index.add_hold(
            a.camera, a.start.timestamp(), a.end.timestamp(), a.reason or "held by central", a.ref
        )
        return {"hold_id": hold_id, "replaced": replaced}

    def release(args: dict[str, Any]) -> dict[str, Any]:
        a = ReleaseArgs.model_validate(args)
        return {"released": index.release_holds_by_ref(a.ref)}

    dispatcher.register(HOLD, hold)
    dispatcher.register(RELEASE, release)
