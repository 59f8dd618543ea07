"""Organisations, edge sites and cameras."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    current_user,
    json_response,
    path_int,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import ConflictError
from central.keys import CONFIG
from central.regulation.roles import Permission

routes = RouteTable()

Level = Literal["province", "city", "county", "enterprise"]


class OrgIn(BaseModel):
    """A new organisation; enterprises need a type (slaughterhouse or canteen)."""

    parent_id: int | None = None
    level: Level
    name: str = Field(min_length=1, max_length=200)
    enterprise_type: Literal["slaughterhouse", "canteen"] | None = None
    address: str = Field("", max_length=500)
    licence_no: str = Field("", max_length=100)
    contact: str = Field("", max_length=100)
    phone: str = Field("", max_length=50)
    public_info: str = Field("", max_length=2000, description="shown on the public kitchen page")


class OrgPatch(BaseModel):
    """Descriptive fields to change (the place in the tree never changes)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    enterprise_type: Literal["slaughterhouse", "canteen"] | None = None
    address: str | None = Field(None, max_length=500)
    licence_no: str | None = Field(None, max_length=100)
    contact: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=50)
    public_info: str | None = Field(None, max_length=2000)


class OrgQuery(BaseModel):
    """Filters of the organisation list."""

    under: int | None = Field(None, description="only this organisation's subtree")
    level: Level | None = None


class OrgMove(BaseModel):
    """The new parent of an organisation (of the level its parent must have)."""

    parent_id: int


class SiteIn(BaseModel):
    """A new edge site (one NVR box) of an enterprise."""

    org_id: int
    site_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str = Field("", max_length=200)


class SiteQuery(BaseModel):
    """Filters of the site list."""

    org_id: int | None = None


class CameraQuery(BaseModel):
    """Filters of the camera list."""

    site_id: str | None = None


class CameraPatch(BaseModel):
    """Name and station of a camera."""

    name: str | None = Field(None, min_length=1, max_length=200)
    station: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")


@routes.route("GET", "/api/v1/orgs", summary="Organisations in scope", tag="orgs", query=OrgQuery)
async def list_orgs(request: web.Request) -> web.Response:
    """Organisations the caller may see, optionally below one and of one level."""
    user = current_user(request)
    q = read_query(request, OrgQuery)
    rows = await run_db(services(request).orgs.list_orgs, user.scope, under=q.under, level=q.level)
    return json_response({"items": rows})


@routes.route("GET", "/api/v1/orgs/tree", summary="Organisation tree in scope", tag="orgs")
async def org_tree(request: web.Request) -> web.Response:
    """The caller's subtree, nested."""
    user = current_user(request)
    return json_response({"items": await run_db(services(request).orgs.tree, user.scope)})


@routes.route(
    "POST",
    "/api/v1/orgs",
    summary="Create an organisation",
    tag="orgs",
    body=OrgIn,
    statuses=(201,),
)
async def create_org(request: web.Request) -> web.Response:
    """Admins build the tree."""
    user = current_user(request, Permission.MANAGE_ORGS)
    body = await read_body(request, OrgIn)
    info = body.model_dump(exclude={"parent_id", "level"})
    org = await run_db(
        services(request).orgs.create_org, user.scope, body.parent_id, body.level, **info
    )
    await audit(
        request, "org_create", f"org:{org['id']}", body.model_dump(), org_path=org["org_path"]
    )
    return json_response(org, status=201)


@routes.route("GET", "/api/v1/orgs/{org_id}", summary="One organisation", tag="orgs")
async def get_org(request: web.Request) -> web.Response:
    """One organisation in scope."""
    user = current_user(request)
    org_id = path_int(request, "org_id")
    return json_response(await run_db(services(request).orgs.get_org, user.scope, org_id))


@routes.route(
    "PATCH", "/api/v1/orgs/{org_id}", summary="Change an organisation", tag="orgs", body=OrgPatch
)
async def patch_org(request: web.Request) -> web.Response:
    """Admins correct names, addresses, licences and contacts."""
    user = current_user(request, Permission.MANAGE_ORGS)
    org_id = path_int(request, "org_id")
    changes = (await read_body(request, OrgPatch)).model_dump(exclude_unset=True)
    org = await run_db(services(request).orgs.update_org, user.scope, org_id, changes)
    await audit(request, "org_update", f"org:{org_id}", changes, org_path=org["org_path"])
    return json_response(org)


@routes.route(
    "POST",
    "/api/v1/orgs/{org_id}/move",
    summary="Move an organisation under another parent",
    tag="orgs",
    body=OrgMove,
)
async def move_org(request: web.Request) -> web.Response:
    """Admins move a city, county or enterprise, with everything below it, within their scope."""
    user = current_user(request, Permission.MANAGE_ORGS)
    org_id = path_int(request, "org_id")
    body = await read_body(request, OrgMove)
    org = await run_db(services(request).orgs.move_org, user.scope, org_id, body.parent_id)
    old_path = org.pop("old_path")
    detail = {"parent_id": body.parent_id, "from": old_path, "to": org["org_path"]}
    # One entry where the organisation was and one where it is now: both subtrees see it.
    for path in dict.fromkeys((old_path, org["org_path"])):
        await audit(request, "org_move", f"org:{org_id}", detail, org_path=path)
    return json_response(org)


@routes.route("GET", "/api/v1/sites", summary="Edge sites in scope", tag="sites", query=SiteQuery)
async def list_sites(request: web.Request) -> web.Response:
    """Sites with their agent status."""
    user = current_user(request)
    q = read_query(request, SiteQuery)
    return json_response(
        {"items": await run_db(services(request).orgs.list_sites, user.scope, q.org_id)}
    )


@routes.route(
    "POST",
    "/api/v1/sites",
    summary="Register an edge site",
    tag="sites",
    body=SiteIn,
    statuses=(201,),
)
async def create_site(request: web.Request) -> web.Response:
    """Register a site under an enterprise, and issue its MQTT login when a broker is set.

    The password is shown only in this answer, with the edge's enrolment snippet.
    """
    user = current_user(request, Permission.MANAGE_ORGS)
    body = await read_body(request, SiteIn)
    site = await run_db(
        services(request).orgs.create_site, user.scope, body.org_id, body.site_id, body.name
    )
    await audit(
        request, "site_create", f"site:{body.site_id}", body.model_dump(), org_path=site["org_path"]
    )
    config = request.app[CONFIG]
    if config.broker is not None:
        site = {**site, **(await _issue_credentials(request, body.site_id))}
    return json_response(site, status=201)


async def _issue_credentials(request: web.Request, site_id: str) -> dict[str, object]:
    """A fresh broker password for the site and its enrolment: the snippet and both files."""
    from central.ingest.accounts import enrolment, enrolment_parts, issue_site_credentials

    config = request.app[CONFIG]
    if config.broker is None:
        raise ConflictError("no `broker` section: central cannot issue site credentials")
    creds = await run_db(issue_site_credentials, config.broker, site_id, config.mqtt.username)
    section, secret = enrolment_parts(config.broker, creds)
    return {
        "mqtt": {"username": creds.site, "password": creds.password},
        "enrolment": enrolment(config.broker, creds),
        "files": {f"{site_id}.edge.yaml": section, f"{site_id}.credentials.yaml": secret},
    }


@routes.route(
    "POST",
    "/api/v1/sites/{site_id}/credentials",
    summary="Issue a site new broker credentials",
    tag="sites",
)
async def reset_site_credentials(request: web.Request) -> web.Response:
    """Replace the site's broker password (the old one stops working at the broker's reload);
    the new one is shown only in this answer, with the enrolment files for the edge box."""
    user = current_user(request, Permission.MANAGE_ORGS)
    site_id = request.match_info["site_id"]
    site = await run_db(services(request).orgs.get_site, user.scope, site_id)
    issued = await _issue_credentials(request, site_id)
    await audit(request, "site_credentials_reset", f"site:{site_id}", {}, org_path=site["org_path"])
    return json_response({**site, **issued})


@routes.route("GET", "/api/v1/sites/{site_id}", summary="One edge site", tag="sites")
async def get_site(request: web.Request) -> web.Response:
    """One site in scope."""
    user = current_user(request)
    site = await run_db(services(request).orgs.get_site, user.scope, request.match_info["site_id"])
    return json_response(site)


@routes.route(
    "GET", "/api/v1/cameras", summary="Cameras in scope", tag="cameras", query=CameraQuery
)
async def list_cameras(request: web.Request) -> web.Response:
    """Cameras with station, name and online state."""
    user = current_user(request)
    q = read_query(request, CameraQuery)
    rows = await run_db(services(request).orgs.list_cameras, user.scope, q.site_id)
    return json_response({"items": rows})


@routes.route(
    "GET", "/api/v1/sites/{site_id}/cameras/{camera_id}", summary="One camera", tag="cameras"
)
async def get_camera(request: web.Request) -> web.Response:
    """One camera in scope."""
    user = current_user(request)
    m = request.match_info
    cam = await run_db(services(request).orgs.get_camera, user.scope, m["site_id"], m["camera_id"])
    return json_response(cam)


@routes.route(
    "PATCH",
    "/api/v1/sites/{site_id}/cameras/{camera_id}",
    summary="Rename a camera or set its station",
    tag="cameras",
    body=CameraPatch,
)
async def patch_camera(request: web.Request) -> web.Response:
    """Admins name cameras and place them at stations."""
    user = current_user(request, Permission.MANAGE_ORGS)
    m = request.match_info
    svc = services(request)
    cam = await run_db(svc.orgs.get_camera, user.scope, m["site_id"], m["camera_id"])
    body = await read_body(request, CameraPatch)
    await run_db(
        svc.orgs.set_camera_labels,
        m["site_id"],
        m["camera_id"],
        name=body.name,
        station=body.station,
    )
    await audit(
        request,
        "camera_update",
        f"camera:{m['site_id']}/{m['camera_id']}",
        body.model_dump(exclude_unset=True),
        org_path=cam["org_path"],
    )
    return json_response(
        await run_db(svc.orgs.get_camera, user.scope, m["site_id"], m["camera_id"])
    )
