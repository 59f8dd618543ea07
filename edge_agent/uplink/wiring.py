"""Builds the uplink service and budget from the config and registers its MQTT commands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.archive import ArchiveSender
from edge_agent.uplink.budget import TrafficClass
from edge_agent.uplink.scheduler import BudgetedReader, UplinkScheduler
from edge_agent.uplink.service import UplinkService
from edge_agent.uplink.tap import TapRegistry
from fsv_contract.video import (
    VERB_EXPORT,
    VERB_RECORDINGS,
    VERB_STREAM_START,
    VERB_STREAM_STOP,
    VERB_THUMBNAIL,
)

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """The MQTT command dispatcher (edge_agent.mqtt.commands)."""

    def register(self, verb: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Handle a verb."""


def uplink_enabled(config: EdgeConfig, commands: Dispatcher | None) -> bool:
    """Whether there is anything to serve: commands from central and a `central_url`."""
    return commands is not None and bool(config.central_url)


def build_scheduler(config: EdgeConfig, taps: TapRegistry) -> UplinkScheduler:
    """The site's one uplink budget; the heartbeat reads the live streams' rates from `taps`."""
    settings = config.uplink
    scheduler = UplinkScheduler(settings.budget_bytes_per_s, settings.burst_s)
    scheduler.stream_rates = lambda: [(t.camera, t.stream, t.bitrate_bps()) for t in taps.all()]
    return scheduler


def build_uplink(
    config: EdgeConfig,
    index: SegmentIndex,
    taps: TapRegistry,
    commands: Dispatcher | None,
    scheduler: UplinkScheduler | None = None,
) -> UplinkService | None:
    """The service over the agent's live taps (edge_agent.uplink.streams), its commands
    registered; None when the uplink is not enabled."""
    if commands is None or not uplink_enabled(config, commands):
        return None
    service = UplinkService(config, index, taps, scheduler)
    commands.register(VERB_STREAM_START, service.stream_start)
    commands.register(VERB_STREAM_STOP, service.stream_stop)
    commands.register(VERB_RECORDINGS, service.recordings)
    commands.register(VERB_EXPORT, service.export_clip)
    commands.register(VERB_THUMBNAIL, service.thumbnail)
    return service


class MqttSide(Protocol):
    """What of the MQTT parts the budget hooks into (edge_agent.mqtt.wiring.MqttParts)."""

    link: Any
    heartbeat: Any
    components: list[Any]


def attach_budget(mqtt: MqttSide, scheduler: UplinkScheduler, upload_timeout_s: float) -> None:
    """Put MQTT (class control, counted), media uploads (class evidence, waiting) and the
    heartbeat's `uplink` figures on the budget."""
    from edge_agent.mqtt.uploader import MediaUploader

    mqtt.link.on_sent = lambda n: scheduler.charge(TrafficClass.CONTROL, n)
    mqtt.heartbeat.uplink_stats = scheduler.stats
    for part in mqtt.components:
        if isinstance(part, MediaUploader):

            def budget(f: BinaryIO) -> BudgetedReader:
                return BudgetedReader(f, scheduler, TrafficClass.EVIDENCE, upload_timeout_s)

            part.budget = budget


def build_archive_sender(
    config: EdgeConfig,
    credentials: CredentialStore,
    index: SegmentIndex,
    scheduler: UplinkScheduler,
) -> ArchiveSender | None:
    """The archive transfer (edge_agent.uplink.archive), or None without central or MQTT
    credentials, or when `uplink.archive.enabled` is off."""
    settings = config.uplink.archive
    if not settings.enabled or not config.central_url or config.mqtt is None:
        return None
    sender = ArchiveSender(
        settings,
        config.central_url,
        credentials.get(config.mqtt.credential),
        config.storage.path,
        index,
        scheduler,
        config.mqtt.upload.ca_file,
    )
    scheduler.archive_backlog_segments = lambda: sender.backlog
    sender.on_policy = lambda policy: keep_policy(config, policy)  # the agent hooks its own
    return sender


def keep_policy(config: EdgeConfig, policy: str) -> bool:
    """Keep the site's archive policy for the next start; True if it changed (the running
    agent starts or stops the sub lanes that follow it, EdgeAgent.policy_told)."""
    from edge_agent.recording.lanes import remember_policy

    if not remember_policy(config.state_dir, policy):
        return False
    unset = [c.id for c in config.cameras if c.sub_url and c.record_sub is None]
    if unset:
        log.info("central's archive policy for this site is now %r; the sub-stream recording "
                 "of %s follows it", policy, ", ".join(unset))  # fmt: skip
    return True
