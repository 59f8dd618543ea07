"""Live that fits the line: a stream the site's uplink cannot carry is refused at once with a
message (503 in-band, close 4503), not left to stall; one that fits starts as before."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from central_support import Central, make_config
from video_support import add_camera

from central.api.common import SERVICES
from central.app import create_app
from central.regulation.seed import seed_demo
from central.video.api_live import THIN_LINE_CLOSE_CODE
from central.video.line_fit import LineReport, parse_line, refusal, stream_cost
from fsv_contract.payloads import HeartbeatPayload, StreamRate, UplinkStats, utc_now

SITE = "demo-canteen-a"


def _beat(budget_bps: float | None, main_bps: float = 4e6, sub_bps: float = 4e5) -> dict[str, Any]:
    payload = HeartbeatPayload(
        ts=utc_now(),
        uptime_s=1,
        disk_free_bytes=1,
        disk_total_bytes=2,
        cpu_percent=1,
        cameras=[{"camera": "cam1", "bitrate_bps": main_bps}],  # type: ignore[list-item]
        uplink=UplinkStats(
            budget_bps=budget_bps,
            streams=[StreamRate(camera="cam1", stream="sub", bps=sub_bps)],
        ),
    )
    data: dict[str, Any] = json.loads(payload.model_dump_json())
    return data


def test_a_stream_is_refused_only_when_it_does_not_fit() -> None:
    line = parse_line(_beat(budget_bps=4e6))
    assert line.budget_bps == 4e6 and stream_cost(line, "cam1", "sub") == 4e5
    assert stream_cost(line, "cam1", "main") == 4e6  # the recorded main stream's rate
    assert refusal(line, "cam1", "sub", running_bps=[]) is None
    message = refusal(line, "cam1", "main", running_bps=[])
    assert message is not None and "sub stream" in message and "4.0 Mbit/s" in message
    # The pages translate the refusal by this pattern (central/web/static/app.js).
    found = re.search(r"uplink too thin: .* the (sub|main) stream needs", message)
    assert found is not None and found[1] == "main"
    # Eight sub streams of 0.4 Mbit/s fill 3.2 of 3.6 usable Mbit/s: the ninth does not fit.
    assert refusal(line, "cam1", "sub", running_bps=[4e5] * 8) is None
    assert refusal(line, "cam1", "sub", running_bps=[4e5] * 9) is not None


def test_an_unknown_or_unlimited_line_refuses_nothing() -> None:
    assert refusal(parse_line(None), "cam1", "main", []) is None
    assert refusal(parse_line(_beat(budget_bps=None)), "cam1", "main", []) is None
    assert refusal(LineReport(1e6, {}, {}), "cam9", "main", []) is None  # cost unknown
    assert parse_line({"uplink": "garbage", "cameras": "x"}).budget_bps is None


@pytest.mark.asyncio
async def test_the_viewer_is_told_when_the_line_cannot_carry_the_stream(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path)))
    central = Central(client, await asyncio.to_thread(seed_demo, client.app[SERVICES]))
    add_camera(central, SITE, "cam1")
    ldb = client.app[SERVICES].ldb
    with ldb.transaction() as db:
        db.execute(
            "insert into agent_status (site, last_heartbeat_at, heartbeat) values (?, ?, ?)",
            [SITE, time.time(), json.dumps(_beat(budget_bps=2e6))],
        )
    headers = await central.token("staff-canteen-a")
    ws = await client.ws_connect(
        f"/api/v1/video/live/{SITE}/cam1", params={"stream": "main"}, headers=headers
    )
    async with asyncio.timeout(10):
        msg = await ws.receive()
        assert msg.type == WSMsgType.TEXT
        body = json.loads(msg.data)
        while not ws.closed:
            await ws.receive()
    assert ws.close_code == THIN_LINE_CLOSE_CODE
    assert body["type"] == "error" and body["status"] == 503
    assert "uplink too thin" in body["message"] and "sub stream" in body["message"]
    # The sub stream fits: the socket is taken and the edge is asked for it.
    sub = await client.ws_connect(f"/api/v1/video/live/{SITE}/cam1", headers=headers)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await sub.receive()
    assert not sub.closed
    await sub.close()
    hls = await client.get(f"/api/v1/video/hls/{SITE}/cam1/main.m3u8", headers=headers)
    assert hls.status == 503 and "uplink too thin" in await hls.text()
