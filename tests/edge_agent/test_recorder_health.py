"""The agent's health check (and with it the systemd watchdog) counts a stuck sub lane
recorder as it counts a stuck main one: a recorder whose thread ended, or one that is
connected to a reachable camera yet reads nothing, withholds the watchdog pings."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from recording_helpers import make_config, wait_for

from edge_agent.app import EdgeAgent, _supervise
from edge_agent.credentials import CredentialStore
from edge_agent.recording.events import PacketEvent
from testbed.rtsp import RtspServer

LANE = "cam1--sub"


class _Killed(BaseException):
    """Not an Exception: neither the listener set nor the recorder's retry loop catch it."""


def _pings(sock: socket.socket, seconds: float) -> int:
    """WATCHDOG=1 datagrams received within `seconds`."""
    count = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            count += "WATCHDOG=1" in sock.recv(4096).decode()
        except TimeoutError:
            break
    return count


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recv(4096)
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_stuck_sub_lane_recorder_withholds_the_watchdog(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read timeout of 1 s: a connection reading nothing for 3 s is stuck.
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam1")}, read_timeout_s=1.0)
    cam = config.cameras[0].model_copy(
        update={"sub_url": rtsp_server.url("cam1_sub"), "record_sub": True}
    )
    config = config.model_copy(update={"cameras": [cam]})
    agent = EdgeAgent(config, CredentialStore(environ={}))
    (main,), (lane,) = agent.recorders, agent.sub_recorders
    assert lane.camera.id == LANE
    sock_path = tmp_path / "notify.sock"
    stop = threading.Event()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every second while healthy
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    supervisor = threading.Thread(target=_supervise, args=(agent, stop), daemon=True)
    blocked, release = threading.Event(), threading.Event()

    def block(event: PacketEvent) -> None:
        # A listener that never returns, as a consumer's bug would: the lane's thread is
        # alive and its camera reachable, but no packet is read any more.
        if not release.is_set():
            blocked.set()
            release.wait(60)

    agent.start()
    try:
        wait_for(lambda: lane.status().state == "online" and main.status().state == "online",
                 timeout=30)  # fmt: skip
        supervisor.start()
        assert agent.healthy() and agent.stuck_recorders() == []
        assert _pings(sock, 3.5) >= 2

        lane.add_packet_listener(block)
        wait_for(blocked.is_set, timeout=10)
        wait_for(lambda: not agent.healthy(), timeout=15)
        (why,) = agent.stuck_recorders()
        assert why.startswith(f"{LANE}: online but no packet read for "), why
        assert main.stuck() is None and main.status().state == "online"  # main records on
        _drain(sock)
        assert _pings(sock, 3.5) == 0  # withheld: systemd would restart the agent

        release.set()
        lane.packet_listeners.remove(block)
        wait_for(agent.healthy, timeout=15)  # it reads again (or reconnects): not stuck
        assert _pings(sock, 3.5) >= 2

        def die(event: PacketEvent) -> None:
            raise _Killed

        lane.add_packet_listener(die)
        wait_for(lambda: not lane.running, timeout=10)
        assert agent.stuck_recorders() == [f"{LANE}: recorder thread ended"]
        assert main.running and main.stuck() is None
        _drain(sock)
        assert _pings(sock, 3.5) == 0
    finally:
        stop.set()
        release.set()
        if supervisor.is_alive():
            supervisor.join(5)
        agent.stop()
        sock.close()
    # A recorder stopped on purpose is not stuck.
    assert main.stuck() is None and lane.stuck() is None
