"""HTTP probes against the running central: tenants, traversal, injection, bad JSON, login abuse,
public links. Each probe records every attempt in the tally; a leak fails the test."""

from __future__ import annotations

import json
import math
import secrets
import urllib.parse
from typing import Any

from openapi_probes import Operation, aimed_body, aimed_query, fetch_document, operations
from security_tally import Tally
from security_targets import Targets, camera_jpeg, multipart
from security_world import CAMERA, SITE_A, SITE_B, Reply, SecurityWorld

ATTACKERS = ("inspector-a", "staff-canteen-a")
# Ends the caller's own session (probed for scope like any other route, then signed in again).
SESSION_ENDERS = ("/api/v1/auth/logout",)


def _send(
    world: SecurityWorld,
    op: Operation,
    url: str,
    user: str | None,
    body: dict[str, Any] | None,
) -> Reply:
    if op.multipart:
        data, ctype = multipart(
            [("note", None, b"x", "text/plain"), ("photos", "p.jpg", camera_jpeg(), "image/jpeg")]
        )
        return world.request(op.method, url, user=user, body=data, headers={"Content-Type": ctype})
    if body is not None:
        return world.call(op.method, url, user=user, data=body)
    return world.request(op.method, url, user=user)


def _url(op: Operation, values: dict[str, str], query: dict[str, str]) -> str:
    path = op.path.format(
        **{p: urllib.parse.quote(values.get(p, "1"), safe="") for p in op.path_params}
    )
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


def test_cross_tenant_on_every_documented_route(
    world: SecurityWorld, targets: Targets, enterprise_targets: Targets, tally: Tally
) -> None:
    doc = fetch_document(world)
    count = tally["cross_tenant"]
    ops = [op for op in operations(doc) if op.needs_login]
    assert len(ops) > 30, "the document lists too few routes"
    for op in ops:
        # Nobody signed in: every route that needs a login refuses.
        reply = _send(world, op, _url(op, targets.values, {}), None, None)
        count.record(400 <= reply.status < 500, f"anonymous {op.method} {op.path}: {reply.status}")
        # County A's inspector and staff against county B; the canteen's staff against the
        # slaughterhouse of their own county.
        pairs = [(u, targets) for u in ATTACKERS] + [("staff-canteen-a", enterprise_targets)]
        for user, victim in pairs:
            query = aimed_query(op, victim.values)
            body = aimed_body(op, doc, victim.values) if op.json_schema(doc) else None
            reply = _send(world, op, _url(op, victim.values, query), user, body)
            if op.path in SESSION_ENDERS:
                world.forget(user)
            aimed = bool(op.path_params) or (op.method != "GET" and bool(body))
            marker = victim.leaks(reply.text) if 200 <= reply.status < 300 else None
            got_through = reply.status >= 500 or (
                200 <= reply.status < 300 and (aimed or marker is not None)
            )
            count.record(
                not got_through,
                f"{user} {op.method} {op.path} -> {reply.status} {marker or ''} {reply.text[:120]}",
            )
    assert count.leaked == 0, count.leaks


TRAVERSALS = (
    "../../central.db",
    "..%2f..%2fcentral.db",
    "%2e%2e%2f%2e%2e%2fcentral.db",
    "..%252f..%252fcentral.db",
    "....//....//central.db",
    "..\\..\\central.db",
    "%2fetc%2fpasswd",
    "snapshot.jpg%00.html",
    "snapshot.jpg/../../../central.yaml",
)
SECRETS = (b"SQLite format 3", b"root:x:0:0", b"data_dir", b"import ", b"BEGIN PRIVATE", b"mqtt")


def test_path_traversal(world: SecurityWorld, targets: Targets, tally: Tally) -> None:
    count = tally["path_traversal"]
    a_alert = targets.a_alert
    paths = []
    for t in TRAVERSALS:
        paths += [
            f"/api/v1/alerts/{a_alert}/media/{t}",
            f"/api/v1/alerts/{a_alert}/evidence/{t}",
            f"/api/v1/video/exports/file?id={t}",
            f"/static/{t}",
            f"/static/..%2f..%2f{t}",
            f"/api/v1/public/{t}",
            f"/p/{t}",
        ]
    for path in paths:
        reply = world.request("GET", path, user="inspector-a")
        leaked = reply.status >= 500 or (
            200 <= reply.status < 300 and any(s in reply.body for s in SECRETS)
        )
        count.record(not leaked, f"GET {path} -> {reply.status} {reply.text[:80]}")
    # The edge's upload names are checked too: no file lands outside the media folder.
    jpeg = camera_jpeg(3)
    for t in TRAVERSALS:
        reply = world.put_media(SITE_A, a_alert, t, jpeg, "image/jpeg")
        count.record(not 200 <= reply.status < 300, f"PUT media {t} -> {reply.status}")
    assert count.leaked == 0, count.leaks


INJECTIONS = (
    "' OR '1'='1",
    "x' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE alerts; --",
    "x' UNION SELECT username, password_hash, 1, 1 FROM users --",
    "%' OR org_path LIKE '%",
    "1) OR (1=1",
    "\x00' OR 1=1",
)


def test_sql_injection(world: SecurityWorld, targets: Targets, tally: Tally) -> None:
    doc = fetch_document(world)
    count = tally["sql_injection"]
    for op in operations(doc):
        if op.method != "GET" or not op.needs_login:
            continue
        names = [p["name"] for p in op.query_params()] + op.path_params
        for name in names:
            for payload in INJECTIONS:
                values = {**targets.values, "alert_id": targets.a_alert, name: payload}
                query = {name: payload} if name not in op.path_params else {}
                reply = world.request("GET", _url(op, values, query), user="inspector-a")
                marker = targets.leaks(reply.text) if reply.status < 300 else None
                leaked = reply.status >= 500 or marker is not None
                count.record(not leaked, f"{op.path} {name}={payload!r} -> {reply.status} {marker}")
    for payload in INJECTIONS:
        for username in (f"admin{payload}", payload):
            reply = world.request(
                "POST",
                "/api/v1/auth/login",
                body=json.dumps({"username": username, "password": payload}).encode(),
                headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.5"},
            )
            count.record(reply.status != 200, f"login {username!r} -> {reply.status}")
    # Still one database with everything in it.
    assert world.call("GET", f"/api/v1/alerts/{targets.values['alert_id']}", "admin").status == 200
    assert count.leaked == 0, count.leaks


BAD_JSON = (
    b'{"note": NaN}',
    b'{"deadline": Infinity, "action": "request_rectification", "note": "x"}',
    b'{"deadline": -Infinity}',
    b'{"deadline": 1e999, "action": "request_rectification", "note": "x"}',
    b'{"x": 1' + b"0" * 5000 + b"}",
    b'{"a": ',
    b"[" * 50000 + b"]" * 50000,
    b'"just a string"',
    b"\xff\xfe{}",
)
# Valid JSON of the wrong shape: refused or ignored, never a server error.
ODD_JSON = (b'{"org_id": {"$gt": 0}}', b'{"__proto__": {"admin": true}}', b"null", b"{}")


def _strict(text: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-finite {name} in a response")

    return json.loads(text, parse_constant=refuse)


def test_malformed_and_non_finite_json(
    world: SecurityWorld, targets: Targets, tally: Tally
) -> None:
    doc = fetch_document(world)
    count = tally["malformed_json"]
    for op in operations(doc):
        if op.json_schema(doc) is None or op.path in SESSION_ENDERS or not op.needs_login:
            continue
        url = _url(op, {**targets.values, "alert_id": targets.a_alert}, {})
        for raw in BAD_JSON:
            reply = world.request(
                op.method,
                url,
                user="admin",
                body=raw,
                headers={"Content-Type": "application/json"},
            )
            accepted = 200 <= reply.status < 300
            count.record(
                not accepted and reply.status < 500,
                f"{op.method} {op.path} {raw[:40]!r} -> {reply.status}",
            )
        for raw in ODD_JSON:
            reply = world.request(
                op.method,
                url,
                user="admin",
                body=raw,
                headers={"Content-Type": "application/json"},
            )
            count.record(reply.status < 500, f"{op.method} {op.path} {raw!r} -> {reply.status}")
    # The reported attack: a deadline of 1e999 must not reach any later alert list.
    for value in ("1e999", "-1e999", "NaN", "Infinity"):
        raw = f'{{"action": "request_rectification", "note": "x", "deadline": {value}}}'.encode()
        reply = world.request(
            "POST",
            f"/api/v1/alerts/{targets.a_alert}/transitions",
            user="inspector-a",
            body=raw,
            headers={"Content-Type": "application/json"},
        )
        count.record(400 <= reply.status < 500, f"deadline {value} -> {reply.status}")
    for user in ("city-monitor", "inspector-a", "admin"):
        for path in ("/api/v1/alerts", f"/api/v1/alerts/{targets.a_alert}"):
            reply = world.request("GET", path, user=user)
            try:
                parsed = _strict(reply.body)
                ok = reply.status == 200 and parsed is not None
            except ValueError:
                ok = False
            count.record(ok, f"{user} {path}: response not strict JSON")
    # Query strings are numbers too.
    for speed in ("nan", "inf", "1e999"):
        reply = world.request(
            "GET",
            f"/api/v1/video/replay/{SITE_A}/{CAMERA}?start=1700000000&speed={speed}",
            user="inspector-a",
        )
        count.record(reply.status == 400, f"speed={speed} -> {reply.status}")
    assert count.leaked == 0, count.leaks


def test_login_csrf(world: SecurityWorld, tally: Tally) -> None:
    count = tally["login_csrf"]
    for user in ("admin", "staff-canteen-a"):
        creds = json.dumps({"username": user, "password": world.users[user], "kind": "cookie"})
        form = urllib.parse.urlencode({"username": user, "password": world.users[user]})
        bodies = [
            ("text/plain", creds.encode()),
            ("text/plain;charset=UTF-8", creds.encode()),
            ("application/x-www-form-urlencoded", form.encode()),
            ("application/x-www-form-urlencoded", creds.encode()),
            ("multipart/form-data; boundary=x", creds.encode()),
            ("", creds.encode()),
        ]
        for ctype, body in bodies:
            headers = {"Origin": "https://evil.example", "X-Forwarded-For": "203.0.113.9"}
            if ctype:
                headers["Content-Type"] = ctype
            reply = world.request("POST", "/api/v1/auth/login", body=body, headers=headers)
            signed_in = reply.status == 200 or "fsv_session" in reply.headers.get("Set-Cookie", "")
            count.record(not signed_in, f"login {user} as {ctype!r} -> {reply.status}")
    assert count.leaked == 0, count.leaks


def test_lockout_cannot_be_turned_against_the_owner(world: SecurityWorld, tally: Tally) -> None:
    count = tally["lockout"]
    for victim in ("admin", "inspector-b"):
        attacker = f"203.0.113.{secrets.randbelow(200) + 10}"
        for i in range(12):
            world.request(
                "POST",
                "/api/v1/auth/login",
                body=json.dumps({"username": victim, "password": f"wrong-{i}"}).encode(),
                headers={"Content-Type": "application/json", "X-Forwarded-For": attacker},
            )
        for owner in ("198.51.100.7", "198.51.100.8"):
            reply = world.request(
                "POST",
                "/api/v1/auth/login",
                body=json.dumps(
                    {"username": victim, "password": world.users[victim], "kind": "bearer"}
                ).encode(),
                headers={"Content-Type": "application/json", "X-Forwarded-For": owner},
            )
            count.record(
                reply.status == 200,
                f"{victim} locked out from {owner}: {reply.status} {reply.text[:100]}",
            )
    # The attacker's own client is slowed down.
    reply = world.request(
        "POST",
        "/api/v1/auth/login",
        body=json.dumps({"username": "admin", "password": "again"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.250"},
    )
    count.record(reply.status in (401, 429), f"wrong password accepted: {reply.status}")
    assert count.leaked == 0, count.leaks


def test_public_links(world: SecurityWorld, targets: Targets, tally: Tally) -> None:
    count = tally["public_links"]
    for _ in range(20):
        token = secrets.token_urlsafe(24)
        for path in (f"/api/v1/public/{token}", f"/p/{token}"):
            reply = world.request("GET", path)
            count.record(reply.status in (404, 429), f"guessed {path} -> {reply.status}")
    # A revoked link shows nothing.
    made = world.call(
        "POST",
        "/api/v1/public-links",
        "staff-canteen-a",
        {"org_id": world.orgs["canteen_a"], "cameras": [f"{SITE_A}/{CAMERA}"]},
    )
    assert made.status == 201, made.text
    link = made.json()
    assert world.request("GET", f"/api/v1/public/{link['token']}").status == 200
    revoked = world.request("DELETE", f"/api/v1/public-links/{link['id']}", user="staff-canteen-a")
    assert revoked.status == 200, revoked.text
    for path in (f"/api/v1/public/{link['token']}", f"/p/{link['token']}"):
        reply = world.request("GET", path)
        count.record(reply.status in (404, 429), f"revoked {path} -> {reply.status}")
    # Nobody publishes another canteen's camera, or another canteen.
    for cameras, org in (
        ([f"{SITE_B}/{CAMERA}"], world.orgs["canteen_a"]),
        ([f"{SITE_A}/{CAMERA}", f"{SITE_B}/{CAMERA}"], world.orgs["canteen_a"]),
        ([f"{SITE_B}/{CAMERA}"], world.orgs["canteen_b"]),
        ([f"{SITE_A}/../{SITE_B}/{CAMERA}"], world.orgs["canteen_a"]),
    ):
        reply = world.call(
            "POST", "/api/v1/public-links", "staff-canteen-a", {"org_id": org, "cameras": cameras}
        )
        count.record(not 200 <= reply.status < 300, f"published {cameras} of {org}: {reply.status}")
    # The public view of B's link shows B's canteen and its published camera, nothing private.
    reply = world.request("GET", f"/api/v1/public/{targets.b_link_token}")
    text = reply.text
    hidden = ("contact", "phone", "inspector", "evidence", "password", "org_path")
    private = [w for w in hidden if w in text]
    count.record(reply.status == 200 and not private, f"public view shows {private}")
    assert count.leaked == 0, count.leaks


def test_results_are_finite(tally: Tally) -> None:
    """The tally document itself is strict JSON."""
    doc = tally.as_json()
    assert all(math.isfinite(float(c["attempts"])) for c in doc["probes"].values())
