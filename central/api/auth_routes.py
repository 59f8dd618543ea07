"""Sign in and out, who am I (API tokens: token_routes.py)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    COOKIE,
    audit,
    client_ip,
    current_session,
    json_response,
    read_body,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import AuthError, ThrottledError

routes = RouteTable()


class LoginIn(BaseModel):
    """Credentials; `kind` picks a browser cookie session or a bearer token for the API."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    kind: Literal["cookie", "bearer"] = "cookie"


@routes.route(
    "POST",
    "/api/v1/auth/login",
    summary="Sign in; sets the session cookie or returns a bearer token",
    tag="auth",
    body=LoginIn,
    auth=False,
    statuses=(200, 401, 415, 429),
)
async def login(request: web.Request) -> web.Response:
    """Check credentials under the login throttle and open a session."""
    # Only JSON: a cross-site form (text/plain, urlencoded, multipart) cannot send it without
    # a CORS preflight, so no other site can sign a victim into the attacker's account.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the credentials as application/json")
    svc = services(request)
    body = await read_body(request, LoginIn)
    client = client_ip(request)
    throttle = svc.throttle
    # Checked and counted as failed in one step, so guesses sent at once meet the count.
    wait = await run_db(throttle.begin, body.username, client, throttle.now())
    if wait > 0:
        await audit(request, "login_failed", body.username, {"reason": "throttled"})
        raise ThrottledError(wait)
    try:
        user = await run_db(svc.users.authenticate, body.username, body.password)
    except AuthError:
        await audit(request, "login_failed", body.username, {"reason": "bad credentials"})
        raise
    await run_db(throttle.succeeded, body.username, client)
    token, csrf = await run_db(svc.sessions.open_session, user, body.kind)
    await audit(request, "login", user.username, {"kind": body.kind}, user=user)
    if body.kind == "bearer":
        return json_response({"user": user.public(), "token": token, "token_type": "bearer"})
    resp = json_response({"user": user.public(), "csrf_token": csrf})
    resp.set_cookie(
        COOKIE,
        token,
        max_age=int(svc.web.session_hours * 3600),
        httponly=True,
        secure=svc.web.cookie_secure,
        samesite="Strict",
        path="/",
    )
    return resp


@routes.route("POST", "/api/v1/auth/logout", summary="End the current session", tag="auth")
async def logout(request: web.Request) -> web.Response:
    """End the session the request came with, on the server (the cookie alone is not trusted)."""
    session = current_session(request)
    await run_db(services(request).sessions.close_session, session.token_hash)
    services(request).updates.end_session(session.token_hash)
    await audit(request, "logout", session.user.username)
    resp = json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


@routes.route("GET", "/api/v1/auth/me", summary="The signed-in user and CSRF token", tag="auth")
async def me(request: web.Request) -> web.Response:
    """Who the caller is; pages read the CSRF token they must echo from here."""
    session = current_session(request)
    return json_response({"user": session.user.public(), "csrf_token": session.csrf})
