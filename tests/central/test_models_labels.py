"""Verdicts as labels: inspectors mark alerts true/false with boxes from the site's class map."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from central_support import Central, call, jpeg_bytes

from central.ingest.media import Announced
from central.keys import MEDIA

pytestmark = pytest.mark.asyncio

BOX = {"cls": "no_chef_hat", "x1": 0.1, "y1": 0.2, "x2": 0.4, "y2": 0.9}


async def test_inspector_labels_an_alert_and_the_audit_keeps_both_versions(
    central: Central,
) -> None:
    alert_id = await central.event("demo-canteen-a", "cam1")
    path = f"/api/v1/alerts/{alert_id}/label"
    status, body = await call(central, "inspector-a", "GET", path)
    assert (status, body["label"]) == (200, None)

    status, body = await call(
        central, "inspector-a", "PUT", path, json={"verdict": "true", "boxes": [BOX]}
    )
    assert status == 200, body
    assert body["label"]["verdict"] == "true"
    assert body["label"]["boxes"] == [BOX]
    assert body["label"]["username"] == "inspector-a"

    # A correction replaces the label; the audit log holds the one replaced.
    status, body = await call(
        central, "inspector-a", "PUT", path, json={"verdict": "false", "boxes": []}
    )
    assert status == 200, body
    status, body = await call(central, "inspector-a", "GET", path)
    assert body["label"]["verdict"] == "false" and body["label"]["boxes"] == []
    status, audit = await call(
        central, "admin", "GET", "/api/v1/audit", params={"action": "alert_label"}
    )
    assert status == 200, audit
    entries = [e for e in audit["items"] if e["target"] == f"alert:{alert_id}"]
    assert len(entries) == 2
    newest = max(entries, key=lambda e: e["id"])
    assert newest["username"] == "inspector-a"
    assert newest["detail"]["replaced"] == {"verdict": "true", "boxes": [BOX]}


async def test_labels_are_scoped_like_alerts(central: Central) -> None:
    alert_id = await central.event("demo-canteen-b", "cam1")
    path = f"/api/v1/alerts/{alert_id}/label"
    good = {"verdict": "true", "boxes": [BOX]}
    assert (await call(central, "inspector-a", "GET", path))[0] == 404
    assert (await call(central, "inspector-a", "PUT", path, json=good))[0] == 404
    # The supervised party sees its alert but does not judge it.
    staff_b = await call(central, "staff-canteen-b", "PUT", path, json=good)
    assert staff_b[0] == 403, staff_b
    assert (await call(central, "inspector-b", "PUT", path, json=good))[0] == 200
    assert (await call(central, "staff-canteen-b", "GET", path))[1]["label"]["verdict"] == "true"


async def test_boxes_must_use_the_sites_class_map_and_be_well_formed(central: Central) -> None:
    alert_id = await central.event("demo-canteen-a", "cam1")
    path = f"/api/v1/alerts/{alert_id}/label"
    status, body = await call(
        central,
        "inspector-a",
        "PUT",
        path,
        json={"verdict": "true", "boxes": [{**BOX, "cls": "apron"}]},
    )
    assert (
        status == 400
        and "apron" in body["error"]["message"]
        and "class map" in body["error"]["message"]
    ), body
    status, body = await call(
        central,
        "inspector-a",
        "PUT",
        path,
        json={"verdict": "true", "boxes": [{**BOX, "x2": 0.05}]},
    )
    assert status == 400 and "x2 > x1" in body["error"]["message"], body
    status, body = await call(central, "inspector-a", "PUT", path, json={"verdict": "maybe"})
    assert status == 400, body
    assert (await call(central, "inspector-a", "GET", path))[1]["label"] is None

    # The site's own class map: only admins set it; then boxes use its classes.
    cmap = "/api/v1/sites/demo-canteen-a/class-map"
    status, body = await call(central, "inspector-a", "GET", cmap)
    assert status == 200 and body["own"] is False and "no_chef_hat" in body["classes"]
    new = {"classes": ["person", "apron", "no_chef_hat"]}
    assert (await call(central, "inspector-a", "PUT", cmap, json=new))[0] == 403
    status, body = await call(central, "admin", "PUT", cmap, json=new)
    assert status == 200 and body == {"site_id": "demo-canteen-a", **new, "own": True}
    status, body = await call(
        central,
        "inspector-a",
        "PUT",
        path,
        json={"verdict": "true", "boxes": [{**BOX, "cls": "apron"}]},
    )
    assert status == 200, body
    bad = await call(central, "admin", "PUT", cmap, json={"classes": ["Bad Name"]})
    assert bad[0] == 400, bad


async def _with_image(central: Central, site: str, name: str, seed: int) -> str:
    alert_id = await central.event(site, "cam1")
    media = central.client.app[MEDIA]
    data = jpeg_bytes(seed)
    temp = media.temp_path(site, alert_id, name)
    temp.write_bytes(data)
    ann = Announced(hashlib.sha256(data).hexdigest(), len(data), "image/jpeg")
    await asyncio.to_thread(media.commit, site, alert_id, name, temp, ann)
    return alert_id


async def test_the_queue_lists_images_to_label_in_scope_clean_frame_first(
    central: Central,
) -> None:
    framed = await _with_image(central, "demo-canteen-a", "frame.jpg", 1)
    snapped = await _with_image(central, "demo-canteen-a", "snapshot.jpg", 2)
    other_county = await _with_image(central, "demo-canteen-b", "frame.jpg", 3)
    no_image = await central.event("demo-canteen-a", "cam1")
    status, body = await call(central, "inspector-a", "GET", "/api/v1/labels/queue")
    assert status == 200, body
    items = {i["id"]: i for i in body["items"]}
    assert framed in items and snapped in items
    assert other_county not in items and no_image not in items
    assert items[framed]["image"].endswith("/media/frame.jpg")
    assert items[framed]["annotated"] is False and items[snapped]["annotated"] is True
    assert (await call(central, "inspector-a", "GET", items[framed]["image"]))[0] == 200

    path = f"/api/v1/alerts/{framed}/label"
    put = await call(central, "inspector-a", "PUT", path, json={"verdict": "true", "boxes": [BOX]})
    assert put[0] == 200, put
    unlabelled = (await call(central, "inspector-a", "GET", "/api/v1/labels/queue"))[1]
    assert framed not in {i["id"] for i in unlabelled["items"]}
    done = await call(central, "inspector-a", "GET", "/api/v1/labels/queue?state=labelled")
    [item] = [i for i in done[1]["items"] if i["id"] == framed]
    assert item["label"]["boxes"] == [BOX] and item["label"]["verdict"] == "true"

    bad = await call(central, "inspector-a", "GET", "/api/v1/labels/queue?state=maybe")
    assert bad[0] == 400 and "state" in bad[1]["error"]["message"], bad
    assert (await call(central, "staff-canteen-a", "GET", "/api/v1/labels/queue"))[0] == 403
