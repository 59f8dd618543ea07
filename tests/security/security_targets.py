"""County B's objects the probes aim at, and county A's own alert, made the way users make them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from security_world import CAMERA, SITE_A, SITE_B, SecurityWorld

# Debian's real surveillance clip (opencv-doc), the source of testbed's footage as well.
SOURCE_CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
PUBLIC_IP = "93.184.215.14"  # a literal public address: registration needs no DNS
# Text only county B's objects carry; any of it in an answer to county A is a leak.
B_MARKERS = (SITE_B, "中宁县", "Zhongning", "inspector-b", "staff-canteen-b")


def camera_jpeg(frame_no: int = 10) -> bytes:
    """One frame of the real clip as JPEG bytes, like a camera snapshot."""
    clip = cv2.VideoCapture(str(SOURCE_CLIP))
    try:
        clip.set(cv2.CAP_PROP_POS_FRAMES, frame_no)
        ok, frame = clip.read()
    finally:
        clip.release()
    assert ok, f"cannot read frame {frame_no} of {SOURCE_CLIP}"
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(jpeg.tobytes())


@dataclass
class Targets:
    """Path values of county B's objects, and county A's alert for same-tenant probes."""

    values: dict[str, str]
    a_alert: str
    b_link_token: str

    def leaks(self, text: str) -> str | None:
        """The first county-B marker in `text`, if any."""
        return next((m for m in B_MARKERS + (self.values["alert_id"],) if m in text), None)


def multipart(fields: list[tuple[str, str | None, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (name, filename, data, content type)."""
    boundary = "fsvprobeboundary7d93"
    parts = []
    for name, filename, data, ctype in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n"
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def build_targets(world: SecurityWorld) -> Targets:
    """An alert with a snapshot and evidence, a webhook, a link, a subscription, an export."""
    jpeg = camera_jpeg()
    b_alert = world.raise_alert(SITE_B, ("snapshot.jpg", jpeg, "image/jpeg"))
    put = world.put_media(SITE_B, b_alert, "snapshot.jpg", jpeg, "image/jpeg")
    assert put.status in (200, 201), put.text
    a_alert = world.raise_alert(SITE_A, ("snapshot.jpg", jpeg, "image/jpeg"))
    assert world.put_media(SITE_A, a_alert, "snapshot.jpg", jpeg, "image/jpeg").status in (
        200,
        201,
    )
    step = world.call(
        "POST",
        f"/api/v1/alerts/{b_alert}/transitions",
        "inspector-b",
        {"action": "request_rectification", "note": "hats", "deadline": time.time() + 86400},
    )
    assert step.status == 201, step.text
    body, ctype = multipart(
        [("note", None, b"bought hats", "text/plain"), ("photos", "fix.jpg", jpeg, "image/jpeg")]
    )
    sub = world.request(
        "POST",
        f"/api/v1/alerts/{b_alert}/rectification",
        user="staff-canteen-b",
        body=body,
        headers={"Content-Type": ctype},
    )
    assert sub.status == 201, sub.text
    evidence_id = sub.json()["evidence"][0]["id"]
    orgs = world.orgs
    hook = world.call(
        "POST",
        "/api/v1/webhooks",
        "admin",
        {"org_id": orgs["county_b"], "url": f"https://{PUBLIC_IP}/hook"},
    )
    assert hook.status == 201, hook.text
    link = world.call(
        "POST",
        "/api/v1/public-links",
        "staff-canteen-b",
        {"org_id": orgs["canteen_b"], "cameras": [f"{SITE_B}/{CAMERA}"]},
    )
    assert link.status == 201, link.text
    push = world.call(
        "POST",
        "/api/v1/push/subscriptions",
        "inspector-b",
        {
            "endpoint": f"https://{PUBLIC_IP}/push/b",
            "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22},
        },
    )
    assert push.status == 201, push.text
    now = time.time()
    export = world.call(
        "POST",
        "/api/v1/video/exports",
        "inspector-b",
        {"site_id": SITE_B, "camera_id": CAMERA, "start": now - 600, "end": now - 570},
    )
    assert export.status == 201, export.text
    users = world.call("GET", "/api/v1/users", "admin").json()["items"]
    inspector_b = next(u["id"] for u in users if u["username"] == "inspector-b")
    values: dict[str, Any] = {
        "alert_id": b_alert,
        "event_id": b_alert,
        "org_id": orgs["canteen_b"],
        "site_id": SITE_B,
        "camera_id": CAMERA,
        "user_id": inspector_b,
        "webhook_id": hook.json()["id"],
        "link_id": link.json()["id"],
        "subscription_id": push.json()["id"],
        "evidence_id": evidence_id,
        "export_id": export.json()["id"],
        "name": "snapshot.jpg",
        "token": link.json()["token"],
        "county_b": orgs["county_b"],
        "canteen_b": orgs["canteen_b"],
    }
    return Targets({k: str(v) for k, v in values.items()}, a_alert, link.json()["token"])
