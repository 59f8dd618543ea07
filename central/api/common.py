"""Shared handler plumbing: JSON errors, who is calling, CSRF, input models, audit entries."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ValidationError

from central.api.jsonio import dumps, loads_strict, non_finite_path
from central.errors import (
    AuthError,
    CentralError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ThrottledError,
)
from central.regulation.audit import AuditEntry
from central.regulation.roles import Permission, can
from central.regulation.throttle import client_address
from central.regulation.users import Session, User
from central.services import Services

log = logging.getLogger(__name__)

SERVICES = web.AppKey("regulator_services", Services)
SESSION = web.RequestKey("fsv_session", Session)
COOKIE = "fsv_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_JSON_BYTES = 1 << 20
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

M = TypeVar("M", bound=BaseModel)

_STATUS: list[tuple[type[CentralError], int]] = [
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (AuthError, 401),
    (ThrottledError, 429),
    (ConflictError, 409),
    (InvalidInputError, 400),
]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response (UTF-8, non-ASCII kept readable)."""
    return web.json_response(data, status=status, dumps=dumps)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """The one shape of every API error: ``{"error": {"status", "message", ...}}``."""
    return json_response({"error": {"status": status, "message": message, **extra}}, status)


@web.middleware
async def nul_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse (400) a URL whose path or query holds a NUL character (`%00`): no name, id or
    filter has a use for one, and PostgreSQL cannot compare or store text holding it."""
    query = request.query
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in query.items()):
        message = "the URL holds a NUL character (%00)"
        if request.path.startswith("/api/"):
            return error_response(400, message)
        raise web.HTTPBadRequest(text=message)
    return await handler(request)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn domain errors and HTTP errors under /api/ into JSON error bodies."""
    try:
        return await handler(request)
    except CentralError as e:
        for cls, status in _STATUS:
            if isinstance(e, cls):
                resp = error_response(status, str(e))
                if isinstance(e, ThrottledError):
                    resp.headers["Retry-After"] = str(int(e.retry_after) + 1)
                return resp
        log.exception("unexpected domain error on %s", request.path)
        return error_response(500, "internal error")
    except web.HTTPException as e:
        if not request.path.startswith("/api/") or e.status < 400:
            raise
        # aiohttp's default text is "404: Not Found"; a handler's own text is the message.
        default = f"{e.status}: {e.reason}"
        resp = error_response(e.status, e.reason if e.text in (None, "", default) else e.text)
        for name in ("Retry-After", "WWW-Authenticate", "Allow"):
            if name in e.headers:
                resp.headers[name] = e.headers[name]
        return resp


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Attach the caller's session (bearer token or cookie) and enforce CSRF on cookie writes.

    Routes decide for themselves whether a session is required (`current_user`); routes of
    other parts of central (media upload by edges) are left alone when no session is shown.
    """
    services = request.app[SERVICES]
    header = request.headers.get("Authorization", "")
    session: Session | None = None
    if header.lower().startswith("bearer ") and request.path.startswith("/api/v1/"):
        try:
            session = await run_db(services.sessions.resolve, header[7:].strip(), "bearer")
        except AuthError:
            session = None
    elif COOKIE in request.cookies:
        try:
            session = await run_db(services.sessions.resolve, request.cookies[COOKIE], "cookie")
        except AuthError:
            session = None
        if session is not None and request.method in _UNSAFE:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return error_response(403, f"missing or wrong {CSRF_HEADER} header")
    if session is not None:
        request[SESSION] = session
        if session.scope == "read" and request.method in _UNSAFE:
            return error_response(403, "this API token is read-only")
        if session.purpose == "token" and await services.token_uses.due_now(session.token_id):
            detail = {"token": session.token_id, "name": session.label, "first": request.path}
            await audit(request, "token_used", f"token:{session.token_id}", detail)
    return await handler(request)


def current_session(request: web.Request) -> Session:
    """The caller's session; 401 if not signed in."""
    if SESSION not in request:
        raise AuthError("sign in first (session cookie or Authorization: Bearer token)")
    return request[SESSION]


def current_user(request: web.Request, permission: Permission | None = None) -> User:
    """The signed-in user, checked for `permission`; 401/403 otherwise."""
    user = current_session(request).user
    if permission is not None and not can(user.role, permission):
        raise ForbiddenError(f"a {user.role.value} may not {permission.value.replace('_', ' ')}")
    return user


def services(request: web.Request) -> Services:
    """The regulator services of the application."""
    return request.app[SERVICES]


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body; 400 with every problem named otherwise."""
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BYTES, actual_size=len(raw))
    # The strict parse refuses NaN/Infinity/overflow; pydantic then validates the same bytes.
    loads_strict(raw or b"{}")
    try:
        return _finite(model.model_validate_json(raw or b"{}"))
    except ValidationError as e:
        raise InvalidInputError(_problems(e)) from e


def read_query(request: web.Request, model: type[M]) -> M:
    """Parse and validate the query string; 400 naming each bad parameter."""
    try:
        return _finite(model.model_validate(dict(request.query)))
    except ValidationError as e:
        raise InvalidInputError(_problems(e)) from e


def _finite(parsed: M) -> M:
    """`parsed` if it holds no NaN or infinity (e.g. `?speed=inf`); InvalidInputError otherwise."""
    where = non_finite_path(parsed.model_dump())
    if where is not None:
        raise InvalidInputError(f"{where}: must be a finite number")
    return parsed


def _problems(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_time(value: str | None) -> float | None:
    """A query time: epoch seconds or ISO 8601 with a zone; None when absent."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise InvalidInputError(f"not a time: {value!r} (a finite number of seconds)")
        return number
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidInputError(f"not a time: {value!r} (epoch seconds or ISO 8601)") from e
    if dt.tzinfo is None:
        raise InvalidInputError(f"time {value!r} needs a zone (e.g. Z or +08:00)")
    return dt.timestamp()


def client_ip(request: web.Request) -> str:
    """The caller's address: the peer, or what a trusted proxy (`web.trusted_proxies`) says."""
    trusted = request.app[SERVICES].web.trusted_proxies
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


async def audit(
    request: web.Request,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    *,
    user: User | None = None,
    org_path: str | None = None,
) -> None:
    """Append an audit entry about the current request."""
    session = request.get(SESSION)
    who = user or (session.user if session is not None else None)
    entry = AuditEntry(
        action=action,
        target=target,
        detail=detail,
        user_id=who.id if who else None,
        username=who.username if who else "",
        ip=client_ip(request),
        org_path=org_path,
    )
    await run_db(services(request).audit.write, entry)


T = TypeVar("T")


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous database call in a worker thread (the loop never blocks on SQLite)."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def path_int(request: web.Request, name: str) -> int:
    """An integer path parameter; 404 when it is not one (no such object)."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFoundError(f"{name} {request.match_info[name]!r} not found") from None


def same_origin(request: web.Request, base_url: str) -> bool:
    """True unless a browser says the socket is opened from another site.

    Browsers always send `Origin` on a WebSocket handshake; a page of another site may open
    one to central (the session cookie is SameSite=Strict, so it would not be signed in,
    but it is refused outright). Clients that are no browser send none and pass.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc.lower()
    allowed = {request.host.lower(), urlsplit(base_url).netloc.lower()}
    return host in allowed
