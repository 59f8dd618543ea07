"""Topic builders and the topic parser of contract v1 (root `fsv/v1/{site}/...`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from fsv_contract.errors import InvalidTopic

ROOT = "fsv/v1"

# One topic level: a site id, camera id, command verb or request id (UUIDs are lower-case
# hex with dashes, so they match too). The edge config's ids follow the same pattern.
LEVEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class TopicKind(StrEnum):
    """What a topic carries; names the payload model that goes with it."""

    AGENT_STATE = "agent_state"
    HEARTBEAT = "heartbeat"
    AGENT_EVENT = "agent_event"
    ANCHOR = "anchor"
    CAMERA_STATE = "camera_state"
    EVENT = "event"
    COMMAND = "command"
    REPLY = "reply"


@dataclass(frozen=True)
class TopicInfo:
    """A parsed topic: its kind and the levels it names."""

    kind: TopicKind
    site: str
    camera: str | None = None
    verb: str | None = None
    request_id: str | None = None
    live: bool = False  # an event sent on the live lane (`camera/{id}/live`)


def check_level(value: str, what: str) -> str:
    """Return `value` if it is a valid topic level, else raise InvalidTopic naming `what`."""
    if not LEVEL.match(value):
        raise InvalidTopic(
            f"{what} {value[:80]!r} is not a valid topic level "
            "(lower-case letters, digits, '_' and '-', at most 63, first a letter or digit)"
        )
    return value


def agent_state(site: str) -> str:
    """Retained availability of the agent (QoS 1); the last will publishes `offline` here."""
    return f"{ROOT}/{check_level(site, 'site')}/agent/state"


def heartbeat(site: str) -> str:
    """Periodic health of the agent (QoS 0, never queued)."""
    return f"{ROOT}/{check_level(site, 'site')}/agent/heartbeat"


def agent_event(site: str) -> str:
    """Events about the agent itself rather than one camera (QoS 1, through the outbox)."""
    return f"{ROOT}/{check_level(site, 'site')}/agent/event"


def anchor(site: str) -> str:
    """Chain links of sealed segments, batched (QoS 1, through the outbox)."""
    return f"{ROOT}/{check_level(site, 'site')}/agent/anchor"


def camera_state(site: str, camera: str) -> str:
    """Retained online/offline state of one camera (QoS 1, through the outbox)."""
    return f"{ROOT}/{check_level(site, 'site')}/camera/{check_level(camera, 'camera')}/state"


def camera_event(site: str, camera: str) -> str:
    """Violation events of one camera (QoS 1, through the outbox)."""
    return f"{ROOT}/{check_level(site, 'site')}/camera/{check_level(camera, 'camera')}/event"


def camera_live_event(site: str, camera: str) -> str:
    """The live lane of a camera's events (QoS 1): the same payload as `camera_event`, used for
    an event's `start` phase sent within `live.SEND_WINDOW_S` of its start. Central reads this lane
    on a connection of its own, so an alert happening now is not queued behind a backlog
    another site is flushing; the main subscription also carries it (central keeps one copy).
    """
    return f"{ROOT}/{check_level(site, 'site')}/camera/{check_level(camera, 'camera')}/live"


def live_lane_of(topic: str) -> str | None:
    """The live-lane topic for a camera event topic; None for any other topic."""
    head, sep, tail = topic.rpartition("/")
    if tail != "event" or "/camera/" not in head:
        return None
    return f"{head}{sep}live"


def event_topic(site: str, camera: str) -> str:
    """The topic of an event payload: the camera's, or the agent's when `camera` is empty."""
    return agent_event(site) if camera == "" else camera_event(site, camera)


def command(site: str, verb: str) -> str:
    """A command from central to one site (QoS 1)."""
    return f"{ROOT}/{check_level(site, 'site')}/cmd/{check_level(verb, 'verb')}"


def reply(site: str, request_id: str) -> str:
    """The edge's answer to the command with this request id (QoS 1, through the outbox)."""
    return f"{ROOT}/{check_level(site, 'site')}/reply/{check_level(request_id, 'request id')}"


def command_filter(site: str) -> str:
    """What an edge subscribes to: every command for its site."""
    return f"{ROOT}/{check_level(site, 'site')}/cmd/+"


# What central subscribes to: everything the edges publish, not the commands it sends itself.
# The main subscription includes the live lane, so a live event is never lost when central's
# live connection is down; central's live connection reads only the live lane.
CENTRAL_FILTERS = (
    f"{ROOT}/+/agent/+",
    f"{ROOT}/+/camera/+/+",
    f"{ROOT}/+/reply/+",
)
CENTRAL_LIVE_FILTERS = (f"{ROOT}/+/camera/+/live",)


def parse(topic: str) -> TopicInfo:
    """Parse a contract topic; raise InvalidTopic if it is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT:
        raise InvalidTopic(f"topic {topic[:200]!r} is not under {ROOT}/{{site}}/")
    site = check_level(parts[2], "site")
    rest = parts[3:]
    match rest:
        case ["agent", "state"]:
            return TopicInfo(TopicKind.AGENT_STATE, site)
        case ["agent", "heartbeat"]:
            return TopicInfo(TopicKind.HEARTBEAT, site)
        case ["agent", "event"]:
            return TopicInfo(TopicKind.AGENT_EVENT, site)
        case ["agent", "anchor"]:
            return TopicInfo(TopicKind.ANCHOR, site)
        case ["camera", cam, "state"]:
            return TopicInfo(TopicKind.CAMERA_STATE, site, camera=check_level(cam, "camera"))
        case ["camera", cam, "event"]:
            return TopicInfo(TopicKind.EVENT, site, camera=check_level(cam, "camera"))
        case ["camera", cam, "live"]:
            return TopicInfo(TopicKind.EVENT, site, camera=check_level(cam, "camera"), live=True)
        case ["cmd", verb]:
            return TopicInfo(TopicKind.COMMAND, site, verb=check_level(verb, "verb"))
        case ["reply", rid]:
            return TopicInfo(TopicKind.REPLY, site, request_id=check_level(rid, "request id"))
    raise InvalidTopic(f"topic {topic[:200]!r} is not a contract topic")
