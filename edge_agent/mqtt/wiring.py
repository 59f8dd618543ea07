"""Builds the agent's MQTT parts from its config: outbox, link, publisher, and their helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent import __version__
from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.mqtt.camera_states import CameraStateReporter
from edge_agent.mqtt.commands import CommandDispatcher
from edge_agent.mqtt.evidence_commands import HoldIndex, register_evidence_commands
from edge_agent.mqtt.heartbeat import HeartbeatPublisher, StorageFigures
from edge_agent.mqtt.link import MqttLink
from edge_agent.mqtt.outbox import Outbox, OutboxLimits
from edge_agent.mqtt.publisher import OutboxPublisher
from edge_agent.mqtt.retention_alerts import retention_alert_sink
from edge_agent.mqtt.uploader import MediaUploader

log = logging.getLogger(__name__)


class Part(Protocol):
    """A component of the agent (see edge_agent.app.Component)."""

    name: str

    def start(self) -> None:
        """Start its threads."""

    def stop(self) -> None:
        """Stop its threads."""


class Recorder(Protocol):
    """A camera recorder as the MQTT parts see it."""

    def status(self) -> Any:
        """A RecorderStatus snapshot."""


class Cleaner(Protocol):
    """The retention cleaner as the MQTT parts see it."""

    on_alert: Any

    def status(self) -> StorageFigures | None:
        """The last storage forecast."""


@dataclass
class MqttParts:
    """The outbox (the detectors' EventSink) and the components, in start order."""

    outbox: Outbox
    link: MqttLink
    publisher: OutboxPublisher
    commands: CommandDispatcher
    heartbeat: HeartbeatPublisher
    components: list[Part] = field(default_factory=list)

    def close(self) -> None:
        """Close the outbox database (after every component stopped)."""
        self.outbox.close()


def build_mqtt(
    config: EdgeConfig,
    credentials: CredentialStore,
    recorders: Sequence[Recorder],
    cleaner: Cleaner | None,
    index: HoldIndex | None = None,
) -> MqttParts | None:
    """Everything that talks to central; None when the config has no `mqtt` section."""
    settings = config.mqtt
    if settings is None:
        return None
    login = credentials.get(settings.credential)
    if login.username != config.site_id:
        log.warning(
            "MQTT user %r is not the site id %r: the broker ACL will refuse its messages",
            login.username,
            config.site_id,
        )
    limits = OutboxLimits(settings.outbox.max_messages, settings.outbox.max_age_days * 86400)
    outbox = Outbox(config.state_dir / "outbox.db", config.site_id, limits)
    link = MqttLink(settings, config.site_id, login, __version__)
    publisher = OutboxPublisher(
        outbox, link, settings.outbox.inflight, settings.outbox.resend_after_s
    )
    commands = CommandDispatcher(outbox)
    link.on_command = commands.receive
    if index is not None:
        register_evidence_commands(commands, index)
    statuses: Callable[[], list[Any]] = lambda: [r.status() for r in recorders]  # noqa: E731
    heartbeat = HeartbeatPublisher(
        link,
        config.site_id,
        config.storage.path,
        settings.heartbeat_interval_s,
        cameras=statuses,
        storage=cleaner.status if cleaner is not None else lambda: None,
        pending=lambda: (outbox.count(), outbox.media.pending_count()),
    )
    identities = {c.id: (c.name, c.station) for c in config.cameras}
    reporter = CameraStateReporter(outbox, statuses, identities=identities)
    parts = MqttParts(outbox, link, publisher, commands, heartbeat)
    # Start order; the agent stops them in reverse, so the publisher can still flush the
    # cameras' last states and the link says `offline` last.
    parts.components = [commands, link, publisher, reporter, heartbeat]
    if config.central_url:
        uploader = MediaUploader(outbox.media, config.central_url, login, settings.upload)
        outbox.add_listener(uploader.wake)
        parts.components.append(uploader)
    if cleaner is not None:
        stations = {cam.id: cam.station for cam in config.cameras}
        cleaner.on_alert = retention_alert_sink(outbox, config.site_id, stations)
    return parts
