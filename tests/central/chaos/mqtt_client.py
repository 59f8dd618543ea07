"""A plain paho MQTT 5 client for tests that act as a (misbehaving) site."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


class TestClient:
    """Connects as one user and records connect, publish, subscribe and message outcomes."""

    __test__ = False  # not a pytest class

    def __init__(self, port: int, username: str, password: str, client_id: str = "") -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(200)
        self.connect_result: ReasonCode | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.disconnects = 0
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> TestClient:
        """Connect and start paho's thread; wait for the broker's answer."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        self.answered.wait(10)
        return self

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Publish; returns the message id."""
        return int(self.client.publish(topic, payload, qos=qos).mid)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connect_result = rc
        if not rc.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _rc: ReasonCode, _p: Any) -> None:
        self.disconnects += 1
        self.connected.clear()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.acks[mid] = rc

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        with self._lock:
            self.subacks[mid] = rcs

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))
