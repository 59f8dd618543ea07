"""County B's objects the probes aim at, and county A's own alert, made the way users make them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from security_world import CAMERA, SITE_A, SITE_B, SecurityWorld

from testbed.footage import camera_jpeg

# Debian's real surveillance clip (opencv-doc), the source of testbed's footage as well.
PUBLIC_IP = "93.184.215.14"  # a literal public address: registration needs no DNS
# Text only county B's objects carry; any of it in an answer to county A is a leak.
B_MARKERS = (SITE_B, "中宁县", "Zhongning", "inspector-b", "staff-canteen-b")


@dataclass
class Targets:
    """Path values of one victim tenant's objects, and county A's alert for same-tenant probes."""

    values: dict[str, str]
    markers: tuple[str, ...]
    a_alert: str
    b_link_token: str

    def leaks(self, text: str) -> str | None:
        """The first of the victim's markers in `text`, if any."""
        return next((m for m in (*self.markers, self.values["alert_id"]) if m in text), None)


@dataclass(frozen=True)
class Tenant:
    """Who owns the victim objects: a site, its enterprise and county, and their users."""

    site: str
    enterprise: str  # key in seed-demo's orgs
    county: str
    inspector: str
    staff: str
    markers: tuple[str, ...]


COUNTY_B = Tenant(SITE_B, "canteen_b", "county_b", "inspector-b", "staff-canteen-b", B_MARKERS)
# Another enterprise of county A: enterprise staff see only their own enterprise.
SLAUGHTER_A = Tenant(
    "demo-slaughter-a",
    "slaughter_a",
    "county_a",
    "inspector-a",
    "staff-slaughter-a",
    ("demo-slaughter-a", "沙坡头定点屠宰厂", "staff-slaughter-a"),
)


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


def build_targets(world: SecurityWorld, tenant: Tenant, a_alert: str = "") -> Targets:
    """The tenant's alert with snapshot and evidence, a webhook, a link, a subscription, an
    export; the staff user's id."""
    jpeg = camera_jpeg()
    site = tenant.site
    alert = world.raise_alert(site, ("snapshot.jpg", jpeg, "image/jpeg"))
    put = world.put_media(site, alert, "snapshot.jpg", jpeg, "image/jpeg")
    assert put.status in (200, 201), put.text
    step = world.call(
        "POST",
        f"/api/v1/alerts/{alert}/transitions",
        tenant.inspector,
        {"action": "request_rectification", "note": "hats", "deadline": time.time() + 86400},
    )
    assert step.status == 201, step.text
    body, ctype = multipart(
        [("note", None, b"bought hats", "text/plain"), ("photos", "fix.jpg", jpeg, "image/jpeg")]
    )
    sub = world.request(
        "POST",
        f"/api/v1/alerts/{alert}/rectification",
        user=tenant.staff,
        body=body,
        headers={"Content-Type": ctype},
    )
    assert sub.status == 201, sub.text
    orgs = world.orgs
    hook = world.call(
        "POST",
        "/api/v1/webhooks",
        "admin",
        {"org_id": orgs[tenant.enterprise], "url": f"https://{PUBLIC_IP}/hook/{site}"},
    )
    assert hook.status == 201, hook.text
    link = world.call(
        "POST",
        "/api/v1/public-links",
        tenant.staff,
        {"org_id": orgs[tenant.enterprise], "cameras": [f"{site}/{CAMERA}"]},
    )
    push = world.call(
        "POST",
        "/api/v1/push/subscriptions",
        tenant.staff,
        {
            "endpoint": f"https://{PUBLIC_IP}/push/{site}",
            "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22},
        },
    )
    assert push.status == 201, push.text
    now = time.time()
    export = world.call(
        "POST",
        "/api/v1/video/exports",
        tenant.staff,
        {"site_id": site, "camera_id": CAMERA, "start": now - 600, "end": now - 570},
    )
    assert export.status == 201, export.text
    users = world.call("GET", "/api/v1/users", "admin").json()["items"]
    staff_id = next(u["id"] for u in users if u["username"] == tenant.staff)
    linked = link.json() if link.status == 201 else {"id": 0, "token": "none"}
    values: dict[str, Any] = {
        "alert_id": alert,
        "event_id": alert,
        "org_id": orgs[tenant.enterprise],
        "site_id": site,
        "camera_id": CAMERA,
        "user_id": staff_id,
        "webhook_id": hook.json()["id"],
        "link_id": linked["id"],
        "subscription_id": push.json()["id"],
        "evidence_id": sub.json()["evidence"][0]["id"],
        "export_id": export.json()["id"],
        "name": "snapshot.jpg",
        "token": linked["token"],
        "county_b": orgs[tenant.county],
        "canteen_b": orgs[tenant.enterprise],
    }
    return Targets({k: str(v) for k, v in values.items()}, tenant.markers, a_alert, linked["token"])


def county_a_alert(world: SecurityWorld) -> str:
    """An alert of county A's canteen (the attackers' own), with its snapshot."""
    jpeg = camera_jpeg()
    alert = world.raise_alert(SITE_A, ("snapshot.jpg", jpeg, "image/jpeg"))
    assert world.put_media(SITE_A, alert, "snapshot.jpg", jpeg, "image/jpeg").status in (200, 201)
    return alert
