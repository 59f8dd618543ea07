"""A node serving a camera is killed under an open live wall: video and updates come back.

Real RTSP camera, broker, edge agent, two central nodes and the shipped HAProxy
(two_node_system.py); the live wall and two inboxes open in headless Chromium through
HAProxy. The node that serves the camera's video is killed with SIGKILL: the wall's tile must
decode frames again, relayed by the other node, within 3 s of the kill, and the update
sockets that were on the killed node must be up again (on the other node) within 3 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from two_node_system import TwoNodeVideoSystem
from video_system import CAMERA, SITE, running
from walks import Walk

from testbed.haproxy import NODES
from testbed.rtsp import RtspServer

pytestmark = pytest.mark.slow
RECOVER_S = 3.0


@pytest.fixture
def two_nodes(
    tmp_path_factory: pytest.TempPathFactory, rtsp_server: RtspServer
) -> Iterator[TwoNodeVideoSystem]:
    """The video system with two central nodes behind HAProxy, for this test alone."""
    system = TwoNodeVideoSystem(tmp_path_factory.mktemp("failover"), rtsp_server)
    with running(system, camera_within=60):
        yield system


def test_killing_the_node_of_a_camera_under_an_open_wall(
    two_nodes: TwoNodeVideoSystem, walk: Walk
) -> None:
    system = two_nodes
    live = f"/api/v1/video/live/{SITE}/{CAMERA}?stream=sub"
    victim = system.answered_by(live, user="inspector-a")
    assert victim in NODES
    survivor = next(n for n in NODES if n != victim)
    killed: dict[str, Any] = {}

    def answer(message: dict[str, Any]) -> str:
        killed["sockets"] = message["waiting"]["kill"]["sockets"]
        killed["at"] = system.kill(str(victim))
        return json.dumps({"node": victim, "at": killed["at"] * 1000})

    options = {
        "url": system.url, "username": "inspector-a", "password": system.users["inspector-a"],
        "inboxes": 2, "victim": victim,
    }  # fmt: skip
    try:
        seen = walk("node_failover.mjs", options, 150, answer)
    except BaseException:
        print(system.logs())
        raise
    video_s = seen["videoBackMs"] / 1000
    back = seen["socketsBack"]
    print(
        f"{victim} killed: the wall's video decoded again through {survivor} {video_s:.2f} s "
        f"later ({seen['tileRetries']} tile attempts); update sockets on {victim}: "
        + ", ".join(f"up again on {b['node']} {b['backMs'] / 1000:.2f} s later" for b in back)
        + f"; tile attempts (ms after the kill): {seen['attempts']}"
    )
    first, later = seen["after"]
    assert later["id"] == first["id"] and later["frames"] > first["frames"] + 25, seen["after"]
    assert system.answered_by(live, user="inspector-a") == survivor
    assert killed["sockets"].count(victim) >= 2  # both inboxes' sockets were on it
    assert len(back) == killed["sockets"].count(victim)
    assert all(b["node"] == survivor for b in back)
    assert 0 < video_s <= RECOVER_S
    assert all(0 < b["backMs"] / 1000 <= RECOVER_S for b in back)
