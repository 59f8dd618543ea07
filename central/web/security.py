"""Security headers of every response, set in one place (the app's response hook).

- Pages (text/html) get a strict Content-Security-Policy: scripts, styles and everything
  else only from central itself, no inline script or style, no framing, no plugins.
- Media and every other non-page response get `sandbox; default-src 'none'`: opened directly
  in a tab, a file cannot run script or load anything, whatever its bytes.
- Everything gets `nosniff` (a JSON or image response is never read as HTML), a strict
  referrer policy (public link tokens never leak through Referer) and no framing.
"""

from __future__ import annotations

from aiohttp import web

from central.ingest.media_types import ALLOWED_TYPES, safe_filename

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MEDIA_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
# Scripts and style sheets run under the policy of the page that loads them; a worker script
# (sw.js, MSE workers) would run under its own, so these are left without one.
_SUBRESOURCE_TYPES = ("text/javascript", "application/javascript", "text/css")
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: the headers above, on every response of the app."""
    for name, value in COMMON.items():
        response.headers.setdefault(name, value)
    if "Content-Security-Policy" in response.headers:
        return
    ctype = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if ctype == "text/html":
        response.headers["Content-Security-Policy"] = PAGE_CSP
    elif ctype not in _SUBRESOURCE_TYPES:
        response.headers["Content-Security-Policy"] = MEDIA_CSP


def media_headers(content_type: str, name: str) -> dict[str, str]:
    """Headers of a served snapshot, clip or photo: its checked type, never a page.

    A type off the allow-list (a row from before the list existed) goes out as an
    `application/octet-stream` attachment.
    """
    checked = content_type.lower() if content_type.lower() in ALLOWED_TYPES else ""
    disposition = "inline" if checked else "attachment"
    return {
        "Content-Type": checked or "application/octet-stream",
        "Content-Disposition": f'{disposition}; filename="{safe_filename(name, checked)}"',
        "Content-Security-Policy": MEDIA_CSP,
        "X-Content-Type-Options": "nosniff",
    }


def install(app: web.Application) -> None:
    """Add the header hook to `app` (call once, in the app factory)."""
    app.on_response_prepare.append(add_security_headers)
