"""The live wall and replay pages, in the layout every central page shares."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from central.web import render_page

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_STYLE = '<link rel="stylesheet" href="/static/live-wall.css">'


def _page(title: str, fragment: str, scripts: tuple[str, ...], active: str) -> web.Response:
    main = _STYLE + (WEB_DIR / fragment).read_text(encoding="utf-8")
    return web.Response(
        text=render_page(title, main, scripts, active),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def live_page(_request: web.Request) -> web.Response:
    """The live wall."""
    return _page("实时 Live", "live.html", ("live-player.js", "live.js"), "/live")


async def replay_page(_request: web.Request) -> web.Response:
    """Replay with timeline and export."""
    return _page("回放 Replay", "replay.html", ("live-player.js", "replay.js"), "/replay")


def add_video_pages(app: web.Application) -> None:
    """Register /live and /replay."""
    app.router.add_get("/live", live_page)
    app.router.add_get("/replay", replay_page)
