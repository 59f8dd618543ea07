"""Renders docs/mqtt.md from the contract itself: `python -m fsv_contract.docs > docs/mqtt.md`."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from fsv_contract import commands, live, topics
from fsv_contract.codec import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES
from fsv_contract.integrity import AnchorPayload
from fsv_contract.payloads import (
    CONTRACT_VERSION,
    KNOWN_KINDS,
    AgentStatePayload,
    CameraStatePayload,
    CommandPayload,
    EventPayload,
    HeartbeatPayload,
    ReplyPayload,
)

_ROOT = f"{topics.ROOT}/{{site}}"
TOPICS: list[tuple[str, str, str, str, type[BaseModel]]] = [
    (f"{_ROOT}/agent/state", "edge → central", "1, retained; last will `offline`",
     "the link, on connect", AgentStatePayload),
    (f"{_ROOT}/agent/heartbeat", "edge → central", "0", "never queued", HeartbeatPayload),
    (f"{_ROOT}/camera/{{camera}}/state", "edge → central", "1, retained", "outbox",
     CameraStatePayload),
    (f"{_ROOT}/camera/{{camera}}/event", "edge → central", "1", "outbox", EventPayload),
    (f"{_ROOT}/camera/{{camera}}/live", "edge → central", "1",
     "outbox: a start sent within the live window", EventPayload),
    (f"{_ROOT}/agent/event", "edge → central", "1", 'outbox (camera `""`)', EventPayload),
    (f"{_ROOT}/agent/anchor", "edge → central", "1", "outbox, about once a minute",
     AnchorPayload),
    (f"{_ROOT}/cmd/{{verb}}", "central → edge", "1", "central's client", CommandPayload),
    (f"{_ROOT}/reply/{{request_id}}", "edge → central", "1", "outbox", ReplyPayload),
]  # fmt: skip

_CENTRAL_LIVE = (
    f"{live.CENTRAL_WINDOW_S:.0f} s before central's clock: the edge's "
    f"{live.SEND_WINDOW_S:.0f} s plus {live.CLOCK_SKEW_S:.0f} s"
)

INTRO = f"""\
# MQTT contract v{CONTRACT_VERSION}

Generated from `fsv_contract` (`python -m fsv_contract.docs > docs/mqtt.md`); a test fails
when this file and the code disagree. Both programs import the same models, so the edge
cannot send what central would refuse.

## Rules

- Topic root `{topics.ROOT}/{{site}}/...`; every level (site, camera, verb, request id)
  matches `{topics.LEVEL.pattern}`. A site's broker user name is its site id, and the
  broker ACL (configs/mosquitto/acl) lets it publish only under its own root and read only
  its own commands.
- Payloads are JSON objects of at most {MAX_PAYLOAD_BYTES} bytes, nested at most
  {MAX_JSON_DEPTH} levels. Every payload carries `v` (now {CONTRACT_VERSION}). Readers
  ignore unknown fields and reject missing or mistyped ones; central counts and logs each
  rejection with topic and reason (`GET /api/v1/ingest/stats`, table `ingest_rejects`).
- A payload names the same site (and camera, request id) as its topic, or it is rejected.
- Times are ISO 8601 with a zone, sent in UTC (`...Z`); a time without a zone is rejected.
- Versioning: adding an optional field keeps `v`; a change old readers would misread bumps
  `v`; a change old readers must not see at all moves to the root `fsv/v2`.
- Events: one `event_id` (UUID) per event. It is published at `phase: start` (so the alert
  is pushed at once) and again at `phase: end` with `end` and the clip. Central keeps one
  row per event id and applies the end once; a duplicate of either phase changes nothing.
  While the event runs, the edge may send `phase: start` once more with `first_clip`
  (pre-roll plus the first seconds); central adds it to the alert once.
  Instant events (retention, outbox overflow) are sent once, already at `end`.
- Live lane: an event's `phase: start` message that leaves the edge at most
  {live.SEND_WINDOW_S:.0f} s after the event's `start` goes on `camera/{{camera}}/live`
  instead of `camera/{{camera}}/event` (same payload). Central reads the live lane on a
  connection of its own, so an alert happening now never waits behind a backlog another site
  is flushing; its main subscription also carries the lane, and the dedupe by event id keeps
  one copy. A broker that refuses the live topic (an ACL from before the lane) makes the
  edge send the message on `camera/{{camera}}/event` and stop using the lane until restart.
  Central takes an event as live (written and alerted before a backlog) when it started at
  most {_CENTRAL_LIVE} for an edge
  clock running behind (both windows: `fsv_contract/live.py`).
- Delivery: what goes "through the outbox" is written to the edge's SQLite outbox first
  and deleted only after the broker's PUBACK; central writes a batch to its database and
  only then acknowledges it (MQTT 5 manual ack, persistent sessions on both sides).
  At-least-once delivery plus the dedupe by event id is exactly-once for users.
- Media (snapshots, clips) never travel over MQTT: the edge PUTs them to
  `{{central_url}}/api/v1/media/{{event_id}}/{{name}}` with HTTP Basic (the site's broker
  login) and `X-Content-SHA256`; central accepts only the name, size and SHA-256 that the
  event announced, and a repeated PUT of the same bytes is a no-op.
- Evidence is write-once: the first hash announced for a media name of an event is final.
  A later phase that announces the same name with another hash keeps the first (the change
  is refused, counted as `evidence_refused` and written to the audit log), and a PUT of
  other bytes over a stored file is refused (409). An event belongs to the site that
  opened it: another site's message with the same `event_id` is refused the same way.
- Anchors: about once a minute the edge sends the chain link of every segment sealed since
  the last anchor (and the tombstones of segments it deleted) on `agent/anchor`. Central
  keeps each camera's chain: a link that does not follow the last one anchored, a segment
  sent again with other facts, or a deletion before the retention date without a reason
  opens a critical `footage_tampered` alert. The `audit` command asks the edge to hash
  named segments as they are on disk now (reply `result.proofs`, one `AuditProof` each).
- Uplink: everything the edge sends to central shares one budget per site (edge config
  `uplink.budget_bytes_per_s`) in strict priority: `live` (live and replay someone watches)
  > `control` (MQTT commands, events) > `evidence` (alert media, exports) > `archive` >
  `bulk`. Archive transfer pauses while anything is watched. The heartbeat's optional
  `uplink` reports the budget, each class's use and backlog, and the live streams' rates,
  which central uses to refuse a view the line cannot carry.
- City archive: the edge asks `GET {{central_url}}/api/v1/archive/wants?limit=N` (HTTP
  Basic, the site's broker login) which anchored segments central's archive still wants
  under the site's policy, oldest first, each with `have_bytes` already held; it sends each
  with `PUT /api/v1/archive/segments/{{camera}}/{{path}}`, `X-Content-SHA256` (the anchored
  hash) and `X-Offset` (= `have_bytes`). Answers: 201 stored, 200 already held (idempotent),
  202 more bytes expected (`X-Have-Bytes`), 409 not anchored yet, 416 resume at
  `X-Have-Bytes`, 422 the hash differs from the anchored chain (refused, never asked again,
  a `footage_tampered` finding).
- Sub lanes: while a camera's sub stream is recorded (lane `<camera>--sub`, its `record_sub`
  or the site's archive policy `sub`), the heartbeat's optional `cameras[].sub` gives that
  recorder's state, fps, bitrate, last segment end and, while offline, why (`reason`); it
  is absent while the sub stream is not recorded.

- Models: `install_model` tells a site to install a version of central's model registry
  (`InstallModelArgs`: name, version, SHA-256, size, class names by index, class map (model
  class -> rule label, `null` drops it), decoder `backend` (`onnx`, `nanodet`,
  `ultralytics`, as the edge's `detection.backend`), central's Ed25519 signature). The
  signature covers `fsv-model-v2` bytes (name, version, hash, classes, class map, backend)
  when the version has a class map or another backend than `onnx`, else the `fsv-model-v1`
  bytes of versions registered before class maps (whose classes keep their own names).
  The edge downloads `GET {{central_url}}/api/v1/edge/model?name=..&version=..` (HTTP
  Basic, the site's broker login), checks size, hash and signature, loads the model with
  that backend and class map (the registry's names win over names in the file), runs it
  beside the running model on up to three recent recorded frames, and only then switches.
  It refuses a model that raises, returns malformed boxes or scores, or can produce none of
  the labels the camera's rules watch; the reply's `result.smoke` compares both models per
  camera (boxes per label, how many agree, `agreement`). On any failure the running model
  stays and the reply's `error` says why. `rollback_model`
  restores each camera's previous model. The heartbeat's optional `cameras[].model` names
  the model each camera runs (`name@version`), and every violation event names the model
  that raised it (`model`, the same form), so each alert can be traced to one version.
- Shadow mode: `install_model` with `shadow: true` verifies and smoke-tests the version the
  same way but runs it beside the current model on the same frames, raising nothing; the
  heartbeat's optional `shadow` reports, per camera and UTC day, how many boxes of each
  class both found (IoU >= 0.5) or only one found. `rollback_model` with `shadow: true`
  stops it. A shadow model is restored after the agent restarts (its file checked against
  the signed hash again); the day's counts start again from zero.
- Sample frames (answered off the edge's command thread, so the commands behind it are
  answered meanwhile): `sample_frames` asks for N frames of a camera's recordings (at the
  `times` central chose around events, or at random instants) for labelling; the reply's
  `result.frames` announces each `sample-NNN.jpg` with its SHA-256 and time, and the edge
  then PUTs them to `/api/v1/media/{{batch}}/{{name}}` under the same write-once rules.
- Clean frames: with its snapshot an event may announce `frame` (`frame.jpg`), the same
  frame without boxes, zones or stamps, uploaded and kept write-once like the snapshot; it
  is what inspectors label and what training datasets are built from.

Known event kinds: {", ".join(f"`{k}`" for k in KNOWN_KINDS)}, and the retention kinds
`eviction_below_duty`, `space_unrecoverable`, `retention_ok`, `delete_failed`,
`cleanup_failed` (`kind` stays an open string).
"""


def _topic_table() -> str:
    lines = ["| topic | direction | QoS / retain | sent via | payload |", "|---|---|---|---|---|"]
    for topic, way, qos, via, model in TOPICS:
        lines.append(f"| `{topic}` | {way} | {qos} | {via} | `{model.__name__}` |")
    return "\n".join(lines)


def _schema(model: type[BaseModel]) -> str:
    schema: dict[str, Any] = model.model_json_schema(mode="serialization")
    return "```json\n" + json.dumps(schema, indent=2, sort_keys=True) + "\n```"


def render() -> str:
    """The whole document."""
    parts = [INTRO, "## Topics\n", _topic_table(), "\n## Payloads\n"]
    seen: set[str] = set()
    for *_, model in TOPICS:
        if model.__name__ in seen:
            continue
        seen.add(model.__name__)
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts.append(f"### {model.__name__}\n\n{doc}\n\n{_schema(model)}\n")
    parts.append("## Command arguments\n")
    for verb, model in sorted(commands.COMMAND_ARGS.items()):
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts.append(f"### `{verb}`: {model.__name__}\n\n{doc}\n\n{_schema(model)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
