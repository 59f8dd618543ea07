"""Builds the uplink service from the config and registers its MQTT commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.service import UplinkService
from edge_agent.uplink.tap import TapRegistry
from fsv_contract.video import VERB_EXPORT, VERB_RECORDINGS, VERB_STREAM_START, VERB_STREAM_STOP


class Dispatcher(Protocol):
    """The MQTT command dispatcher (edge_agent.mqtt.commands)."""

    def register(self, verb: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Handle a verb."""


def uplink_enabled(config: EdgeConfig, commands: Dispatcher | None) -> bool:
    """Whether there is anything to serve: commands from central and a `central_url`."""
    return commands is not None and bool(config.central_url)


def build_uplink(
    config: EdgeConfig,
    index: SegmentIndex,
    taps: TapRegistry,
    commands: Dispatcher | None,
) -> UplinkService | None:
    """The service over the agent's live taps (edge_agent.uplink.streams), its commands
    registered; None when the uplink is not enabled."""
    if commands is None or not uplink_enabled(config, commands):
        return None
    service = UplinkService(config, index, taps)
    commands.register(VERB_STREAM_START, service.stream_start)
    commands.register(VERB_STREAM_STOP, service.stream_stop)
    commands.register(VERB_RECORDINGS, service.recordings)
    commands.register(VERB_EXPORT, service.export_clip)
    return service
