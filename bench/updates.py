"""The pages' update socket under many open pages: delivery time and the alert feed's cost.

Runs central's real application (seeded demo tree, SQLite, no broker: alerts are fed through
the alert feed's hook as ingest does) on a loopback port, and a separate client process
holding `--sockets` update sockets, half as county A's inspector and half as county B's.
Then `--alerts` alerts of county A are raised one every `--gap` seconds, and for each:
  - how long the hook (alert written, push jobs, announcement) took, with and without
    the sockets open (`hook_ms_p50_*`): what open pages cost the alert feed;
  - when the last county-A socket had it (`delivered_all_ms_*`, from the hook's start);
  - how many county-B sockets got it (must be 0);
  - the time central's event loop spent writing each change to the sockets (`fan_out_ms`).
Prints the figures and writes bench/results/updates.json.

    .venv/bin/python bench/updates.py [--sockets 1000] [--alerts 30] [--gap 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine  # noqa: E402
from central.alerts import updates  # noqa: E402
from central.api.common import SERVICES  # noqa: E402
from central.app import create_app  # noqa: E402
from central.config import CentralConfig  # noqa: E402
from central.regulation.seed import seed_demo  # noqa: E402
from fsv_contract import EventPayload  # noqa: E402
from testbed.ports import free_port  # noqa: E402

RESULT = REPO / "bench" / "results" / "updates.json"


def config(root: Path) -> CentralConfig:
    """Central on a temporary directory; MQTT points where nothing listens (not used)."""
    password = root / "mqtt-password"
    password.write_text("bench\n")
    return CentralConfig.model_validate(
        {
            "data_dir": str(root / "data"),
            "mqtt": {"port": free_port(), "password_file": str(password), "reconnect_max_s": 30},
            "web": {"cookie_secure": False, "base_url": "http://127.0.0.1"},
        }
    )


def clients(url: str, tokens: dict[str, str], sockets: int, pipe: Connection) -> None:
    """Hold `sockets` update sockets (half per county); report each alert's arrival times."""

    async def run() -> None:
        arrivals: dict[str, dict[str, list[float]]] = {"inspector-a": {}, "inspector-b": {}}
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        opened: list[tuple[str, aiohttp.ClientWebSocketResponse]] = []
        for i in range(sockets):
            who = "inspector-a" if i % 2 == 0 else "inspector-b"
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            ws = await session.ws_connect(f"{url}/api/v1/updates", headers=headers)
            await ws.receive()  # hello
            opened.append((who, ws))

        async def listen(who: str, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                at = time.time()
                data = json.loads(msg.data)
                if data.get("type") == "alert" and data.get("op") == "created":
                    arrivals[who].setdefault(data["alert"]["id"], []).append(at)

        tasks = [asyncio.create_task(listen(who, ws)) for who, ws in opened]
        pipe.send("ready")
        await asyncio.to_thread(pipe.recv)  # "done": every alert was raised
        await asyncio.sleep(2.0)  # the last ones still on their way
        pipe.send(arrivals)
        for task in tasks:
            task.cancel()
        await session.close()

    asyncio.run(run())


def event(site: str) -> EventPayload:
    return EventPayload.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "site": site,
            "camera": "cam1",
            "phase": "start",
            "kind": "smoking",
            "station": "kitchen_prep",
            "rule": "smoke",
            "severity": "critical",
            "start": datetime.now(UTC).isoformat(),
            "score": 0.9,
        }  # fmt: skip
    )


async def raise_alerts(app: web.Application, count: int, gap: float) -> dict[str, Any]:
    """Raise `count` county-A alerts through the hook; each one's start time and hook time."""
    hooks = app[SERVICES].hooks
    started: dict[str, float] = {}
    hook_ms: list[float] = []
    for _ in range(count):
        payload = event("demo-canteen-a")
        t0 = time.time()
        started[str(payload.event_id)] = t0
        await asyncio.to_thread(hooks.on_event, payload)
        hook_ms.append((time.time() - t0) * 1000)
        await asyncio.sleep(gap)
    return {"started": started, "hook_ms": hook_ms}


async def bench(sockets: int, alerts: int, gap: float) -> dict[str, Any]:
    # One user opens many sockets here: the per-user cap (one socket per tab) is lifted.
    updates.MAX_PER_USER = sockets + 1
    root = Path(tempfile.mkdtemp(prefix="bench-updates-"))
    app = create_app(config(root))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        seed = await asyncio.to_thread(seed_demo, app[SERVICES])
        passwords = {u.username: u.password for u in seed["users"]}
        tokens = {}
        async with aiohttp.ClientSession() as http:
            for who in ("inspector-a", "inspector-b"):
                body = {"username": who, "password": passwords[who], "kind": "bearer"}
                async with http.post(f"{url}/api/v1/auth/login", json=body) as resp:
                    tokens[who] = (await resp.json())["token"]
        # Without sockets: the alert feed's hook alone.
        quiet = await raise_alerts(app, alerts, gap)
        parent, child = multiprocessing.Pipe()
        proc = multiprocessing.get_context("spawn").Process(
            target=clients, args=(url, tokens, sockets, child)
        )
        proc.start()
        t_open = time.time()
        while not parent.poll(0.1):
            if not proc.is_alive():
                raise RuntimeError("the client process ended before its sockets were open")
            await asyncio.sleep(0.1)
        assert parent.recv() == "ready"
        open_s = time.time() - t_open
        app[SERVICES].updates.fan_out_s.clear()
        busy = await raise_alerts(app, alerts, gap)
        fan_out_ms = [x * 1000 for x in app[SERVICES].updates.fan_out_s]
        parent.send("done")
        arrivals = await asyncio.to_thread(parent.recv)
        proc.join(10)
    finally:
        await runner.cleanup()
    per_county = sockets // 2 + sockets % 2
    delivered_all, delivered_first, complete, leaked = [], [], 0, 0
    for alert_id, t0 in busy["started"].items():
        got = arrivals["inspector-a"].get(alert_id, [])
        leaked += len(arrivals["inspector-b"].get(alert_id, []))
        if len(got) == per_county:
            complete += 1
            delivered_all.append((max(got) - t0) * 1000)
            delivered_first.append((min(got) - t0) * 1000)
    return {
        "sockets": sockets,
        "alerts": alerts,
        "gap_s": gap,
        "sockets_open_s": round(open_s, 2),
        "alerts_delivered_to_every_socket_in_scope": complete,
        "out_of_scope_deliveries": leaked,
        "hook_ms_p50_no_sockets": round(statistics.median(quiet["hook_ms"]), 2),
        "hook_ms_p50_with_sockets": round(statistics.median(busy["hook_ms"]), 2),
        "hook_ratio_with_to_without": round(
            statistics.median(busy["hook_ms"]) / statistics.median(quiet["hook_ms"]), 2
        ),
        "fan_out_ms_p50": round(statistics.median(fan_out_ms), 3) if fan_out_ms else None,
        "delivered_first_ms_p50": round(statistics.median(delivered_first), 1)
        if delivered_first
        else None,
        "delivered_all_ms_p50": round(statistics.median(delivered_all), 1)
        if delivered_all
        else None,
        "delivered_all_ms_max": round(max(delivered_all), 1) if delivered_all else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.2)
    args = parser.parse_args()
    info = describe_machine(
        "the client process holding the sockets runs on the same cores as central"
    )
    result = asyncio.run(bench(args.sockets, args.alerts, args.gap))
    result["machine"] = info
    for key, value in result.items():
        if key != "machine":
            print(f"{key}: {value}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_1min_at_start']}")
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
