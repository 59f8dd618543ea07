"""Verdicts as labels: an inspector marks an alert true or false and boxes what it shows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from central.api.common import (
    audit,
    current_user,
    json_response,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.keys import COMMANDS
from central.models.labels import MAX_QUEUE_PAGE, ClassMapIn, LabelIn, LabelStore
from central.models.samples import SampleRequestIn, SampleStore
from central.regulation.roles import Permission
from central.web.security import media_headers
from fsv_contract.models import VERB_SAMPLE_FRAMES

routes = RouteTable()


def _store(request: web.Request) -> LabelStore:
    return LabelStore(services(request).ldb)


class QueueQuery(BaseModel):
    """Which images of the labelling queue to list."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["unlabelled", "labelled", "all"] = "unlabelled"
    limit: int = Field(50, ge=1, le=MAX_QUEUE_PAGE)
    offset: int = Field(0, ge=0, le=10_000)


@routes.route(
    "GET",
    "/api/v1/labels/queue",
    summary="Images to label: alerts in scope with a stored frame, newest first",
    tag="labels",
    query=QueueQuery,
)
async def label_queue(request: web.Request) -> web.Response:
    """Each with its image, the edge's detections (boxes to correct) and its label."""
    user = current_user(request, Permission.LABEL)
    q = read_query(request, QueueQuery)
    return json_response(
        await run_db(_store(request).queue, user.scope, q.state, q.limit, q.offset)
    )


@routes.route(
    "GET", "/api/v1/alerts/{alert_id}/label", summary="An alert's verdict and boxes", tag="labels"
)
async def get_label(request: web.Request) -> web.Response:
    """The label of an alert in scope (`label` is null until someone labels it)."""
    user = current_user(request)
    alert_id = request.match_info["alert_id"]
    label = await run_db(_store(request).get, user.scope, alert_id)
    return json_response({"alert_id": alert_id, "label": label})


@routes.route(
    "PUT",
    "/api/v1/alerts/{alert_id}/label",
    summary="Mark an alert true or false; correct or add boxes",
    tag="labels",
    body=LabelIn,
)
async def put_label(request: web.Request) -> web.Response:
    """Store the caller's verdict (replacing any earlier one); audited with the old label."""
    user = current_user(request, Permission.LABEL)
    alert_id = request.match_info["alert_id"]
    store = _store(request)
    # Scope first: an alert outside it is a 404 whatever the body says.
    await run_db(store.get, user.scope, alert_id)
    body = await read_body(request, LabelIn)
    label, old = await run_db(store.set_label, user, alert_id, body)
    alert = await run_db(services(request).alerts.get, user.scope, alert_id)
    await audit(
        request,
        "alert_label",
        f"alert:{alert_id}",
        {
            "verdict": label["verdict"],
            "boxes": label["boxes"],
            "replaced": None if old is None else {k: old[k] for k in ("verdict", "boxes")},
        },
        org_path=alert["org_path"],
    )
    return json_response({"alert_id": alert_id, "label": label})


@routes.route(
    "GET",
    "/api/v1/sites/{site_id}/class-map",
    summary="The classes boxes on this site's alerts may have",
    tag="labels",
)
async def get_class_map(request: web.Request) -> web.Response:
    """The site's class map, or the default one (`own` false)."""
    user = current_user(request)
    return json_response(
        await run_db(_store(request).class_map, user.scope, request.match_info["site_id"])
    )


@routes.route(
    "PUT",
    "/api/v1/sites/{site_id}/class-map",
    summary="Set a site's class map (admins and organisation managers)",
    tag="labels",
    body=ClassMapIn,
)
async def put_class_map(request: web.Request) -> web.Response:
    """Replace the site's class map; audited."""
    user = current_user(request, Permission.MANAGE_ORGS)
    site_id = request.match_info["site_id"]
    store = _store(request)
    before = await run_db(store.class_map, user.scope, site_id)
    body = await read_body(request, ClassMapIn)
    after = await run_db(store.set_class_map, user, site_id, body)
    site = await run_db(services(request).orgs.get_site, user.scope, site_id)
    await audit(
        request,
        "class_map_set",
        f"site:{site_id}",
        {"classes": after["classes"], "before": before["classes"]},
        org_path=site["org_path"],
    )
    return json_response(after)


@routes.route(
    "POST",
    "/api/v1/sites/{site_id}/samples",
    summary="Ask a site's edge for sample frames of a camera to label",
    tag="labels",
    body=SampleRequestIn,
    statuses=(202,),
)
async def request_samples(request: web.Request) -> web.Response:
    """Random instants of the recordings, or around the camera's alerts; audited."""
    user = current_user(request, Permission.LABEL)
    site_id = request.match_info["site_id"]
    samples = SampleStore(services(request).ldb)
    site = await run_db(services(request).orgs.get_site, user.scope, site_id)
    body = await read_body(request, SampleRequestIn)
    batch, args = await run_db(samples.plan, user.scope, site_id, body)
    commands = request.app.get(COMMANDS)
    if commands is None:
        raise web.HTTPServiceUnavailable(text="not connected to the broker yet; try again")
    request_id = await asyncio.to_thread(commands.send, site_id, VERB_SAMPLE_FRAMES, args)
    await run_db(samples.record, user, site_id, batch, request_id, args)
    await audit(
        request,
        "sample_request",
        f"site:{site_id}",
        {"batch_id": batch, "camera": body.camera, "count": body.count, "mode": body.mode},
        org_path=site["org_path"],
    )
    return json_response({"batch_id": batch, "request_id": request_id}, status=202)


@routes.route(
    "GET",
    "/api/v1/sites/{site_id}/samples",
    summary="A site's sample requests and how many frames arrived",
    tag="labels",
)
async def list_samples(request: web.Request) -> web.Response:
    """Newest first; `state` sent, done or failed (with the edge's reason)."""
    user = current_user(request, Permission.LABEL)
    store = SampleStore(services(request).ldb)
    items = await run_db(store.requests, user.scope, request.match_info["site_id"])
    return json_response({"items": items})


@routes.route(
    "GET",
    "/api/v1/samples/{batch_id}/{name}",
    summary="A sample frame an edge sent",
    tag="labels",
    produces=("image/jpeg",),
)
async def get_sample(request: web.Request) -> web.StreamResponse:
    """The clean JPEG (audited as an evidence view)."""
    user = current_user(request, Permission.LABEL)
    batch, name = request.match_info["batch_id"], request.match_info["name"]
    frame = await run_db(SampleStore(services(request).ldb).frame, user.scope, batch, name)
    await audit(request, "evidence_view", f"sample:{batch}/{name}", {"sha256": frame["sha256"]},
                org_path=frame["org_path"])  # fmt: skip
    return web.FileResponse(Path(frame["path"]), headers=media_headers("image/jpeg", name))


@routes.route(
    "PUT",
    "/api/v1/samples/{batch_id}/{name}/label",
    summary="Label a sample frame: true or false, with boxes",
    tag="labels",
    body=LabelIn,
)
async def put_sample_label(request: web.Request) -> web.Response:
    """Store the caller's label (replacing any earlier one); audited."""
    user = current_user(request, Permission.LABEL)
    batch, name = request.match_info["batch_id"], request.match_info["name"]
    store = SampleStore(services(request).ldb)
    await run_db(store.frame, user.scope, batch, name)  # scope first: 404 outside it
    body = await read_body(request, LabelIn)
    label, frame = await run_db(store.set_label, user, batch, name, body)
    await audit(request, "sample_label", f"sample:{batch}/{name}",
                {"verdict": label["verdict"], "boxes": label["boxes"]},
                org_path=frame["org_path"])  # fmt: skip
    return json_response({"batch_id": batch, "name": name, "label": label})
