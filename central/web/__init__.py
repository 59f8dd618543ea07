"""HTML pages of central: one layout (header, role-aware menu, language) every page shares."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from central.api.common import SESSION
from central.keys import CONFIG
from central.regulation.roles import Permission, can
from central.web import i18n

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"

# (href, message key, permission needed to see it in the menu)
NAV = (
    ("/dashboard", "nav.dashboard", Permission.VIEW_REPORTS),
    ("/inbox", "nav.inbox", Permission.VIEW),
    ("/live", "nav.live", Permission.WATCH_VIDEO),
    ("/replay", "nav.replay", Permission.WATCH_VIDEO),
    ("/reports", "nav.reports", Permission.VIEW_REPORTS),
    ("/label", "nav.label", Permission.LABEL),
    # Every role with an administration tab (public links at least) gets the entry.
    ("/admin", "nav.admin", Permission.MANAGE_PUBLIC),
)

# The administration pages: (href, message key, permission, fragment, script). The header's
# "/admin" entry opens the first of them the role may use; each shows the tabs it may use.
ADMIN_TABS = (
    ("/admin/users", "admin.tab.users", Permission.MANAGE_USERS, "admin_users.html",
     "admin-users.js"),
    ("/admin/orgs", "admin.tab.orgs", Permission.MANAGE_ORGS, "admin_orgs.html",
     "admin-orgs.js"),
    ("/admin/sites", "admin.tab.sites", Permission.MANAGE_ORGS, "admin_sites.html",
     "admin-sites.js"),
    ("/admin/links", "admin.tab.links", Permission.MANAGE_PUBLIC, "links.html",
     "admin-links.js"),
    ("/admin/webhooks", "admin.tab.webhooks", Permission.MANAGE_WEBHOOKS, "webhooks.html",
     "admin-webhooks.js"),
    ("/admin/audit", "admin.tab.audit", Permission.VIEW_AUDIT, "audit.html",
     "admin-audit.js"),
)  # fmt: skip


def menu(request: web.Request, lang: str, active: str) -> str:
    """The links the signed-in user's role may use (none before sign-in)."""
    session = request.get(SESSION)
    if session is None:
        return ""
    role = session.user.role
    return "".join(
        f'<a href="{href}"{" class=active" if href == active else ""}>'
        f"{html.escape(i18n.t(lang, key))}</a>"
        for href, key, permission in NAV
        if can(role, permission)
    )


def render_page(
    request: web.Request,
    title_key: str,
    fragment: str,
    scripts: tuple[str, ...] = (),
    active: str = "",
    body_class: str = "",
    styles: tuple[str, ...] = (),
) -> str:
    """A full page in the caller's language: header with menu, the fragment, its scripts."""
    lang = i18n.lang_of(request)
    main = i18n.fill(lang, fragment)
    tags = '<script src="/i18n.js" defer></script>' + "".join(
        f'<script src="/static/{s}" defer></script>' for s in ("app.js", *scripts)
    )
    links = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' + "".join(
        f'<link rel="stylesheet" href="/static/{s}">' for s in ("style.css", *styles)
    )
    title = f"{i18n.t(lang, title_key)} · {i18n.t(lang, 'app.title')}"
    other = "en" if lang == "zh-CN" else "zh-CN"
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>{links}{tags}</head>"
        f'<body class="{html.escape(body_class)}"><header class="top">'
        f'<a class="brand" href="/">{html.escape(i18n.t(lang, "app.title"))}</a>'
        f'<nav class="menu">{menu(request, lang, active)}</nav>'
        '<span id="who" class="who"></span>'
        f'<button id="lang" class="lang" data-lang="{other}" type="button" '
        f'title="{html.escape(i18n.t(lang, "lang.switch"))}">'
        f'<span class="long">{html.escape(i18n.t(lang, "lang.switch"))}</span>'
        f'<span class="short">{html.escape(i18n.t(lang, "lang.short"))}</span></button>'
        f'<button id="logout" class="logout" type="button" hidden>'
        f"{html.escape(i18n.t(lang, 'auth.sign_out'))}</button></header>"
        f'<main id="main">{main}</main></body></html>'
    )


def page_response(
    request: web.Request,
    title_key: str,
    fragment_file: str,
    scripts: tuple[str, ...],
    active: str,
    body_class: str = "",
    styles: tuple[str, ...] = (),
) -> web.Response:
    """A page built from ``central/web/<fragment_file>`` (its CSP comes from web/security.py)."""
    fragment = (WEB_DIR / fragment_file).read_text(encoding="utf-8")
    text = render_page(request, title_key, fragment, scripts, active, body_class, styles)
    return web.Response(
        text=text,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    return page_response(request, "page.login", "login.html", ("login.js",), "")


async def inbox_page(request: web.Request) -> web.Response:
    """The alert inbox with the rectification workflow."""
    return page_response(request, "page.inbox", "inbox.html", ("updates.js", "inbox.js"), "/inbox")


async def label_page(request: web.Request) -> web.Response:
    """The labelling page: verdicts and boxes on alert frames, the training labels."""
    return page_response(
        request, "page.label", "label.html", ("label.js",), "/label", styles=("label.css",)
    )


async def reports_page(request: web.Request) -> web.Response:
    """Reports of the user's scope."""
    return page_response(
        request,
        "page.reports",
        "reports.html",
        ("vendor/echarts/echarts.common.min.js", "charts.js", "reports.js"),
        "/reports",
    )


async def dashboard_page(request: web.Request) -> web.Response:
    """The monitoring centre's big screen."""
    return page_response(
        request,
        "page.dashboard",
        "dashboard.html",
        ("vendor/echarts/echarts.common.min.js", "charts.js", "live-player.js", "dashboard.js"),
        "/dashboard",
        body_class="bigscreen",
        styles=("dashboard.css",),
    )


def admin_tabs(request: web.Request, lang: str, active: str) -> str:
    """The tab bar of the administration pages, limited to what the role may use."""
    session = request.get(SESSION)
    role = session.user.role if session is not None else None
    current = ' class="active" aria-current="page"'
    links = "".join(
        f'<a href="{href}"{current if href == active else ""}>{html.escape(i18n.t(lang, key))}</a>'
        for href, key, permission, _fragment, _script in ADMIN_TABS
        if role is not None and can(role, permission)
    )
    return f'<nav class="admin-tabs">{links}</nav>'


def admin_handler(href: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of the administration page at `href`."""
    _, key, permission, fragment_file, script = next(t for t in ADMIN_TABS if t[0] == href)

    async def handler(request: web.Request) -> web.Response:
        session = request.get(SESSION)
        lang = i18n.lang_of(request)
        if session is not None and not can(session.user.role, permission):
            # Signed in without the right: say so (the API refuses the data anyway).
            text = render_page(
                request, key, '<p class="error">{{t:admin.no_access}}</p>', (), "/admin"
            )
            return web.Response(text=text, status=403, content_type="text/html", charset="utf-8")
        fragment = admin_tabs(request, lang, href) + (WEB_DIR / fragment_file).read_text("utf-8")
        text = render_page(
            request,
            key,
            fragment,
            ("admin.js", script),
            "/admin",
            "wide",
            ("admin.css", "admin-tools.css"),
        )
        return web.Response(
            text=text, content_type="text/html", charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )  # fmt: skip

    return handler


async def admin_home(request: web.Request) -> web.Response:
    """The first administration page the signed-in role may use (sign-in page otherwise)."""
    session = request.get(SESSION)
    if session is None:
        raise web.HTTPFound("/login")
    for href, _key, permission, _fragment, _script in ADMIN_TABS:
        if can(session.user.role, permission):
            raise web.HTTPFound(href)
    raise web.HTTPFound("/inbox")


async def i18n_script(request: web.Request) -> web.Response:
    """The catalogue of the caller's language and the site's time zone, as a script."""
    lang = i18n.lang_of(request)
    return web.Response(
        text=i18n.script(lang, request.app[CONFIG].web.timezone),
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Vary": "Cookie"},
    )


async def service_worker(_request: web.Request) -> web.FileResponse:
    """The push service worker, served from the root so its scope covers every page."""
    return web.FileResponse(
        STATIC_DIR / "sw.js",
        headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
    )


async def root(_request: web.Request) -> web.Response:
    """Home: the inbox (the wall's big screen is /dashboard)."""
    raise web.HTTPFound("/inbox")


def add_pages(app: web.Application) -> None:
    """Register the HTML pages and static files."""
    app.router.add_get("/", root)
    app.router.add_get("/login", login_page)
    app.router.add_get("/inbox", inbox_page)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/label", label_page)
    app.router.add_get("/dashboard", dashboard_page)
    app.router.add_get("/admin", admin_home)
    for href, *_ in ADMIN_TABS:
        app.router.add_get(href, admin_handler(href))
    app.router.add_get("/i18n.js", i18n_script)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
