"""The MQTT contract shared by the edge agent and central: topics, payload models, codec."""

from fsv_contract.codec import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, Message, decode, encode
from fsv_contract.errors import ContractError, InvalidPayload, InvalidTopic
from fsv_contract.payloads import (
    CONTRACT_VERSION,
    AgentStatePayload,
    Box,
    CameraDetectionStatus,
    CameraStatePayload,
    CameraStats,
    CommandPayload,
    EventPayload,
    HeartbeatPayload,
    MediaRef,
    Payload,
    ReplyPayload,
    RuleStatus,
)
from fsv_contract.topics import TopicInfo, TopicKind

__all__ = [
    "CONTRACT_VERSION",
    "MAX_JSON_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "AgentStatePayload",
    "Box",
    "CameraDetectionStatus",
    "CameraStatePayload",
    "CameraStats",
    "CommandPayload",
    "ContractError",
    "EventPayload",
    "HeartbeatPayload",
    "InvalidPayload",
    "InvalidTopic",
    "MediaRef",
    "Message",
    "Payload",
    "ReplyPayload",
    "RuleStatus",
    "TopicInfo",
    "TopicKind",
    "decode",
    "encode",
]
