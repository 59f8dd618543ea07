"""Central's MQTT connection (paho 2.x, MQTT 5): persistent session, manual acks, commands."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.config import MqttConfig
from central.ingest.accounts import node_username
from fsv_common.mqtt import connect_in_background, set_tls
from fsv_contract import topics

log = logging.getLogger(__name__)

# The shared subscription group of central's nodes (the live lane's: SHARE_GROUP-live).
SHARE_GROUP = "central"


@dataclass(frozen=True)
class RawMessage:
    """A message as paho delivered it; `mid`/`qos` are what `ack()` needs."""

    topic: str
    payload: bytes
    received_at: float
    mid: int = 0
    qos: int = 0
    retain: bool = False
    live: bool = False  # delivered on central's live-lane connection (acked there)


class BrokerClient:
    """Subscribes to every site with QoS 1 and hands each message to `deliver` (on paho's
    thread, so `deliver` must only queue).

    Messages are acknowledged with `ack()` only after they are committed to the database
    (paho's manual ack), so a crash between delivery and commit makes the broker deliver
    them again: together with the dedupe by event id, nothing is lost and nothing doubled.
    The subscription is made in `on_connect`, so every reconnect restores it.

    With `live=True` it is central's live-lane connection: its own account and session
    (`{username}.live`), subscribed only to the events' live lane, so a live alert does not
    queue at the broker behind whatever the main session still has to deliver.

    With `node` (several central nodes) both connections read through MQTT 5 shared
    subscriptions (`$share/central/...`, `$share/central-live/...`): the broker hands each
    message to one node of the group. Each node logs in with its own account
    (`{username}@{node}`, `{username}@{node}.live`) and keeps its own persistent session
    (`{client_id}-{node}`, or the account's name where the broker makes every client id the
    user name, as the shipped policy does): what the broker gave a node that went down (in
    flight or queued since) waits in that session until the node is back under the same
    `node`. Retained messages are not sent to a shared subscription when it is made (MQTT 5).
    """

    def __init__(
        self,
        config: MqttConfig,
        password: str,
        deliver: Callable[[RawMessage], None],
        live: bool = False,
        node: str | None = None,
    ) -> None:
        self.config = config
        self.live = live
        self.connected = threading.Event()
        self._deliver = deliver
        filters: tuple[str, ...] = topics.CENTRAL_LIVE_FILTERS if live else topics.CENTRAL_FILTERS
        suffix = ".live" if live else ""
        client_id, username = config.client_id, config.username
        if node is not None:
            group = SHARE_GROUP + ("-live" if live else "")
            filters = tuple(f"$share/{group}/{f}" for f in filters)
            client_id = f"{client_id}-{node}"
            username = node_username(username, node)
        self._filters = filters
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id + suffix,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.username_pw_set(username + suffix, password)
        if config.tls is not None:
            set_tls(self._client, config.tls)
        self._client.reconnect_delay_set(1, int(config.reconnect_max_s))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried) and start paho."""
        c = self.config
        connect_in_background(self._client, c.host, c.port, c.keepalive_s, c.session_expiry_s)

    def stop(self) -> None:
        """Disconnect and stop paho's thread; unacked messages are redelivered next time."""
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a delivered message (thread-safe: paho queues the packet)."""
        if qos > 0:
            self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        """Publish a command (paho queues it while disconnected)."""
        return self._client.publish(topic, payload, qos=qos, retain=False)

    # --- paho callbacks (paho's thread: never block) ----------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        lane = "live-lane" if self.live else "main"
        if reason_code.is_failure:
            log.error("broker refused central's %s connection: %s", lane, reason_code)
            return
        log.info(
            "%s connection to %s:%d (session kept: %s)",
            lane,
            self.config.host,
            self.config.port,
            flags.session_present,
        )
        client.subscribe([(f, 1) for f in self._filters])
        self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self.connected.is_set():
            log.warning("disconnected from the broker: %s", reason_code)
        self.connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "<topic is not UTF-8>"  # rejected and counted like any bad message
        raw = RawMessage(
            topic=topic,
            payload=bytes(msg.payload),
            received_at=time.time(),
            mid=msg.mid,
            qos=msg.qos,
            retain=bool(msg.retain),
            live=self.live,
        )
        self._deliver(raw)
