"""The agent's one MQTT connection (paho 2.x, MQTT 5): availability, publishing, commands."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.credentials import Credential
from edge_agent.mqtt.settings import MqttConfig
from fsv_common.mqtt import connect_in_background, set_tls
from fsv_contract import topics
from fsv_contract.codec import encode
from fsv_contract.payloads import AgentStatePayload, utc_now

log = logging.getLogger(__name__)

AckCallback = Callable[[int, bool, str], None]  # (mid, accepted, reason)
CommandCallback = Callable[[str, bytes], None]  # (topic, payload)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class MqttLink:
    """Connects out to the broker with a persistent session and keeps reconnecting.

    paho runs its network loop in its own thread; the callbacks here never block: acks and
    commands are handed to the publisher and the command handler through their callbacks,
    which only queue. On connect it publishes the retained `online` state (the last will
    says `offline`) and subscribes to the site's commands, so a reconnect restores both.
    """

    name = "mqtt-link"

    def __init__(
        self,
        settings: MqttConfig,
        site: str,
        credential: Credential,
        version: str,
        started_at: datetime | None = None,
    ) -> None:
        self.settings = settings
        self.site = topics.check_level(site, "site")
        self.version = version
        self.started_at = started_at or utc_now()
        self.connected = threading.Event()
        self.on_ack: AckCallback | None = None
        self.on_command: CommandCallback | None = None
        # The uplink budget counts what goes out (class `control`: it never waits).
        self.on_sent: Callable[[int], None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._client = self._make_client(credential)

    def _make_client(self, credential: Credential) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-{self.site}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(credential.username, credential.password)
        if s.tls is not None:
            set_tls(client, s.tls)
        elif s.host not in LOOPBACK:
            log.warning("MQTT to %s without TLS: the site password travels in clear", s.host)
        client.will_set(
            topics.agent_state(self.site), self._state_payload("offline"), qos=1, retain=True
        )
        client.reconnect_delay_set(int(s.reconnect_min_s), int(s.reconnect_max_s))
        client.max_inflight_messages_set(s.outbox.inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _state_payload(self, state: Literal["online", "offline"]) -> bytes:
        return encode(
            AgentStatePayload(
                state=state,
                version=self.version,
                started_at=self.started_at,
                since=utc_now(),
            )
        )

    def add_connect_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from paho's thread; it must not block) after each connect."""
        self._listeners.append(callback)

    # --- component -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; a broker that is down now is retried."""
        s = self.settings
        connect_in_background(self._client, s.host, s.port, s.keepalive_s, s.session_expiry_s)

    def stop(self) -> None:
        """Say `offline` (retained) if connected, then disconnect and stop paho's thread."""
        if self.connected.is_set():
            info = self._client.publish(
                topics.agent_state(self.site), self._state_payload("offline"), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                log.warning("could not say offline before disconnecting")
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    # --- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand a message to paho; returns its message id, None if paho refused it."""
        if self.on_sent is not None:
            self.on_sent(len(topic) + len(payload))
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as e:
            log.error("paho refused a message for %s: %s", topic, e)
            return None
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return None
        return int(info.mid)

    def publish_now(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 0 if connected (heartbeats): nothing is queued while offline."""
        if not self.connected.is_set():
            return False
        if self.on_sent is not None:
            self.on_sent(len(topic) + len(payload))
        info = self._client.publish(topic, payload, qos=0, retain=False)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # --- paho callbacks (paho's thread: never block) ----------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        log.info(
            "connected to %s:%d (session kept: %s)",
            self.settings.host,
            self.settings.port,
            flags.session_present,
        )
        client.publish(
            topics.agent_state(self.site), self._state_payload("online"), qos=1, retain=True
        )
        client.subscribe(topics.command_filter(self.site), qos=1)
        self.connected.set()
        for listener in self._listeners:
            listener()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was:
            log.warning("disconnected from the broker: %s", reason_code)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self.on_ack is not None:
            self.on_ack(mid, not reason_code.is_failure, str(reason_code))

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.on_command is not None:
            self.on_command(msg.topic, bytes(msg.payload))
