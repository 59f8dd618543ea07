"""The real edge uplink service, reading the RTSP camera, pushing live video through central."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from central_support import Central
from video_support import add_camera, read_until_keyframe, until, wait_command

from central.keys import VIDEO
from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.service import UplinkService
from edge_agent.uplink.sub_reader import SubStreamReader
from edge_agent.uplink.tap import LiveTap, TapRegistry
from fsv_contract.video import FrameKind, unpack_frame
from testbed.rtsp import RtspServer
from tests.edge_agent.uplink.conftest import decoded_counters

pytestmark = pytest.mark.asyncio


def _edge_config(central: Central, rtsp: RtspServer, tmp_path: Path) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "site_id": "demo-canteen-a",
            "storage": {"path": str(tmp_path / "rec")},
            "central_url": f"http://127.0.0.1:{central.client.port}",
            "recorder": {"open_timeout_s": 5, "read_timeout_s": 5},
            "cameras": [
                {
                    "id": "cam1",
                    "name": "后厨",
                    "station": "kitchen_prep",
                    "main_url": rtsp.url("cam1"),
                    "sub_url": rtsp.url("cam1_sub"),
                },
            ],
        }
    )


async def test_live_sub_stream_from_the_camera_reaches_a_viewer_then_the_uplink_ends(
    central: Central, rtsp_server: RtspServer, tmp_path: Path
) -> None:
    add_camera(central)
    config = _edge_config(central, rtsp_server, tmp_path)
    index = SegmentIndex(tmp_path / "index.db")
    taps = TapRegistry()
    tap = taps.add(LiveTap("cam1", "sub"))
    reader = SubStreamReader(config.cameras[0], config.recorder, CredentialStore(None, {}), tap)
    service = UplinkService(config, index, taps)
    reader.start()
    service.start()
    hub = central.client.app[VIDEO].hub
    hub.linger_s = 0.2
    try:
        await until(tap.online, within=15)  # the GOP cache is warm before anybody watches
        viewer = await central.client.ws_connect(
            "/api/v1/video/live/demo-canteen-a/cam1", headers=await central.token("inspector-a")
        )
        service.uplink_bps()  # the heartbeat's previous mark
        command = await wait_command(central, "stream_start")
        reply = await asyncio.to_thread(service.stream_start, command["args"])
        assert reply == {"accepted": True, "online": True}
        got = await read_until_keyframe(viewer, within=10)
        media = [g for g in got if isinstance(g, bytes)]
        async with asyncio.timeout(10):
            while len(media) < 60:
                msg = await viewer.receive()
                if isinstance(msg.data, bytes):
                    media.append(msg.data)
        headers = [unpack_frame(m)[0] for m in media]
        assert headers[0].kind is FrameKind.INIT and headers[1].keyframe
        data = b"".join(bytes(unpack_frame(m)[1]) for m in media)
        counters = [c for _, c in decoded_counters(data)]
        assert len(counters) == 59
        steps = {(b - a) % 4096 for a, b in zip(counters, counters[1:], strict=False)}
        assert steps == {1}  # every frame, in order, none lost or repeated
        assert service.uplink_bps() > 100_000  # what went up, as the heartbeat reports it
        await viewer.close()
        await until(lambda: service.active == 0)
        assert hub.upstreams() == []
    finally:
        service.stop()
        reader.stop()
        index.close()
