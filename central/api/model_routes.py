"""The model registry and rollouts: list versions, install one on a site, roll it back."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from central.api.common import audit, current_user, json_response, read_body, run_db, services
from central.api.registry import RouteTable
from central.errors import NotFoundError
from central.ingest.routes import _site_of as site_of
from central.keys import COMMANDS, CONFIG, DATABASE
from central.models.registry import ModelRegistry, public_model, registry_for
from central.regulation.roles import Permission
from fsv_contract.models import (
    DOWNLOAD_PATH,
    MODEL_NAME_PATTERN,
    VERB_INSTALL_MODEL,
    VERB_ROLLBACK_MODEL,
)
from fsv_contract.payloads import LEVEL_PATTERN

routes = RouteTable()


class InstallIn(BaseModel):
    """Which version to install, on which cameras of the site (none listed: all)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    version: str = Field(pattern=MODEL_NAME_PATTERN)
    cameras: list[str] = Field(default_factory=list, max_length=1024)
    shadow: bool = Field(
        False, description="run beside the current model without alerts, to compare first"
    )


class RollbackIn(BaseModel):
    """Which cameras go back to their previous model (none listed: all)."""

    model_config = ConfigDict(extra="forbid")

    cameras: list[str] = Field(default_factory=list, max_length=1024)
    shadow: bool = Field(False, description="stop the shadow model instead")


def _registry(request: web.Request) -> ModelRegistry:
    return registry_for(services(request).ldb, request.app[CONFIG].data_dir)


@routes.route("GET", "/api/v1/models", summary="Model versions in the registry", tag="models")
async def list_models(request: web.Request) -> web.Response:
    """Every registered version with its hash, classes, card and signature (admins)."""
    current_user(request, Permission.MANAGE_ORGS)
    items = await run_db(lambda: _registry(request).list_models())
    return json_response({"items": items})


@routes.route(
    "GET",
    "/api/v1/sites/{site_id}/models",
    summary="Each camera's model (from heartbeats) and the site's rollouts",
    tag="models",
)
async def site_models(request: web.Request) -> web.Response:
    """Rollout progress of a site: commands sent, the edge's replies, models running."""
    user = current_user(request)
    registry = await run_db(_registry, request)
    return json_response(
        await run_db(registry.site_models, user.scope, request.match_info["site_id"])
    )


@routes.route(
    "POST",
    "/api/v1/sites/{site_id}/models/install",
    summary="Tell a site to install a model version",
    tag="models",
    body=InstallIn,
    statuses=(202,),
)
async def install(request: web.Request) -> web.Response:
    """Send `install_model`; the edge's reply shows in GET .../models (admins)."""
    user = current_user(request, Permission.MANAGE_ORGS)
    site_id = request.match_info["site_id"]
    site = await run_db(services(request).orgs.get_site, user.scope, site_id)
    body = await read_body(request, InstallIn)
    _check_cameras(body.cameras)
    registry = await run_db(_registry, request)
    args = await run_db(registry.install_args, body.name, body.version, body.cameras, body.shadow)
    request_id = await _send(request, site_id, VERB_INSTALL_MODEL, args)
    await run_db(
        registry.record_rollout, request_id, site_id, "shadow" if body.shadow else "install",
        body.cameras, user.username, body.name, body.version,
    )  # fmt: skip
    await audit(
        request,
        "model_install",
        f"site:{site_id}",
        {
            "name": body.name,
            "version": body.version,
            "cameras": body.cameras,
            "shadow": body.shadow,
        },  # fmt: skip
        org_path=site["org_path"],
    )
    return json_response({"request_id": request_id, "site_id": site_id}, status=202)


@routes.route(
    "POST",
    "/api/v1/sites/{site_id}/models/rollback",
    summary="Tell a site to go back to its previous model",
    tag="models",
    body=RollbackIn,
    statuses=(202,),
)
async def rollback(request: web.Request) -> web.Response:
    """Send `rollback_model` (admins)."""
    user = current_user(request, Permission.MANAGE_ORGS)
    site_id = request.match_info["site_id"]
    site = await run_db(services(request).orgs.get_site, user.scope, site_id)
    body = await read_body(request, RollbackIn)
    _check_cameras(body.cameras)
    registry = await run_db(_registry, request)
    args = ModelRegistry.rollback_args(body.cameras, body.shadow)
    request_id = await _send(request, site_id, VERB_ROLLBACK_MODEL, args)
    action = "shadow_stop" if body.shadow else "rollback"
    await run_db(registry.record_rollout, request_id, site_id, action, body.cameras, user.username)
    await audit(
        request,
        "model_rollback",
        f"site:{site_id}",
        {"cameras": body.cameras, "shadow": body.shadow},
        org_path=site["org_path"],
    )
    return json_response({"request_id": request_id, "site_id": site_id}, status=202)


def _check_cameras(cameras: list[str]) -> None:
    import re

    from central.errors import InvalidInputError

    bad = [c for c in cameras if not re.match(LEVEL_PATTERN, c)]
    if bad:
        raise InvalidInputError(f"not camera ids: {bad[:5]}")


async def _send(request: web.Request, site_id: str, verb: str, args: dict[str, object]) -> str:
    commands = request.app.get(COMMANDS)
    if commands is None:
        raise web.HTTPServiceUnavailable(text="not connected to the broker yet; try again")
    return await asyncio.to_thread(commands.send, site_id, verb, args)


async def download(request: web.Request) -> web.StreamResponse:
    """An edge downloads a registered model file (HTTP Basic, the site's broker login)."""
    await site_of(request)
    name = request.query.get("name", "")
    version = request.query.get("version", "")
    registry = registry_for(request.app[DATABASE], request.app[CONFIG].data_dir)
    try:
        row = await asyncio.to_thread(registry.get, name, version)
    except NotFoundError as e:
        raise web.HTTPNotFound(text=str(e)) from e
    return web.FileResponse(
        row["path"],
        headers={
            "Content-Type": "application/octet-stream",
            "X-Content-SHA256": row["sha256"],
            "X-Model": public_model(row)["name"] + "@" + row["version"],
        },
    )


def add_download_route(app: web.Application) -> None:
    """The edges' download route (site login, not a user session)."""
    app.router.add_get(DOWNLOAD_PATH, download)
