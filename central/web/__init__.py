"""HTML pages of central: one layout with the navigation every page (and later ones) shares."""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"

# (href, label): the live wall and replay pages belong to the video relay and slot in here.
NAV = (
    ("/inbox", "预警 Inbox"),
    ("/live", "实时 Live"),
    ("/replay", "回放 Replay"),
    ("/reports", "报表 Reports"),
)


def render_page(title: str, main: str, scripts: tuple[str, ...] = (), active: str = "") -> str:
    """A full page: header with navigation, the `main` HTML, then the page's scripts."""
    nav = "".join(
        f'<a href="{href}"{" class=active" if href == active else ""}>{html.escape(label)}</a>'
        for href, label in NAV
    )
    tags = "".join(f'<script src="/static/{s}" defer></script>' for s in ("app.js", *scripts))
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)} · 食安视频监管</title>"
        f'<link rel="stylesheet" href="/static/style.css">{tags}</head><body>'
        f'<header class="top"><strong>食安视频监管</strong><nav>{nav}</nav>'
        '<span id="who"></span><button id="logout" hidden>退出 Sign out</button></header>'
        f'<main id="main">{main}</main></body></html>'
    )


LOGIN = """<form id="login" class="card"><h1>登录 Sign in</h1>
<label>用户名 User <input name="username" autocomplete="username" required></label>
<label>密码 Password <input name="password" type="password" autocomplete="current-password"
required></label><button>登录 Sign in</button><p id="error" role="alert"></p></form>"""

INBOX = """<section class="filters"><select id="state"><option value="">全部 all</option>
<option value="new,acknowledged,reopened">待处理 open</option>
<option value="rectification_requested">待整改 requested</option>
<option value="rectification_submitted">待复核 submitted</option>
<option value="closed">已关闭 closed</option></select>
<label><input type="checkbox" id="overdue"> 逾期 overdue</label>
<button id="push">手机推送 Enable push</button></section>
<table id="alerts"><thead><tr><th>时间 Time</th><th>企业 Site</th><th>岗位 Station</th>
<th>类型 Kind</th><th>状态 State</th></tr></thead><tbody></tbody></table>
<p><button id="more">更多 More</button></p><section id="detail" class="card" hidden></section>"""

REPORTS = """<form id="report" class="filters">
<label>从 From <input type="date" name="from"></label>
<label>到 To <input type="date" name="to"></label><button>生成 Build</button>
<a id="csv" href="#">CSV</a> <a id="print" href="#" target="_blank">打印 Print</a></form>
<pre id="out"></pre>"""


def _page(title: str, main: str, scripts: tuple[str, ...], active: str) -> web.Response:
    return web.Response(
        text=render_page(title, main, scripts, active),
        content_type="text/html",
        charset="utf-8",
    )


async def login_page(_request: web.Request) -> web.Response:
    """The sign-in form."""
    return _page("登录", LOGIN, ("login.js",), "")


async def inbox_page(_request: web.Request) -> web.Response:
    """The alert inbox with the rectification workflow."""
    return _page("预警", INBOX, ("inbox.js",), "/inbox")


async def reports_page(_request: web.Request) -> web.Response:
    """Reports of the user's scope."""
    return _page("报表", REPORTS, ("reports.js",), "/reports")


async def service_worker(_request: web.Request) -> web.FileResponse:
    """The push service worker, served from the root so its scope covers every page."""
    return web.FileResponse(
        STATIC_DIR / "sw.js",
        headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
    )


async def root(_request: web.Request) -> web.Response:
    """Home: the inbox."""
    raise web.HTTPFound("/inbox")


def add_pages(app: web.Application) -> None:
    """Register the HTML pages and static files."""
    app.router.add_get("/", root)
    app.router.add_get("/login", login_page)
    app.router.add_get("/inbox", inbox_page)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
