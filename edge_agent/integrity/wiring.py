"""Builds the integrity parts from the config: the anchor sender and the `audit` command."""

from __future__ import annotations

from edge_agent.config import EdgeConfig
from edge_agent.integrity.anchor import AnchorSender
from edge_agent.integrity.audit import audit_handler
from edge_agent.mqtt.commands import CommandDispatcher
from edge_agent.mqtt.outbox import Outbox
from edge_agent.recording.index import SegmentIndex
from edge_agent.retention.planner import retention_by_camera
from fsv_contract.integrity import VERB_AUDIT


def build_integrity(
    config: EdgeConfig, index: SegmentIndex, outbox: Outbox, commands: CommandDispatcher
) -> AnchorSender | None:
    """Register `audit` and return the anchor sender (None without an `mqtt` section)."""
    if config.mqtt is None:
        return None
    commands.register(VERB_AUDIT, audit_handler(index, config.storage.path))
    retention = retention_by_camera(config)  # a recorded sub lane has its camera's duty
    return AnchorSender(index, outbox, retention, config.mqtt.anchor_interval_s)
