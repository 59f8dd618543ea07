"""API tokens: made with the owner's password, named, scoped, expiring, listed and revoked."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    client_ip,
    current_session,
    current_user,
    json_response,
    path_int,
    read_body,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import AuthError, ForbiddenError, ThrottledError
from central.regulation.roles import Role
from central.regulation.users import User

routes = RouteTable()


class TokenIn(BaseModel):
    """A new API token: its name, scope and lifetime, confirmed with the owner's password."""

    name: str = Field(min_length=1, max_length=100, description="e.g. the script that uses it")
    scope: Literal["read", "full"] = Field("read", description="read: GET requests only")
    days: int = Field(30, ge=1, le=366, description="lifetime (at most web.token_max_days)")
    password: str = Field(
        min_length=1, max_length=256, description="the owner's password, asked again"
    )


@routes.route(
    "POST",
    "/api/v1/auth/tokens",
    summary="Create a named, scoped, expiring API token (shown once)",
    tag="auth",
    body=TokenIn,
    statuses=(201, 401, 429),
)
async def create_token(request: web.Request) -> web.Response:
    """A new API token of the signed-in user, who confirms with their password.

    Asking for the password again means a script running in somebody's page (or a stolen
    cookie) cannot mint a token that outlives the session.
    """
    session = current_session(request)
    user = session.user
    body = await read_body(request, TokenIn)
    svc, client = services(request), client_ip(request)
    throttle = svc.throttle
    wait = await run_db(throttle.begin, user.username, client, throttle.now())
    if wait > 0:
        raise ThrottledError(wait)
    try:
        await run_db(svc.users.authenticate, user.username, body.password)
    except AuthError:
        await audit(request, "login_failed", user.username, {"reason": "token password"})
        raise
    await run_db(throttle.succeeded, user.username, client)
    token, info = await run_db(svc.sessions.create_token, user, body.name, body.scope, body.days)
    await audit(
        request,
        "token_created",
        f"token:{info['id']}",
        {"name": body.name, "scope": body.scope, "expires_at": info["expires_at"]},
    )
    return json_response({**info, "token": token, "token_type": "bearer"}, status=201)


@routes.route("GET", "/api/v1/auth/tokens", summary="My API tokens (no secrets)", tag="auth")
async def my_tokens(request: web.Request) -> web.Response:
    """The caller's live API tokens: id, name, scope, created, expires, last used."""
    user = current_user(request)
    return json_response({"items": await run_db(services(request).sessions.list_tokens, user.id)})


@routes.route(
    "DELETE",
    "/api/v1/auth/tokens/{token_id}",
    summary="Revoke one of my API tokens",
    tag="auth",
    statuses=(200, 404),
)
async def revoke_my_token(request: web.Request) -> web.Response:
    """The token stops working at once."""
    user = current_user(request)
    return await _revoke(request, user, request.match_info["token_id"])


async def _user_for_admin(request: web.Request) -> User:
    admin = current_user(request)
    if admin.role is not Role.ADMIN:
        raise ForbiddenError("only an admin manages other users' tokens")
    return await run_db(services(request).users.get_user, admin.scope, path_int(request, "user_id"))


@routes.route(
    "GET",
    "/api/v1/users/{user_id}/tokens",
    summary="A user's API tokens (admins)",
    tag="users",
    statuses=(200, 403, 404),
)
async def user_tokens(request: web.Request) -> web.Response:
    """An admin lists the live API tokens of a user in their scope."""
    user = await _user_for_admin(request)
    return json_response({"items": await run_db(services(request).sessions.list_tokens, user.id)})


@routes.route(
    "DELETE",
    "/api/v1/users/{user_id}/tokens/{token_id}",
    summary="Revoke a user's API token (admins)",
    tag="users",
    statuses=(200, 403, 404),
)
async def revoke_user_token(request: web.Request) -> web.Response:
    """An admin revokes a token of a user in their scope."""
    user = await _user_for_admin(request)
    return await _revoke(request, user, request.match_info["token_id"])


async def _revoke(request: web.Request, owner: User, token_id: str) -> web.Response:
    token = await run_db(services(request).sessions.revoke_token, owner.id, token_id)
    await audit(
        request,
        "token_revoked",
        f"token:{token_id}",
        {"owner": owner.username, "name": token["name"]},
        org_path=owner.org_path,
    )
    return json_response(token)
