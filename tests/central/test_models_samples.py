"""Sample frames asked of an edge: the request, the announced upload, the queue, the label."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from central_support import Central, call, jpeg_bytes

from central.errors import ConflictError, NotFoundError
from central.keys import DATABASE, MEDIA
from central.models.dataset import export_dataset

pytestmark = pytest.mark.asyncio

SITE = "demo-canteen-a"
HAT = {"cls": "no_chef_hat", "x1": 0.2, "y1": 0.1, "x2": 0.6, "y2": 0.5}


def _reply(central: Central, request_id: str, frames: list[dict[str, object]]) -> None:
    """The edge's reply as ingest stores it."""
    db = central.client.app[DATABASE]
    with db.transaction() as conn:
        conn.execute(
            "update commands set ok = 1, result = ?, replied_at = ? where request_id = ?",
            [json.dumps({"frames": frames}), time.time(), request_id],
        )


async def test_a_sample_request_reaches_the_queue_and_the_dataset(
    central: Central, tmp_path: Path
) -> None:
    path = f"/api/v1/sites/{SITE}/samples"
    body = {"camera": "cam1", "count": 2, "mode": "events"}
    status, refused = await call(central, "inspector-a", "POST", path, json=body)
    assert status == 400 and "cam1" in refused["error"]["message"], refused  # no alert yet
    assert (await call(central, "inspector-b", "POST", path, json=body))[0] == 404
    assert (await call(central, "staff-canteen-a", "POST", path, json=body))[0] == 403
    bad = await call(central, "inspector-a", "POST", path, json={**body, "count": 500})
    assert bad[0] == 400 and "count" in bad[1]["error"]["message"], bad

    alert_id = await central.event(SITE, "cam1")
    status, sent = await call(central, "inspector-a", "POST", path, json=body)
    assert status == 202, sent
    batch, request_id = sent["batch_id"], sent["request_id"]
    db = central.client.app[DATABASE]
    with db.lock:
        args = json.loads(
            db.db.execute(
                "select args from commands where request_id = ?", [request_id]
            ).fetchone()[0]
        )
    alert = (await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}"))[1]
    [around] = args["times"]  # one alert: one instant, within 20 s of its start
    assert abs(datetime.fromisoformat(around).timestamp() - alert["start"]) <= 20.0

    # Nothing is accepted before the edge's reply announces it, and only what it announced.
    media = central.client.app[MEDIA]
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(media.announced, SITE, batch, "sample-001.jpg")
    data = jpeg_bytes(5)
    frame = {"name": "sample-001.jpg", "sha256": hashlib.sha256(data).hexdigest(),
             "bytes": len(data), "ts": around}  # fmt: skip
    _reply(central, request_id, [frame])
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(media.announced, "demo-canteen-b", batch, "sample-001.jpg")
    with pytest.raises(ConflictError):
        await asyncio.to_thread(media.announced, SITE, batch, "sample-002.jpg")
    ann = await asyncio.to_thread(media.announced, SITE, batch, "sample-001.jpg")
    assert ann.sha256 == frame["sha256"]
    temp = media.temp_path(SITE, batch, "sample-001.jpg")
    temp.write_bytes(data)
    await asyncio.to_thread(media.commit, SITE, batch, "sample-001.jpg", temp, ann)

    queue = (await call(central, "inspector-a", "GET", "/api/v1/labels/queue"))[1]["items"]
    [item] = [i for i in queue if i["kind"] == "sample"]
    assert item["id"] == f"{batch}/sample-001.jpg" and item["camera_id"] == "cam1"
    got = await central.client.get(item["image"], headers=await central.token("inspector-a"))
    assert got.status == 200 and await got.read() == data
    hidden = await central.client.get(item["image"], headers=await central.token("inspector-b"))
    assert hidden.status == 404
    label = {"verdict": "true", "boxes": [HAT]}
    assert (await call(central, "inspector-b", "PUT", item["label_url"], json=label))[0] == 404
    status, saved = await call(central, "inspector-a", "PUT", item["label_url"], json=label)
    assert status == 200 and saved["label"]["boxes"] == [HAT], saved
    done = (await call(central, "inspector-a", "GET", "/api/v1/labels/queue?state=labelled"))[1]
    assert [i["label"]["verdict"] for i in done["items"] if i["kind"] == "sample"] == ["true"]
    requests = (await call(central, "inspector-a", "GET", path))[1]["items"]
    assert [(r["batch_id"], r["state"], r["stored"]) for r in requests] == [(batch, "done", 1)]

    out = tmp_path / "dataset"
    result = await asyncio.to_thread(export_dataset, db, ["person", "no_chef_hat"], out)
    assert result.counts["train"]["images"] + result.counts["val"]["images"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    [image] = manifest["images"]
    assert image["source"] == "sample" and image["annotated"] is False
    assert image["sample"] == f"sample-{batch}-sample-001" and image["alert_id"] is None
    assert (out / image["file"]).read_bytes() == data
    audit = (await call(central, "admin", "GET", "/api/v1/audit?limit=200"))[1]["items"]
    assert {"sample_request", "sample_label"} <= {e["action"] for e in audit}
    assert datetime.fromisoformat(image["captured_at"]) == datetime.fromisoformat(
        around
    ).astimezone(UTC)


@pytest.mark.parametrize(
    "frames",
    [
        [{"name": "sample-001.jpg", "sha256": "not-hex", "bytes": -1, "ts": "yesterday"}],
        {"sample-001.jpg": "a mapping, not a list"},
        7,
    ],
)
async def test_a_malformed_frame_announcement_is_a_clear_refusal(
    central: Central, frames: object
) -> None:
    """The box writes the reply: a frame it announces in a shape the contract does not
    allow is a conflict saying so (409 to the upload), never an unexpected error (500)."""
    await central.event(SITE, "cam1")
    body = {"camera": "cam1", "count": 1, "mode": "events"}
    status, sent = await call(central, "inspector-a", "POST", f"/api/v1/sites/{SITE}/samples",
                              json=body)  # fmt: skip
    assert status == 202, sent
    db = central.client.app[DATABASE]
    with db.transaction() as conn:
        conn.execute(
            "update commands set ok = 1, result = ?, replied_at = ? where request_id = ?",
            [json.dumps({"frames": frames}), time.time(), sent["request_id"]],
        )
    media = central.client.app[MEDIA]
    with pytest.raises(ConflictError, match="sample-001.jpg"):
        await asyncio.to_thread(media.announced, SITE, sent["batch_id"], "sample-001.jpg")
