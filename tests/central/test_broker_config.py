"""The shipped broker config starts on the installed mosquitto and exposes only its TLS port."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from testbed.ports import LOOPBACK
from testbed.shipped_broker import (
    DEPLOYMENT_KEYS,
    ShippedBroker,
    changed_keys,
    listeners_of,
)

# MQTT 3.1.1 CONNECT, client id "probe", no credentials.
CONNECT = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 5]) + b"probe"


def mqtt_answer(host: str, port: int) -> bytes:
    """What a broker says to a plaintext CONNECT (b"" if it says nothing or hangs up)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(CONNECT)
        sock.settimeout(3)
        try:
            return sock.recv(4)
        except (TimeoutError, ConnectionError):
            return b""


def external_addresses() -> list[str]:
    """This host's IPv4 addresses other than the loopback."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout
    return [a for a in out.split() if "." in a and not a.startswith("127.")]


@pytest.fixture(scope="module")
def shipped() -> Iterator[ShippedBroker]:
    with ShippedBroker() as broker:
        yield broker


def test_only_ports_and_paths_are_rewritten(shipped: ShippedBroker) -> None:
    keys = changed_keys(shipped.shipped_text, shipped.rewritten)
    assert keys <= set(DEPLOYMENT_KEYS)
    assert "listener" in keys


def test_starts_with_loopback_plaintext_and_tls_only(shipped: ShippedBroker) -> None:
    assert shipped.proc is not None and shipped.proc.poll() is None, shipped.log()
    found = listeners_of(shipped.proc.pid)
    assert found, "ss shows no listening socket of the broker"
    plaintext = [s for s in found if s.port != shipped.tls_port]
    # The plaintext listener is on the loopback and nowhere else (no hidden 0.0.0.0:1883).
    assert plaintext and all(s.loopback and s.port == shipped.plain_port for s in plaintext)
    assert {s.port for s in found} == {shipped.tls_port, shipped.plain_port}
    assert "Address already in use" not in shipped.log()


def test_plaintext_mqtt_answers_only_on_the_loopback(shipped: ShippedBroker) -> None:
    # The loopback listener speaks MQTT (and refuses an anonymous client: CONNACK rc 5).
    assert mqtt_answer(LOOPBACK, shipped.plain_port) == bytes([0x20, 2, 0, 5])
    # The TLS listener never answers a plaintext CONNECT.
    assert mqtt_answer(LOOPBACK, shipped.tls_port) == b""
    for address in external_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, shipped.plain_port), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, 1883), timeout=5).close()
