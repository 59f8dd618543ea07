"""A node that died leaves its broker sessions behind: another node adopts and drains them.

With a shared ingest (central.ingest.broker_client) Mosquitto keeps giving a node that is
down its share of the messages, queued in its persistent session together with what it had
in flight, until the node comes back. So that nothing waits on a node that does not come
back soon, every node holds a lease `node:{node_id}` while it runs (not released on a stop:
a restart within `lease_s` takes it back). When such a lease has run out, one other node (the
one that takes the lease `adopt:{node_id}`) logs in with the dead node's accounts and client
ids, stores what the sessions hold (acknowledging each message once committed), unsubscribes
them from the group so the broker stops handing them a share, and ends them (session
expiry 0). If the dead node comes back meanwhile its connection takes the session over;
the adopter stops and what it had not acknowledged goes to the node again (repeats are
refused by event id).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.config import CentralConfig
from central.ingest.accounts import live_username, node_username
from central.ingest.broker_client import SHARE_GROUP, RawMessage
from central.nodes import Leases
from fsv_common.mqtt import set_tls
from fsv_contract import topics

log = logging.getLogger(__name__)

NODE_LEASE = "node:"
ADOPT_LEASE = "adopt:"
IDLE_S = 1.5  # a session is drained once nothing came for this long
CONNECT_TIMEOUT_S = 10.0
MAX_DRAIN_S = 600.0

Process = Callable[[Sequence[RawMessage]], object]


def dead_nodes(leases: Leases, now: float) -> list[str]:
    """Nodes whose `node:` lease ran out (not this one)."""
    with leases.ldb.read() as db:
        rows = db.execute(
            "select name from node_leases where name like ? and expires_at < ? and holder <> ?",
            [NODE_LEASE + "%", now, leases.node_id],
        ).fetchall()
    return [str(r[0])[len(NODE_LEASE) :] for r in rows]


def forget_node(leases: Leases, node: str) -> None:
    """Drop a dead node's lease once its sessions are ended (it takes a new one on return)."""
    with leases.ldb.transaction() as db:
        db.execute(
            "delete from node_leases where name = ? and expires_at < ?",
            [NODE_LEASE + node, time.time()],
        )


class SessionDrain:
    """One connection under a dead node's client id that empties and ends its session."""

    def __init__(
        self,
        config: CentralConfig,
        password: str,
        client_id: str,
        username: str,
        filters: Sequence[str],
        process: Process,
    ) -> None:
        self.config = config
        self.filters = list(filters)
        self._process = process
        self._pending: list[RawMessage] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._gone = threading.Event()
        self.session_present = False
        self.taken_over = False
        self._ending = False
        self.stored = 0
        # Never reconnect: a reconnect would take the session back from the node that returned.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        self._client.username_pw_set(username, password)
        if config.mqtt.tls is not None:
            set_tls(self._client, config.mqtt.tls)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def run(self) -> int:
        """Drain the session (blocking); returns how many messages were stored."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.mqtt.session_expiry_s
        c = self.config.mqtt
        self._client.connect(c.host, c.port, c.keepalive_s, clean_start=False, properties=props)
        self._client.loop_start()
        try:
            if not self._connected.wait(CONNECT_TIMEOUT_S) or self._gone.is_set():
                return 0
            if self.session_present:
                self._drain_until_idle()
                if not self._gone.is_set():
                    self._client.unsubscribe(self.filters)
                    self._drain_until_idle()  # what was handed out before the unsubscribe
            if not self._gone.is_set():
                self._ending = True
                end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                end.SessionExpiryInterval = 0
                self._client.disconnect(properties=end)
        finally:
            self._client.loop_stop()
        return self.stored

    def stop(self) -> None:
        """End `run` soon (the application stops): the session keeps what is not acked."""
        self._ending = True
        self._gone.set()
        self._client.disconnect()

    def _drain_until_idle(self) -> None:
        last = time.monotonic()
        deadline = last + MAX_DRAIN_S
        while not self._gone.is_set() and time.monotonic() < deadline:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                self._process(batch)
                for raw in batch:
                    if raw.qos > 0:
                        self._client.ack(raw.mid, raw.qos)
                self.stored += len(batch)
                last = time.monotonic()
            elif time.monotonic() - last >= IDLE_S:
                return
            else:
                time.sleep(0.05)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: object,
        _properties: object,
    ) -> None:
        if getattr(reason_code, "is_failure", False):
            log.error("adopting a session: the broker refused %s", reason_code)
            self._gone.set()
        self.session_present = bool(flags.session_present)
        self._connected.set()

    def _on_disconnect(self, *_args: object) -> None:
        # Not ours: the node came back and took its session over, or the broker went away.
        if not self._ending:
            self.taken_over = True
            self._gone.set()
        self._connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "<topic is not UTF-8>"
        raw = RawMessage(topic, bytes(msg.payload), time.time(), msg.mid, msg.qos, bool(msg.retain))
        with self._lock:
            self._pending.append(raw)


def drains_of(
    config: CentralConfig, password: str, node: str, process: Process
) -> list[SessionDrain]:
    """The drains of a dead node's sessions: the main one and, if used, the live lane's."""
    mqtt_config = config.mqtt
    username = node_username(mqtt_config.username, node)  # the dead node's own account
    main = SessionDrain(
        config,
        password,
        f"{mqtt_config.client_id}-{node}",
        username,
        [f"$share/{SHARE_GROUP}/{f}" for f in topics.CENTRAL_FILTERS],
        process,
    )
    if not mqtt_config.live_lane:
        return [main]
    live = SessionDrain(
        config,
        password,
        f"{mqtt_config.client_id}-{node}.live",
        live_username(username),
        [f"$share/{SHARE_GROUP}-live/{f}" for f in topics.CENTRAL_LIVE_FILTERS],
        process,
    )
    return [main, live]


async def adopt_dead_nodes(
    config: CentralConfig, password: str, leases: Leases, process: Process
) -> None:
    """Until cancelled: look for nodes whose lease ran out and drain their sessions."""
    every = config.cluster.renew_s
    while True:
        await asyncio.sleep(every)
        try:
            dead = await asyncio.to_thread(dead_nodes, leases, time.time())
        except Exception:  # noqa: BLE001 - the database is busy: look again next round
            log.exception("cannot list the nodes")
            continue
        for node in dead:
            name = ADOPT_LEASE + node
            try:
                if not await asyncio.to_thread(leases.hold, name):
                    continue
                log.warning("node %s is gone: %s adopts its broker sessions", node, leases.node_id)
                stored, taken_over = 0, False
                for drain in drains_of(config, password, node, process):
                    stored += await _run_drain(drain)
                    taken_over = taken_over or drain.taken_over
                if not taken_over:
                    await asyncio.to_thread(forget_node, leases, node)
                log.warning(
                    "stored %d messages of node %s's sessions%s",
                    stored,
                    node,
                    " (it came back meanwhile)" if taken_over else "",
                )
            except Exception:  # noqa: BLE001 - tried again next round
                log.exception("adopting the sessions of node %s failed", node)
            finally:
                try:
                    await asyncio.to_thread(leases.release, name)
                except Exception:  # noqa: BLE001 - it expires by itself
                    log.exception("cannot release %s", name)


async def _run_drain(drain: SessionDrain) -> int:
    """Run a drain on a thread; cancelled, it is stopped and waited for (the database stays
    open until then)."""
    work = asyncio.ensure_future(asyncio.to_thread(drain.run))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        drain.stop()
        await asyncio.wait([work])
        raise
