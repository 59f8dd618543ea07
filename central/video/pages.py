"""The live wall and replay pages, in the layout every central page shares."""

from __future__ import annotations

from aiohttp import web

from central.web import page_response

_STYLES = ("live-wall.css",)


async def live_page(request: web.Request) -> web.Response:
    """The live wall."""
    return page_response(
        request,
        "page.live",
        "live.html",
        ("live-player.js", "updates.js", "live.js"),
        "/live",
        body_class="wide",  # the wall takes the whole width of the screen
        styles=_STYLES,
    )


async def replay_page(request: web.Request) -> web.Response:
    """Replay with timeline and export."""
    return page_response(
        request,
        "page.replay",
        "replay.html",
        ("live-player.js", "replay-timeline.js", "replay.js"),
        "/replay",
        styles=_STYLES,
    )


def add_video_pages(app: web.Application) -> None:
    """Register /live and /replay."""
    app.router.add_get("/live", live_page)
    app.router.add_get("/replay", replay_page)
