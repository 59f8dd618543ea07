"""paho-mqtt set-up both programs share: TLS towards the broker and a lasting MQTT v5 session."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class TlsFiles(Protocol):
    """A TLS config section: the broker's CA (None: the system CAs) and a client certificate."""

    @property
    def ca_file(self) -> Path | None: ...
    @property
    def cert_file(self) -> Path | None: ...
    @property
    def key_file(self) -> Path | None: ...


def set_tls(client: mqtt.Client, tls: TlsFiles) -> None:
    """TLS towards the broker, whose certificate is always verified."""
    client.tls_set(
        ca_certs=str(tls.ca_file) if tls.ca_file else None,
        certfile=str(tls.cert_file) if tls.cert_file else None,
        keyfile=str(tls.key_file) if tls.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )


def connect_in_background(
    client: mqtt.Client, host: str, port: int, keepalive_s: int, session_expiry_s: int
) -> None:
    """Connect (a broker that is down is retried) with a session the broker keeps for
    `session_expiry_s` across disconnects, and start paho's network thread."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    client.connect_async(host, port, keepalive=keepalive_s, clean_start=False, properties=props)
    client.loop_start()
