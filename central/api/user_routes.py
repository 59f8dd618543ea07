"""Users (admins manage them) and each user's own push filters."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from central.alerts.push_rules import PushFilters
from central.api.common import (
    audit,
    current_user,
    json_response,
    path_int,
    read_body,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import ConflictError
from central.regulation.roles import ROLE_LEVEL, Permission, Role, grantable_roles

routes = RouteTable()


class UserIn(BaseModel):
    """A new user attached to an organisation of the level their role needs."""

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=10, max_length=256)
    role: Role
    org_id: int | None = None
    display_name: str = Field("", max_length=100)


class UserPatch(BaseModel):
    """Password reset, (de)activation, another shown name, role or organisation."""

    password: str | None = Field(None, min_length=10, max_length=256)
    disabled: bool | None = None
    display_name: str | None = Field(None, min_length=1, max_length=100)
    role: Role | None = None
    org_id: int | None = Field(None, description="with role: the organisation the role needs")


class RoleOut(BaseModel):
    """A role the caller may grant and the organisation level it belongs to."""

    role: Role
    level: str | None


@routes.route("GET", "/api/v1/users/roles", summary="Roles the caller may grant", tag="users")
async def list_grantable(request: web.Request) -> web.Response:
    """Each role the caller may give to a user, with the organisation level it needs."""
    user = current_user(request, Permission.MANAGE_USERS)
    items = [{"role": r.value, "level": ROLE_LEVEL[r]} for r in grantable_roles(user.role)]
    return json_response({"items": items})


@routes.route("GET", "/api/v1/users", summary="Users in scope", tag="users")
async def list_users(request: web.Request) -> web.Response:
    """Users the caller may manage."""
    user = current_user(request, Permission.MANAGE_USERS)
    users = await run_db(services(request).users.list_users, user.scope)
    return json_response({"items": [u.public() for u in users]})


@routes.route(
    "POST", "/api/v1/users", summary="Create a user", tag="users", body=UserIn, statuses=(201,)
)
async def create_user(request: web.Request) -> web.Response:
    """Admins create regulators and enterprise staff."""
    user = current_user(request, Permission.MANAGE_USERS)
    body = await read_body(request, UserIn)
    new = await run_db(
        services(request).users.create_user,
        user.scope,
        username=body.username,
        password=body.password,
        role=body.role.value,
        org_id=body.org_id,
        display_name=body.display_name,
        granted_by=user.role,
    )
    await audit(
        request,
        "user_create",
        f"user:{new.id}",
        {"username": new.username, "role": new.role.value, "org_id": new.org_id},
        org_path=new.org_path,
    )
    return json_response(new.public(), status=201)


@routes.route("GET", "/api/v1/users/{user_id}", summary="One user", tag="users")
async def get_user(request: web.Request) -> web.Response:
    """One user in scope."""
    user = current_user(request, Permission.MANAGE_USERS)
    found = await run_db(services(request).users.get_user, user.scope, path_int(request, "user_id"))
    return json_response(found.public())


@routes.route(
    "PATCH",
    "/api/v1/users/{user_id}",
    summary="Change a user: password, disabled, shown name, role or organisation",
    tag="users",
    body=UserPatch,
)
async def patch_user(request: web.Request) -> web.Response:
    """Reset a password (signs the user out), disable/enable an account, or change its shown
    name, role and organisation (only to a role the caller may grant, in the caller's scope).

    Nobody disables their own account or changes their own role: an administrator cannot
    lock the last way in by mistake.
    """
    user = current_user(request, Permission.MANAGE_USERS)
    user_id = path_int(request, "user_id")
    body = await read_body(request, UserPatch)
    svc = services(request)
    target = await run_db(svc.users.get_user, user.scope, user_id)
    moves = body.role is not None or "org_id" in body.model_fields_set
    if user_id == user.id and (body.disabled or moves):
        raise ConflictError("you cannot disable your own account or change your own role")
    if body.display_name is not None or moves:
        await run_db(
            svc.users.update_user,
            user.scope,
            user_id,
            granted_by=user.role,
            display_name=body.display_name,
            role=body.role.value if body.role is not None else None,
            org_id=body.org_id,
            move_org="org_id" in body.model_fields_set,
        )
    if body.password is not None:
        await run_db(svc.users.set_password, user.scope, user_id, body.password)
    if body.disabled is not None:
        await run_db(svc.users.set_disabled, user.scope, user_id, body.disabled)
    detail: dict[str, object] = {
        "password_reset": body.password is not None,
        "disabled": body.disabled,
    }
    for key in ("display_name", "role", "org_id"):
        if key in body.model_fields_set:
            detail[key] = getattr(body, key)
    updated = await run_db(svc.users.get_user, user.scope, user_id)
    await audit(request, "user_update", f"user:{user_id}", detail, org_path=target.org_path)
    if updated.org_path != target.org_path:
        # The user moved: the new subtree's auditors see the change as well.
        await audit(request, "user_update", f"user:{user_id}", detail, org_path=updated.org_path)
    return json_response(updated.public())


@routes.route(
    "PUT",
    "/api/v1/me/push-filters",
    summary="Which alerts to push to me",
    tag="push",
    body=PushFilters,
)
async def put_filters(request: web.Request) -> web.Response:
    """Kinds, stations, minimum severity and quiet hours of the caller's pushes."""
    user = current_user(request)
    body = await read_body(request, PushFilters)
    await run_db(services(request).users.set_push_filters, user.id, body.model_dump(mode="json"))
    return json_response(body.model_dump(mode="json"))
