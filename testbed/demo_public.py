"""The demo's school canteen: its edge agent's cameras and the public kitchen link parents open
from a QR code ("明厨亮灶"), published once and kept between runs with the demo's state."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.demo_edge import DemoCamera, demo_edge_config
from testbed.footage import Footage
from testbed.rtsp import RtspServer

CANTEEN_SITE = "demo-canteen-01"
CANTEEN_ORG = "canteen_a"  # the seeded 中卫市第一小学食堂
STAFF = "staff-canteen-a"
INSPECTOR = "inspector-a"
# (camera id, name, station): both published on the public page.
CANTEEN_CAMERAS = (
    ("kitchen-1", "后厨 Kitchen", "kitchen_prep"),
    ("washing-1", "洗消间 Dish washing", "dish_washing"),
)
STATE_FILE = "public-link.json"
QR_FILE = "public-kitchen-qr.svg"


def canteen_streams(footage: Footage) -> dict[str, Path]:
    """RTSP paths of the canteen's cameras: a main and a sub stream each."""
    out: dict[str, Path] = {}
    for camera, _name, _station in CANTEEN_CAMERAS:
        out[camera] = footage.main_h264
        out[f"{camera}_sub"] = footage.sub_h264
    return out


def canteen_edge_config(
    root: Path, rtsp: RtspServer, broker_port: int, central_url: str, timezone: str
) -> dict[str, Any]:
    """The canteen edge agent: records both cameras; detection off to keep the demo light."""
    return demo_edge_config(
        site=CANTEEN_SITE,
        recordings=root / "canteen-recordings",
        state=root / "canteen-edge-state",
        rtsp=rtsp,
        broker_port=broker_port,
        central_url=central_url,
        timezone=timezone,
        cameras=[DemoCamera(camera, name, station) for camera, name, station in CANTEEN_CAMERAS],
        detection={"enabled": False},
    )


@dataclass(frozen=True)
class PublicLink:
    """The published link and the QR code to print for the kitchen door."""

    url: str
    qr_path: Path


class _Api:
    """JSON calls to the demo's central as one of its accounts."""

    def __init__(self, base: str, accounts: list[dict[str, str]], username: str) -> None:
        self.base = base
        password = next(a["password"] for a in accounts if a["username"] == username)
        body = {"username": username, "password": password, "kind": "bearer"}
        self.token = str(self.call("POST", "/api/v1/auth/login", body, auth=False)["token"])

    def raw(self, method: str, path: str, body: Any = None, auth: bool = True) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=15) as response:
            return bytes(response.read())

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        return json.loads(self.raw(method, path, body, auth))


def ensure_site(base: str, accounts: list[dict[str, str]], orgs: dict[str, int]) -> bool:
    """Register the canteen's site if central lacks it (a demo state from before it existed);
    True if it did."""
    admin = _Api(base, accounts, "admin")
    sites = admin.call("GET", "/api/v1/sites")["items"]
    if any(s.get("id", s.get("site_id")) == CANTEEN_SITE for s in sites):
        return False
    body = {"org_id": orgs[CANTEEN_ORG], "site_id": CANTEEN_SITE, "name": CANTEEN_SITE}
    admin.call("POST", "/api/v1/sites", body)
    return True


def _wait_for_cameras(staff: _Api, timeout: float) -> None:
    """Until central lists the canteen's cameras (from the edge's first camera states)."""
    wanted = {camera for camera, _name, _station in CANTEEN_CAMERAS}
    deadline = time.monotonic() + timeout
    while True:
        items = staff.call("GET", f"/api/v1/cameras?site_id={CANTEEN_SITE}")["items"]
        if wanted <= {c["camera_id"] for c in items}:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for central to list {CANTEEN_SITE}'s cameras")
        time.sleep(0.3)


def _kept_link(staff: _Api, state: Path) -> dict[str, Any] | None:
    """The link made by an earlier run, if it is still active and its token was kept.

    Central shows a link's token once, when it is made: the demo keeps it in its own state
    (a state from before that holds only the id: a new link is made).
    """
    if not state.exists():
        return None
    kept = json.loads(state.read_text())
    if not kept.get("token"):
        return None
    for link in staff.call("GET", "/api/v1/public-links")["items"]:
        if link["id"] == kept.get("id") and link["active"]:
            return {**link, "token": kept["token"], "url": kept["url"]}
    return None


def ensure_public_link(
    base: str, accounts: list[dict[str, str]], orgs: dict[str, int], root: Path, timeout: float
) -> PublicLink:
    """The canteen's public link (made on the first run, with an inspection to show) and its
    QR code written under `root`."""
    staff = _Api(base, accounts, STAFF)
    state = root / STATE_FILE
    link = _kept_link(staff, state)
    if link is None:
        _wait_for_cameras(staff, timeout)
        org = orgs[CANTEEN_ORG]
        cameras = [f"{CANTEEN_SITE}/{camera}" for camera, _name, _station in CANTEEN_CAMERAS]
        body = {"org_id": org, "cameras": cameras, "label": "食堂门口 kitchen door"}
        link = dict(staff.call("POST", "/api/v1/public-links", body))
        inspection = {"result": "compliant", "rating": "excellent", "note": "demo"}
        inspector = _Api(base, accounts, INSPECTOR)
        inspector.call("POST", f"/api/v1/orgs/{org}/inspections", inspection)
        state.write_text(json.dumps({k: link[k] for k in ("id", "token", "url")}))
    qr = root / QR_FILE
    qr.write_bytes(
        staff.raw("GET", f"/api/v1/public-links/{link['id']}/qr.svg?token={link['token']}")
    )
    return PublicLink(url=str(link["url"]), qr_path=qr)
