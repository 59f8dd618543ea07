"""Verdicts as labels: an inspector marks an alert true or false and boxes what it shows."""

from __future__ import annotations

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
from central.models.labels import MAX_QUEUE_PAGE, ClassMapIn, LabelIn, LabelStore
from central.regulation.roles import Permission

routes = RouteTable()


def _store(request: web.Request) -> LabelStore:
    return LabelStore(services(request).ldb)


class QueueQuery(BaseModel):
    """Which images of the labelling queue to list."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["unlabelled", "labelled", "all"] = "unlabelled"
    limit: int = Field(50, ge=1, le=MAX_QUEUE_PAGE)
    offset: int = Field(0, ge=0)


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
