"""End to end in headless Chromium: RTSP camera → edge agent → MQTT + uplink → central → page."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import av
import numpy as np
import pytest
from video_system import CAMERA, SITE, VideoSystem, wait_until

from testbed.central_rows import CentralRows
from testbed.footage import read_frame_counter

if TYPE_CHECKING:
    # Only for annotations: at run time `conftest` may be another folder's conftest, when
    # pytest collected that one last (tests/edge_agent/... before tests/browser).
    from conftest import Browse

pytestmark = pytest.mark.slow
LIVE = f"/api/v1/video/live/{SITE}/{CAMERA}"


def _login(system: VideoSystem, user: str) -> dict[str, Any]:
    return {"url": system.url, "username": user, "password": system.users[user]}


def _upstreams(system: VideoSystem) -> list[dict[str, Any]]:
    ups: list[dict[str, Any]] = system.api("GET", "/api/v1/video/status", user="admin")["upstreams"]
    return ups


def test_live_wall_plays_the_camera(system: VideoSystem, browse: Browse) -> None:
    patch = {"name": "后厨 Kitchen", "station": "kitchen_prep"}  # admins name cameras
    system.api("PATCH", f"/api/v1/sites/{SITE}/cameras/{CAMERA}", user="admin", body=patch)
    system.raise_alert()  # the tile shows a red badge while the alert is open
    wait_until(
        lambda: system.api("GET", "/api/v1/alerts", user="admin")["total"] == 1,
        20,
        "the alert at central",
    )
    seen = browse(mode="live", **_login(system, "inspector-a"))
    assert seen["tiles"] == 1 and seen["errors"] == []
    first, second = seen["first"], seen["second"]
    assert second["currentTime"] > first["currentTime"] + 2.0  # the video keeps playing
    assert second["frames"] > first["frames"] + 40  # frames are decoded (25 fps sub stream)
    assert second["counter"] != first["counter"]  # and the picture changes
    assert seen["size"] == [640, 360]  # the sub stream, relayed as is
    caption = seen["caption"]
    # The station in words (zh-CN first), not its identifier.
    assert "后厨 Kitchen" in caption and "后厨加工区" in caption and "中卫市第一小学食堂" in caption
    assert "kitchen_prep" not in caption
    assert seen["online"] is True
    assert seen["badge"] == "1 条预警"
    assert seen["badgeHref"] == f"/inbox#site={SITE}&camera={CAMERA}"  # the camera's alerts
    assert seen["full"] == [1920, 1080]  # full screen plays the main stream
    # Leaving full screen let go of the main stream: its upstream closes after its last viewer.
    wait_until(
        lambda: not [u for u in _upstreams(system) if u["stream"] == "main"],
        60,
        "the main stream's upstream to close after full screen",
    )


async def _viewers(system: VideoSystem, count: int) -> list[int]:
    """Open `count` viewers at once; each reads up to its first keyframe fragment."""
    headers = {"Authorization": f"Bearer {system.token('inspector-a')}"}
    async with aiohttp.ClientSession(system.url) as http:
        sockets = [await http.ws_connect(LIVE, headers=headers) for _ in range(count)]
        firsts = []
        for ws in sockets:
            async with asyncio.timeout(20):
                while True:
                    msg = await ws.receive()
                    if isinstance(msg.data, bytes) and msg.data[0] == 2:
                        firsts.append(msg.data[1] & 1)
                        break
        ups = await asyncio.to_thread(_upstreams, system)
        live = [u for u in ups if u["camera"] == CAMERA and u["mode"] == "live"]
        assert len(live) == 1 and live[0]["viewers"] == count, ups
        for ws in sockets:
            await ws.close()
    return firsts


def test_twenty_viewers_one_upstream_which_goes_away_after_the_last(system: VideoSystem) -> None:
    firsts = asyncio.run(_viewers(system, 20))
    assert firsts == [1] * 20  # every viewer starts at a keyframe
    wait_until(lambda: not _upstreams(system), 30, "the upstream to stop after the linger")


def _expected_counter(system: VideoSystem, at: float) -> int:
    """The frame counter the recording shows at UTC `at`, decoded from the segment file."""
    db = sqlite3.connect(system.root / "edge-state" / "index.db")
    row = db.execute(
        'select path, start from segments where camera = ? and start <= ? and "end" > ?',
        [CAMERA, at, at],
    ).fetchone()
    db.close()
    assert row, "no segment covers the chosen time"
    path, start = row
    shown = None
    with av.open(str(system.root / "recordings" / path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base or Fraction(1, 90000))
        first = None
        for frame in container.decode(stream):
            first = frame.pts if first is None else first
            if start + (frame.pts - first) * tb > at + 1e-6:
                break
            shown = frame
    assert shown is not None
    image = np.asarray(shown.to_ndarray(format="gray"), dtype=np.uint8)
    return read_frame_counter(image)


def test_replay_seeks_to_the_right_frame(system: VideoSystem, browse: Browse) -> None:
    wait_until(lambda: bool(system.recorded_ranges(8)), 40, "8 s of indexed recording")
    at = system.recorded_ranges(8)[0]["start"] + 3.3
    expected = _expected_counter(system, at)
    seen = browse(mode="replay", site=SITE, camera=CAMERA, at=at, **_login(system, "inspector-a"))
    assert seen["size"] == [1920, 1080]  # replay plays the recorded main stream
    assert seen["originWall"] <= at
    assert seen["counter"] == expected, json.dumps(seen)
    assert seen["ranges"] >= 1


def test_an_exported_clip_verifies_and_a_tampered_one_fails(
    system: VideoSystem, tmp_path: Path
) -> None:
    wait_until(lambda: bool(system.recorded_ranges(8)), 40, "8 s of indexed recording")
    first = system.recorded_ranges(8)[0]
    job = system.api(
        "POST",
        "/api/v1/video/exports",
        user="inspector-a",
        body={
            "site_id": SITE,
            "camera_id": CAMERA,
            "start": first["start"] + 1,
            "end": first["start"] + 6,
        },
    )

    def status() -> str:
        items = system.api("GET", "/api/v1/video/exports", user="inspector-a")["items"]
        return str(next(j for j in items if j["id"] == job["id"])["status"])

    wait_until(lambda: status() in ("done", "failed"), 40, "the export")
    assert status() == "done"
    clip = tmp_path / "clip.mp4"
    manifest = tmp_path / "clip.json"
    base = f"/api/v1/video/exports/file?id={job['id']}"
    clip.write_bytes(system.api("GET", base, user="inspector-a", raw=True))
    manifest.write_bytes(system.api("GET", base + "&part=manifest", user="inspector-a", raw=True))
    verify = [
        sys.executable,
        "-m",
        "central",
        "verify-clip",
        str(clip),
        str(manifest),
        "--data-dir",
        str(system.root / "central"),
        *(["--database", system.database] if system.database else []),
    ]
    ok = subprocess.run(verify, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = bytearray(clip.read_bytes())
    data[-100] ^= 0x01
    clip.write_bytes(bytes(data))
    bad = subprocess.run(verify, capture_output=True, text=True)
    assert bad.returncode == 1 and "altered" in bad.stdout


def test_a_county_b_user_cannot_open_a_county_a_camera(system: VideoSystem, browse: Browse) -> None:
    seen = browse(mode="scope", site=SITE, camera=CAMERA, **_login(system, "inspector-b"))
    assert seen["tiles"] == 0
    assert seen["ws"] == {"opened": False, "messages": 0}


def test_replay_timeline_zooms_and_says_where_nothing_was_recorded(
    system: VideoSystem, browse: Browse
) -> None:
    wait_until(lambda: bool(system.recorded_ranges(8)), 40, "8 s of indexed recording")
    at = system.recorded_ranges(8)[0]["start"] + 3.3
    shots = Path("/tmp/fsv-regulator-pages")
    shots.mkdir(exist_ok=True)
    seen = browse(
        mode="timeline", site=SITE, camera=CAMERA, at=at, shots=str(shots),
        **_login(system, "inspector-a"),
    )  # fmt: skip
    assert seen["errors"] == [] and seen["missing"] == []
    day, minute = seen["day"], seen["minute"]
    assert day["span"] == 86400 and day["ticks"][0] == "00:00" and day["ticks"][-1] == "24:00"
    assert day["recs"] >= 1 and day["cursorShown"]
    assert minute["span"] == 60 and len(minute["ticks"]) >= 6
    assert all(len(t) == 8 for t in minute["ticks"])  # seconds shown at 1 min
    # Zoomed around the (paused) playing time: still shown, where it was on the day's bar.
    assert minute["cursorShown"] and minute["at"] is not None, (day, minute)
    assert minute["at"] == pytest.approx(day["at"], abs=1e-4), (day, minute)
    assert abs(seen["clicked"] - seen["under"]) < 1.0  # 1 px is a fraction of a second now
    gap = seen["gap"]
    assert gap["text"].endswith("没有录像") and not gap["player"]
    assert gap["next"] is not None and gap["next"].startswith("跳到下一段录像")
    assert seen["phone"]["scrollWidth"] <= seen["phone"]["innerWidth"]


def test_public_kitchen_page_plays_on_a_phone_within_its_cap_until_revoked(
    system: VideoSystem, browse: Browse
) -> None:
    org = system.orgs["canteen_a"]
    body = {"result": "compliant", "rating": "excellent"}
    system.api("POST", f"/api/v1/orgs/{org}/inspections", user="inspector-a", body=body)
    link = system.api(
        "POST",
        "/api/v1/public-links",
        user="staff-canteen-a",
        body={"org_id": org, "cameras": [f"{SITE}/{CAMERA}"], "max_viewers": 2},
    )
    shots = Path("/tmp/fsv-regulator-pages")
    shots.mkdir(exist_ok=True)
    seen = browse(
        mode="public", url=system.url, publicUrl=link["url"], linkId=link["id"],
        token=system.token("staff-canteen-a"), shots=str(shots), timeout=120,
    )  # fmt: skip
    assert seen["errors"] == [] and seen["status"] == 200
    first, second = seen["first"], seen["second"]
    assert second["currentTime"] > first["currentTime"] + 2.0  # the video keeps playing
    assert second["mediaTime"] > first["mediaTime"] + 2.0  # painted frames advance
    assert second["frames"] > first["frames"] + 40
    layout = seen["layout"]
    assert layout["size"] == [640, 360]  # the sub stream
    assert layout["cameras"] == [f"{SITE}/{CAMERA}"] and "后厨加工区" in layout["camera"]
    assert layout["video"]["width"] == layout["innerWidth"] == 390  # the full width of a phone
    assert layout["caption"]["top"] >= layout["video"]["bottom"]  # under the picture, not over
    assert layout["scrollWidth"] <= layout["innerWidth"]
    assert layout["title"] == "中卫市第一小学食堂" and layout["lang"] == "zh-CN"
    assert "符合" in layout["info"] and "优秀" in layout["info"]
    assert layout["missing"] == [] and layout["state"] == "player.live"
    assert layout["api"] == 401  # the page opens no door to the API
    assert layout["msgHidden"]  # nothing is drawn over the playing video
    full = seen["full"]
    assert "观看人数已满" in full["text"] and "2" in full["text"] and "自动重试" in full["text"]
    assert full["scrollWidth"] <= 390  # the longer message wraps on a phone
    assert full["frame"] == full["text"]  # said on the empty picture too
    assert full["msgHiddenAfter"]  # a seat freed: the refused phone retried by itself, plays
    assert seen["revokedStatus"] == 200
    ended = seen["ended"]
    assert ended["key"] == "public.ended" and "已撤销" in ended["text"]
    assert ended["src"] is None and ended["disabled"]  # the player let go of the stream
    assert seen["after"] == 404


def _archive_one_segment(system: VideoSystem) -> dict[str, Any]:
    """Send a recent anchored segment to central's archive as the site would (its login)."""
    import base64
    import urllib.request

    central = CentralRows(system.database, system.root / "central")

    def anchored() -> list[tuple[Any, ...]]:
        return central.query(
            'select path, start, "end", sha256 from anchored_segments where site = ? and '
            'camera = ? and "end" - start >= 4 order by start',
            [SITE, CAMERA],
        )

    wait_until(lambda: len(anchored()) >= 2, 40, "two segments anchored at central")
    path, start, end, sha = anchored()[-2]  # recent: the edge-only footage after it is near
    login = base64.b64encode(f"{SITE}:{system.site_password}".encode()).decode()
    req = urllib.request.Request(
        f"{system.url}/api/v1/archive/segments/{CAMERA}/{path}",
        data=(system.root / "recordings" / path).read_bytes(),
        method="PUT",
        headers={"Authorization": f"Basic {login}", "X-Content-SHA256": sha, "X-Offset": "0"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201, resp.status
    return {"start": start, "end": end}


@pytest.mark.timeout(600)  # its waits are generous for a loaded CI box; none is a speed check
def test_replay_shows_sources_previews_keys_and_exports_a_selection(
    system: VideoSystem, browse: Browse, tmp_path: Path
) -> None:
    archived = _archive_one_segment(system)
    wait_until(
        lambda: any(r["end"] > archived["end"] + 12 for r in system.recorded_ranges(1)),
        40,
        "12 s recorded after the archived segment",
    )
    now = time.time()
    path = f"/api/v1/video/recordings/{SITE}/{CAMERA}?start={now - 3600}&end={now}"
    sources = system.api("GET", path, user="inspector-a")["sources"]
    assert ("archive", archived["start"]) in [(s["source"], s["start"]) for s in sources]
    edge_only = [s for s in sources if s["source"] == "edge" and s["end"] - s["start"] >= 8]
    assert edge_only, sources
    at = (archived["start"] + archived["end"]) / 2
    edge_at = edge_only[-1]["end"] - 2.5
    # The edge sends previews in its lowest class, which waits while any video of the site
    # is watched: earlier tests' streams must have ended.
    wait_until(lambda: not _upstreams(system), 30, "earlier tests' upstreams to stop")
    shots = Path("/tmp/fsv-regulator-pages")
    shots.mkdir(exist_ok=True)
    seen = browse(
        timeout=420, mode="scrub", site=SITE, camera=CAMERA, at=at, edgeAt=edge_at,
        shots=str(shots), **_login(system, "inspector-a"),
    )  # fmt: skip
    assert seen["errors"] == [] and seen["consoleErrors"] == [] and seen["missing"] == []
    drawn = seen["drawn"]
    assert drawn["span"] == 300 and drawn["archive"] >= 1 and drawn["edge"] >= 1
    assert "城市存档" in drawn["legend"] and "企业端录像" in drawn["legend"]
    # Each part says which stream plays there: the main stream here (none archived of sub).
    titles = dict((cls, title) for cls, title in drawn["titles"])
    assert titles["src archive"].endswith(" · 主码流") and titles["src edge"].endswith(" · 主码流")
    assert "城市存档（子码流）" in drawn["legend"]
    # Played from the archive (then, maybe already, from the edge where the archive ends).
    tags = seen["playingFrom"]
    assert tags[0] == ["来源：城市存档 · 主码流", "source-tag archive", "main"], tags
    assert all(t in (tags[0], ["来源：企业端 · 主码流", "source-tag edge", "main"]) for t in tags)
    # One preview from the archive (decoded at central), one sent by the edge.
    assert seen["archived"]["width"] == 192 and seen["edge"]["width"] == 192
    source = {t["url"]: t["source"] for t in seen["thumbs"]}
    assert source[seen["archived"]["url"]] == "archive", seen["thumbs"]
    assert source[seen["edge"]["url"]] == "edge", seen["thumbs"]
    assert all(t["status"] == 200 for t in seen["thumbs"]), seen["thumbs"]
    # Keys at the 5-minute zoom step from where playback is: Shift+← 50 s back (the clock
    # follows), Shift+→ 50 s on, → 5 s on. Each step's size is exact; it starts where the
    # playhead was read just before the press (paused, but a loaded box may still be settling
    # the previous seek, so a little slack there).
    steps = (seen["back"], seen["forth"], seen["right"])
    for (before, start, end), size in zip(steps, (-50, 50, 5), strict=True):
        assert end - start == pytest.approx(size, abs=0.01), (before, start, end)
        assert start == pytest.approx(before, abs=2.5), (before, start, end)
    assert seen["forth"][1] == pytest.approx(seen["back"][2], abs=2.5)
    assert seen["clockAfter"] != "--:--:--"
    assert seen["paused"] is True and seen["resumed"] is True, (seen["paused"], seen["resumed"])
    sel = seen["selection"]
    assert sel["bar"] and sel["shown"] and sel["text"].startswith("已选")
    assert 4 <= sel["range"][1] - sel["range"][0] <= 6
    exported = seen["exported"]
    assert exported["progress"] == 3 and exported["state"] == "导出完成", (exported, sel)
    for size, page in seen["sizes"].items():
        assert page["scrollWidth"] <= page["innerWidth"], size
    clip = tmp_path / "selection.mp4"
    clip.write_bytes(system.api("GET", seen["exported"]["href"], user="inspector-a", raw=True))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width:format=duration",
         "-of", "json", str(clip)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(probe.stdout)
    assert info["streams"][0]["codec_name"] == "h264" and info["streams"][0]["width"] == 1920
    assert 3.0 <= float(info["format"]["duration"]) <= 8.0
