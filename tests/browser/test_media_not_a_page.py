"""Media is data, never a page: hostile uploads in headless Chromium against a real central.

The edge box belongs to the supervised enterprise. Here it tries to make a regulator's
browser run its script: an event announcing an HTML snapshot, HTML bytes sent as a JPEG, a
JPEG/HTML polyglot (valid JPEG magic, script after it), and a row of another type left from
before the allow-list. None may run script in the regulator's session.
"""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from regulator_system import RegulatorSystem
from video_system import CAMERA, SITE, wait_until
from walks import Walk

from fsv_contract import EventPayload, MediaRef, encode, topics
from testbed.central_rows import CentralRows
from testbed.footage import camera_jpeg

pytestmark = pytest.mark.slow
SCRIPT = (
    b"<!doctype html><html><body><script>document.title='PWNED';"
    b"fetch('/api/v1/auth/me').then(r=>r.text()).then(t=>{document.title='PWNED '+t})"
    b"</script></body></html>"
)


class HostileEdge:
    """Publishes events and uploads media with the site's own (legitimate) credentials."""

    def __init__(self, system: RegulatorSystem) -> None:
        self.system = system

    def announce(self, name: str, content_type: str, body: bytes) -> str:
        """An event announcing `body` as its snapshot; the event id."""
        ref = MediaRef(
            name=name,
            sha256=hashlib.sha256(body).hexdigest(),
            bytes=len(body),
            content_type=content_type,
        )
        event = EventPayload(
            event_id=uuid.uuid4(), site=SITE, camera=CAMERA, phase="start", kind="no_chef_hat",
            station="kitchen_prep", rule="hat", start=datetime.now(UTC), score=0.9, snapshot=ref,
        )  # fmt: skip
        self.system._publish(topics.camera_event(SITE, CAMERA), encode(event))
        return str(event.event_id)

    def put(self, event_id: str, name: str, body: bytes, content_type: str) -> int:
        """PUT the file as the edge's uploader does; the HTTP status."""
        login = base64.b64encode(f"{SITE}:{self.system.site_password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.system.url}/api/v1/media/{event_id}/{name}",
            data=body,
            method="PUT",
            headers={
                "Authorization": f"Basic {login}",
                "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
                "Content-Type": content_type,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return int(e.code)


def _alert_ids(system: RegulatorSystem) -> set[str]:
    items = system.api("GET", "/api/v1/alerts?limit=500", user="admin")["items"]
    return {a["id"] for a in items}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, walk: Walk) -> Iterator[dict[str, Any]]:
    """Every hostile upload tried once, then opened in Chromium as the county inspector."""
    root = tmp_path_factory.mktemp("media")
    system = RegulatorSystem(root)
    system.start()
    try:
        edge = HostileEdge(system)
        rejected_before = system.api("GET", "/api/v1/ingest/stats", user="admin")["rejected"]
        html_event = edge.announce("snapshot.html", "text/html", SCRIPT)
        wait_until(
            lambda: (
                system.api("GET", "/api/v1/ingest/stats", user="admin")["rejected"]
                > rejected_before
            ),
            20,
            "central to refuse the event announcing HTML",
        )
        html_put = edge.put(html_event, "snapshot.html", SCRIPT, "text/html")

        disguised = edge.announce("snapshot.jpg", "image/jpeg", SCRIPT)
        wait_until(lambda: disguised in _alert_ids(system), 20, "the disguised event's alert")
        disguised_put = edge.put(disguised, "snapshot.jpg", SCRIPT, "image/jpeg")

        polyglot = camera_jpeg(40)[:64] + SCRIPT  # JPEG magic, then a page
        poly_event = edge.announce("snapshot.jpg", "image/jpeg", polyglot)
        wait_until(lambda: poly_event in _alert_ids(system), 20, "the polyglot event's alert")
        poly_put = edge.put(poly_event, "snapshot.jpg", polyglot, "image/jpeg")

        legacy = _plant_legacy_html(system, poly_event)
        stats = system.api("GET", "/api/v1/ingest/stats", user="admin")
        options = {
            "url": system.url,
            "username": "inspector-a",
            "password": system.users["inspector-a"],
            "paths": [
                f"/api/v1/alerts/{html_event}/media/snapshot.html",
                f"/api/v1/alerts/{disguised}/media/snapshot.jpg",
                f"/api/v1/alerts/{poly_event}/media/snapshot.jpg",
                f"/api/v1/alerts/{poly_event}/media/{legacy}",
            ],
        }
        seen = walk("media_probe.mjs", options, timeout=120)
        yield {
            "puts": {"html": html_put, "disguised": disguised_put, "polyglot": poly_put},
            "alerts": _alert_ids(system),
            "html_event": html_event,
            "stats": stats,
            "rejected_before": rejected_before,
            "visits": seen["visits"],
            "login": seen["login"],
        }
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


def _plant_legacy_html(system: RegulatorSystem, event_id: str) -> str:
    """A `text/html` media row as an older central would have stored it; its name."""
    data_dir = system.root / "central"
    path = data_dir / "media" / SITE / event_id / "old.html"
    path.write_bytes(SCRIPT)
    CentralRows(system.database, data_dir).execute(
        "insert into media (event_id, name, site, sha256, bytes, content_type, path, "
        "stored_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [event_id, "old.html", SITE, hashlib.sha256(SCRIPT).hexdigest(), len(SCRIPT),
         "text/html", str(path), time.time()],
    )  # fmt: skip
    return "old.html"


def test_an_event_announcing_an_html_snapshot_is_refused_and_counted(
    world: dict[str, Any],
) -> None:
    assert world["html_event"] not in world["alerts"]
    assert world["stats"]["rejected"] > world["rejected_before"]
    assert world["puts"]["html"] == 404  # no such event: nothing to upload to
    html_visit = world["visits"][0]
    assert html_visit["status"] == 404 and "PWNED" not in html_visit["title"]


def test_html_bytes_announced_as_a_jpeg_are_refused_and_counted(world: dict[str, Any]) -> None:
    assert world["puts"]["disguised"] == 415
    assert world["stats"]["media_refused:content"] >= 1
    assert world["visits"][1]["status"] == 404  # nothing was stored


def test_served_media_cannot_run_script_in_the_regulators_session(
    world: dict[str, Any],
) -> None:
    assert world["login"] == 200
    assert world["puts"]["polyglot"] == 201  # valid JPEG magic: stored, and served as an image
    for visit in world["visits"]:
        assert "PWNED" not in visit["title"], visit
        assert visit["stolen"] == [] and visit["inFrame"]["stolen"] == [], visit
        assert not any("PWNED" in t for t in visit["inFrame"]["frameTitles"]), visit
    poly = world["visits"][2]
    assert poly["status"] == 200
    headers = poly["headers"]
    assert headers["content-type"] == "image/jpeg"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"] == 'inline; filename="snapshot.jpg"'
    assert headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    legacy = world["visits"][3]  # an old text/html row: an attachment, never rendered
    assert (
        legacy["download"] == "old.bin"
        or (legacy["headers"] or {}).get("content-type") == "application/octet-stream"
    ), legacy
