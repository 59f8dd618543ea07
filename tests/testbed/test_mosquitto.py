"""The Mosquitto test broker: QoS 1 delivery, persistent sessions across restarts, auth and ACLs."""

import queue
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from testbed.mosquitto import Broker

BrokerFactory = Callable[..., Broker]
Received = queue.Queue[mqtt.MQTTMessage]


@contextmanager
def connected(
    broker: Broker,
    client_id: str | None = None,
    subscribe: str | None = None,
    clean: bool = True,
    auth: tuple[str, str] | None = None,
) -> Iterator[tuple[mqtt.Client, Received]]:
    """A connected paho client (subscribed in on_connect) and the queue of what it receives."""
    received: Received = queue.Queue()
    ready: queue.Queue[ReasonCode] = queue.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex, clean_session=clean
    )
    if auth:
        client.username_pw_set(*auth)

    def on_connect(c: mqtt.Client, _u: object, _f: object, code: ReasonCode, _p: object) -> None:
        if subscribe and not code.is_failure:
            c.subscribe(subscribe, qos=1)
        else:
            ready.put(code)

    client.on_connect = on_connect
    client.on_subscribe = lambda _c, _u, _mid, codes, _p: ready.put(codes[0])
    client.on_message = lambda _c, _u, message: received.put(message)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        code = ready.get(timeout=5)
        assert not code.is_failure, f"connect/subscribe refused: {code}"
        yield client, received
    finally:
        client.disconnect()
        client.loop_stop()


def publish(
    broker: Broker, topic: str, payload: bytes, auth: tuple[str, str] | None = None
) -> None:
    """Publish one QoS 1 message and wait for the broker's PUBACK."""
    with connected(broker, auth=auth) as (client, _):
        client.publish(topic, payload, qos=1).wait_for_publish(5)


def test_qos1_roundtrip(mosquitto_broker: Broker) -> None:
    with connected(mosquitto_broker, subscribe="roundtrip/#") as (_, received):
        publish(mosquitto_broker, "roundtrip/a", b"hello")
        message = received.get(timeout=5)
    assert (message.topic, message.payload, message.qos) == ("roundtrip/a", b"hello", 1)


def test_restart_keeps_a_persistent_sessions_queued_message(
    mosquitto_broker_factory: BrokerFactory,
) -> None:
    broker = mosquitto_broker_factory()
    with connected(broker, "edge-1", subscribe="cmd/#", clean=False):
        pass
    publish(broker, "cmd/edge-1", b"while you were away")
    port = broker.port
    broker.stop()
    broker.start()
    assert broker.port == port
    with connected(broker, "edge-1", clean=False) as (_, received):
        message = received.get(timeout=5)
    assert (message.topic, message.payload, message.qos) == (
        "cmd/edge-1",
        b"while you were away",
        1,
    )


def test_password_and_acl_files(mosquitto_broker_factory: BrokerFactory, tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.touch()
    for user in ("site-a", "central"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, f"{user}-pw"], check=True)
    acl = tmp_path / "acl"
    acl.write_text("user site-a\ntopic write sites/site-a/#\n\nuser central\ntopic read sites/#\n")
    broker = mosquitto_broker_factory(allow_anonymous=False, password_file=passwords, acl_file=acl)
    site = ("site-a", "site-a-pw")
    with connected(broker, subscribe="sites/#", auth=("central", "central-pw")) as (_, received):
        publish(broker, "sites/site-b/events", b"forged", auth=site)
        publish(broker, "sites/site-a/events", b"genuine", auth=site)
        message = received.get(timeout=5)
        assert (message.topic, message.payload) == ("sites/site-a/events", b"genuine")
        assert received.empty()
    assert connack(broker, None).is_failure
    assert connack(broker, ("site-a", "wrong")).is_failure


def connack(broker: Broker, auth: tuple[str, str] | None) -> ReasonCode:
    """The reason code of the broker's CONNACK for these credentials."""
    codes: queue.Queue[ReasonCode] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    if auth:
        client.username_pw_set(*auth)
    client.on_connect = lambda _c, _u, _f, code, _p: codes.put(code)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        return codes.get(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()
