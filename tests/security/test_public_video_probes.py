"""A public kitchen link's video against a public visitor who tries for more: guessed cameras,
the main stream, replay and export with the public token, the API, and one viewer too many."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

import aiohttp
from security_tally import Tally
from security_targets import Targets
from security_world import CAMERA, SITE_A, SITE_B, SITE_SLAUGHTER, SecurityWorld

# Each probe group comes from its own address (the trusted proxy names it), so the public
# pages' rate limit of one address does not hide what the probe tests.
_CLIENTS = iter(f"198.51.100.{n}" for n in range(10, 250))


def _publish(world: SecurityWorld, **extra: Any) -> dict[str, Any]:
    """A link of county A's canteen camera (known to central once the `targets` alert came)."""
    body = {"org_id": world.orgs["canteen_a"], "cameras": [f"{SITE_A}/{CAMERA}"], **extra}
    made = world.call("POST", "/api/v1/public-links", "staff-canteen-a", body)
    assert made.status == 201, made.text
    link: dict[str, Any] = made.json()
    return link


async def _handshake(world: SecurityWorld, path: str, headers: dict[str, str]) -> str:
    """'refused:<status>' if the upgrade is refused; otherwise what the socket says first."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(world.url + path, headers=headers)
        except aiohttp.WSServerHandshakeError as e:
            return f"refused:{e.status}"
        try:
            async with asyncio.timeout(1.0):
                msg = await ws.receive()
        except TimeoutError:
            return "open"  # taken: waiting for the camera's video
        finally:
            await ws.close()
        return f"message:{str(msg.data)[:200]}"


def test_public_video_reaches_only_its_published_sub_stream(
    world: SecurityWorld, targets: Targets, tally: Tally
) -> None:
    count = tally["public_links"]
    token = _publish(world)["token"]
    client = {"X-Forwarded-For": next(_CLIENTS)}
    guesses = [
        f"{SITE_A}/cam2",
        f"{SITE_A}/cam0",
        f"{SITE_A}/CAM1",
        f"{SITE_A}/{CAMERA}%2F..",
        f"{SITE_A}/..%2F{CAMERA}",
        f"{SITE_B}/{CAMERA}",
        f"{SITE_SLAUGHTER}/{CAMERA}",
        f"{SITE_A}%2F..%2F{SITE_B}/{CAMERA}",
        f"{SITE_A}/{CAMERA}?stream=main",
        f"{SITE_A}/{CAMERA}?stream=sub&mode=replay",
    ]
    for i, guess in enumerate(guesses):
        if i % 8 == 0:
            client = {"X-Forwarded-For": next(_CLIENTS)}
        said = asyncio.run(_handshake(world, f"/api/v1/public/{token}/live/{guess}", client))
        count.record(said.startswith("refused:4"), f"public video of {guess}: {said}")
    # The published camera itself is open to the link (the probe above is not vacuous).
    said = asyncio.run(_handshake(world, f"/api/v1/public/{token}/live/{SITE_A}/{CAMERA}", client))
    assert said == "open", said
    # The same camera with a wrong or guessed token.
    for bad in (token[:-1], token + "x", "x" * len(token), urllib.parse.quote("../" + token)):
        said = asyncio.run(
            _handshake(world, f"/api/v1/public/{bad}/live/{SITE_A}/{CAMERA}", client)
        )
        count.record(said.startswith("refused:4"), f"public video with token {bad!r}: {said}")
    assert count.leaked == 0, count.leaks


def test_a_public_token_opens_no_replay_export_or_api(
    world: SecurityWorld, targets: Targets, tally: Tally
) -> None:
    count = tally["public_links"]
    token = _publish(world)["token"]
    start = time.time() - 600
    cam = f"{SITE_A}/{CAMERA}"
    private = [
        ("GET", f"/api/v1/video/live/{cam}"),
        ("GET", f"/api/v1/video/replay/{cam}?start={start}"),
        ("GET", f"/api/v1/video/hls/{cam}/sub.m3u8"),
        ("GET", f"/api/v1/video/recordings/{cam}?start={start}&end={time.time()}"),
        ("GET", "/api/v1/video/exports"),
        ("GET", "/api/v1/video/exports/file?id=1"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/public-links"),
        ("GET", "/api/v1/orgs"),
        ("GET", f"/api/v1/orgs/{world.orgs['canteen_a']}/inspections"),
    ]
    export = json.dumps(
        {"site_id": SITE_A, "camera_id": CAMERA, "start": start, "end": start + 10}
    ).encode()
    for scheme in ("bearer", "cookie", "query"):
        client = {"X-Forwarded-For": next(_CLIENTS)}
        for method, path in private:
            headers = dict(client)
            if scheme == "bearer":
                headers["Authorization"] = f"Bearer {token}"
            elif scheme == "cookie":
                headers["Cookie"] = f"fsv_session={token}"
            else:
                path += ("&" if "?" in path else "?") + f"token={token}"
            reply = world.request(method, path, headers=headers)
            count.record(reply.status in (401, 403), f"{scheme} {path}: {reply.status}")
        reply = world.request(
            "POST",
            "/api/v1/video/exports",
            body=export,
            headers={**client, "Authorization": f"Bearer {token}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        count.record(reply.status in (401, 403), f"{scheme} export: {reply.status}")
    # Paths a visitor might hope exist beside the live one.
    client = {"X-Forwarded-For": next(_CLIENTS)}
    for path in (
        f"/api/v1/public/{token}/replay/{cam}?start={start}",
        f"/api/v1/public/{token}/hls/{cam}/sub.m3u8",
        f"/api/v1/public/{token}/export/{cam}",
        f"/api/v1/public/{token}/recordings/{cam}",
        f"/api/v1/public/{token}/live/{cam}/../../../video/replay/{cam}",
    ):
        said = asyncio.run(_handshake(world, path, client))
        count.record(said.startswith("refused:4"), f"{path}: {said}")
    assert count.leaked == 0, count.leaks


async def _viewers(world: SecurityWorld, path: str, n: int) -> list[str]:
    """Open `n` viewer sockets at once (each from its own address); what each one got."""
    async with aiohttp.ClientSession() as http:
        sockets = []
        for _ in range(n):
            headers = {"X-Forwarded-For": next(_CLIENTS)}
            sockets.append(await http.ws_connect(world.url + path, headers=headers))
        said = []
        for ws in sockets:
            try:
                async with asyncio.timeout(1.0):
                    msg = await ws.receive()
                    while not ws.closed:  # the refusal is followed by its close code
                        await ws.receive()
                said.append(f"message:{msg.data}|close:{ws.close_code}")
            except TimeoutError:
                said.append("open")
        for ws in sockets:
            await ws.close()
    return said


def test_a_public_link_carries_at_most_its_viewers(
    world: SecurityWorld, targets: Targets, tally: Tally
) -> None:
    count = tally["public_links"]
    link = _publish(world, max_viewers=2)
    path = f"/api/v1/public/{link['token']}/live/{SITE_A}/{CAMERA}"
    said = asyncio.run(_viewers(world, path, 5))
    assert said[:2] == ["open", "open"], said  # within the cap: taken
    for extra in said[2:]:
        refused = "观看人数已满" in extra and "close:4429" in extra
        count.record(refused, f"viewer over the cap of 2: {extra}")
    assert count.leaked == 0, count.leaks
