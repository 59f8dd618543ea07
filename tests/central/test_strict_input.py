"""Strict input at the API: no NaN/Infinity in or out, bounded deadlines, JSON-only login."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from central_support import Central, call

from central.api.jsonio import loads_strict
from central.errors import InvalidInputError


def _strict(text: str) -> object:
    """Parse a response the way a browser does: NaN/Infinity are syntax errors."""
    return loads_strict(text)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_the_parser_refuses_every_non_finite_number(text: str) -> None:
    with pytest.raises(InvalidInputError):
        loads_strict(f'{{"x": [1, {text}]}}')
    assert loads_strict('{"x": [1, 2.5e10, -3]}') == {"x": [1, 2.5e10, -3]}


def test_deeply_nested_json_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="nested too deeply"):
        loads_strict("[" * 50000 + "]" * 50000)


@pytest.mark.asyncio
@pytest.mark.parametrize("deadline", ["1e999", "NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_deadline_is_refused_and_changes_nothing(
    central: Central, deadline: str
) -> None:
    alert_id = await central.event("demo-canteen-a")
    raw = '{"action": "request_rectification", "note": "fix", "deadline": ' + deadline + "}"
    resp = await central.client.post(
        f"/api/v1/alerts/{alert_id}/transitions",
        data=raw,
        headers={**await central.token("inspector-a"), "Content-Type": "application/json"},
    )
    assert resp.status == 400, await resp.text()
    assert "number" in (await resp.json())["error"]["message"]
    status, alert = await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}")
    assert status == 200 and alert["state"] == "new" and alert["deadline"] is None


@pytest.mark.asyncio
async def test_deadlines_are_dates_or_bounded_durations(central: Central) -> None:
    alert_id = await central.event("demo-canteen-a")
    path = f"/api/v1/alerts/{alert_id}/transitions"
    ask = {"action": "request_rectification", "note": "wear hats"}
    too_late = time.time() + 400 * 86400
    for bad in ({"deadline": too_late}, {"deadline_days": 400}, {"deadline_days": 0},
                {"deadline": "2026-13-01T00:00:00Z"}, {"deadline": "2030-01-01T00:00:00"},
                {"deadline_days": 3, "deadline": 2e9}):  # fmt: skip
        status, body = await call(central, "inspector-a", "POST", path, json={**ask, **bad})
        assert status == 400, (bad, body)
    status, alert = await call(
        central, "inspector-a", "POST", path, json={**ask, "deadline_days": 3}
    )
    assert status == 201, alert
    assert 2.99 * 86400 < alert["deadline"] - time.time() < 3.01 * 86400
    in_a_week = time.strftime(
        "%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 7 * 86400 + 8 * 3600)
    )
    other = f"/api/v1/alerts/{await central.event('demo-canteen-a')}/transitions"
    status, alert = await call(
        central, "inspector-a", "POST", other, json={**ask, "deadline": in_a_week}
    )
    assert status == 201, alert
    assert 6.99 * 86400 < alert["deadline"] - time.time() < 7.01 * 86400


@pytest.mark.asyncio
async def test_a_non_finite_query_number_is_refused(central: Central) -> None:
    for query in ("from=inf", "to=nan", "from=1e999"):
        status, body = await call(central, "inspector-a", "GET", f"/api/v1/alerts?{query}")
        assert status == 400, (query, body)


@pytest.mark.asyncio
async def test_an_old_infinite_row_never_reaches_a_response_as_infinity(central: Central) -> None:
    alert_id = await central.event("demo-canteen-a")

    def poison() -> None:
        with central.svc.ldb.transaction() as db:
            db.execute(
                "update alerts set state = 'rectification_requested', deadline = ? where id = ?",
                [float("inf"), alert_id],
            )

    await asyncio.to_thread(poison)
    for path in ("/api/v1/alerts", f"/api/v1/alerts/{alert_id}"):
        resp = await central.client.get(path, headers=await central.token("inspector-a"))
        text = await resp.text()
        assert resp.status == 200 and "Infinity" not in text
        body = _strict(text)
        assert isinstance(body, dict)
    items = json.loads(await (await central.client.get(
        "/api/v1/alerts", headers=await central.token("inspector-a"))).text())["items"]  # fmt: skip
    assert [a["deadline"] for a in items if a["id"] == alert_id] == [None]


@pytest.mark.asyncio
async def test_login_takes_only_a_json_body(central: Central) -> None:
    creds = {"username": "inspector-a", "password": central.passwords["inspector-a"]}
    as_text = await central.client.post(
        "/api/v1/auth/login", data=json.dumps(creds), headers={"Content-Type": "text/plain"}
    )
    as_form = await central.client.post("/api/v1/auth/login", data=creds)
    as_multipart = await central.client.post(
        "/api/v1/auth/login",
        data=json.dumps(creds),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    for resp in (as_text, as_form, as_multipart):
        assert resp.status == 415, await resp.text()
        assert "fsv_session" not in resp.cookies
    as_json = await central.client.post("/api/v1/auth/login", json=creds)
    assert as_json.status == 200 and "fsv_session" in as_json.cookies


@pytest.mark.asyncio
async def test_ingest_stats_need_an_admin(central: Central) -> None:
    anonymous = await central.client.get("/api/v1/ingest/stats")
    assert anonymous.status == 401
    status, _ = await call(central, "inspector-a", "GET", "/api/v1/ingest/stats")
    assert status == 403
    status, stats = await call(central, "admin", "GET", "/api/v1/ingest/stats")
    assert status == 200 and {"received", "rejected", "backlog"} <= set(stats)
