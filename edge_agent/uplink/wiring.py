"""Builds the uplink parts from the config: live taps, sub-stream readers, the service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.events import PacketEvent
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.service import UplinkService
from edge_agent.uplink.sub_reader import SubStreamReader
from edge_agent.uplink.tap import LiveTap, TapRegistry
from fsv_contract.video import VERB_EXPORT, VERB_RECORDINGS, VERB_STREAM_START, VERB_STREAM_STOP


class Recorder(Protocol):
    """A camera recorder as the uplink sees it (edge_agent.recording.recorder)."""

    @property
    def camera(self) -> Any:
        """Its CameraConfig."""

    def add_packet_listener(self, callback: Callable[[PacketEvent], None]) -> None:
        """Receive every recorded packet."""


class Dispatcher(Protocol):
    """The MQTT command dispatcher (edge_agent.mqtt.commands)."""

    def register(self, verb: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Handle a verb."""


class Part(Protocol):
    """A component (edge_agent.app.Component)."""

    name: str

    def start(self) -> None:
        """Start."""

    def stop(self) -> None:
        """Stop."""


def build_uplink(
    config: EdgeConfig,
    credentials: CredentialStore,
    index: SegmentIndex,
    recorders: Sequence[Recorder],
    commands: Dispatcher | None,
) -> tuple[UplinkService | None, list[Part]]:
    """The service and its components in start order (readers first, the service last).

    Main streams come from the recorders' packets; sub streams from one reader each, which
    runs even while nobody watches so the GOP cache is always warm. Without commands from
    central or without `central_url` there is nothing to serve: (None, []).
    """
    if commands is None or not config.central_url:
        return None, []
    taps = TapRegistry()
    parts: list[Part] = []
    for recorder in recorders:
        tap = taps.add(LiveTap(recorder.camera.id, "main"))
        recorder.add_packet_listener(tap.publish)
    for cam in config.cameras:
        if cam.enabled and cam.sub_url:
            tap = taps.add(LiveTap(cam.id, "sub"))
            parts.append(SubStreamReader(cam, config.recorder, credentials, tap))
    service = UplinkService(config, index, taps)
    parts.append(service)
    commands.register(VERB_STREAM_START, service.stream_start)
    commands.register(VERB_STREAM_STOP, service.stream_stop)
    commands.register(VERB_RECORDINGS, service.recordings)
    commands.register(VERB_EXPORT, service.export_clip)
    return service, parts
