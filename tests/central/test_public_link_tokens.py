"""Public links keep only a digest of their token: the token is shown once, when the link is
made; a database backup or replica grants no view; links made before the upgrade keep working."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from central_support import Central, call

from central import schema
from central.errors import NotFoundError
from central.regulation.passwords import new_token, token_digest
from central.regulation.public import PublicLinks
from central.storage import db as ingest
from central.storage.db import CentralDatabase, apply_migrations

pytestmark = pytest.mark.databases("sqlite", "postgres")

MIGRATION = "m025_public_link_token_digests"


def _all_values(database: Any) -> list[str]:
    """Every value of every row of every table, as text."""
    values: list[str] = []
    with database.read() as db:
        for table in db.table_names():
            for row in db.execute(f'select * from "{table}"').fetchall():
                values.extend(str(v) for v in row)
    return values


def _sqlite_bytes(path: Path) -> bytes:
    """The SQLite file and its write-ahead log, as they lie on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def _publish(central: Central) -> dict[str, Any]:
    central.svc.orgs.upsert_camera("demo-canteen-a", "cam1", name="后厨", station="kitchen_prep")
    status, link = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": central.seed["orgs"]["canteen_a"], "cameras": ["demo-canteen-a/cam1"]},
    )
    assert status == 201, link
    return link


@pytest.mark.asyncio
async def test_the_database_keeps_a_digest_and_the_token_is_shown_once(
    central: Central, central_backend: str, tmp_path: Path
) -> None:
    link = await _publish(central)
    token = link["token"]
    assert link["url"].endswith(f"/p/{token}") and len(token) >= 43
    assert not any(token in v for v in _all_values(central.svc.ldb))
    with central.svc.ldb.read() as db:
        stored = db.execute("select token_hash from public_links where id = ?", [link["id"]])
        assert stored.fetchone()[0] == token_digest(token)
    if central_backend == "sqlite":  # the file itself, read with SQLite and as bytes
        path = tmp_path / "data" / "central.db"
        with sqlite3.connect(path) as raw:
            columns = [r[1] for r in raw.execute("pragma table_info(public_links)")]
            rows = raw.execute("select * from public_links").fetchall()
        raw.close()
        assert "token" not in columns and "token_hash" in columns
        assert rows and not any(token in str(v) for row in rows for v in row)
        assert token.encode() not in _sqlite_bytes(path)

    # The list and the link itself no longer carry the token (nor its digest).
    status, listed = await call(central, "staff-canteen-a", "GET", "/api/v1/public-links")
    assert status == 200 and [x["id"] for x in listed["items"]] == [link["id"]]
    item = listed["items"][0]
    assert "token" not in item and "token_hash" not in item and "url" not in item
    assert token not in str(listed) and item["active"] is True

    # The page still opens by the token.
    assert (await central.client.get(f"/api/v1/public/{token}")).status == 200
    assert (await central.client.get(f"/p/{token}")).status == 200


@pytest.mark.asyncio
async def test_qr_and_poster_need_the_token_shown_at_creation(central: Central) -> None:
    link = await _publish(central)
    base = f"/api/v1/public-links/{link['id']}"
    for what in ("qr.svg", "poster"):
        status, err = await call(central, "staff-canteen-a", "GET", f"{base}/{what}")
        assert status == 400 and "shown once" in err["error"]["message"], (what, err)
        status, _ = await call(
            central, "staff-canteen-a", "GET", f"{base}/{what}?token=x{link['token']}"
        )
        assert status == 404, what
    status, svg = await call(
        central, "staff-canteen-a", "GET", f"{base}/qr.svg?token={link['token']}"
    )
    assert status == 200 and b"<svg" in svg
    status, page = await call(
        central, "staff-canteen-a", "GET", f"{base}/poster?token={link['token']}"
    )
    assert status == 200 and f">{link['url']}<" in page.decode()


@pytest.mark.asyncio
async def test_revoked_and_expired_links_are_still_refused(central: Central) -> None:
    revoked, expiring = await _publish(central), await _publish(central)
    status, _ = await call(
        central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{revoked['id']}"
    )
    assert status == 200
    with central.svc.ldb.transaction() as db:
        db.execute(
            "update public_links set expires_at = ? where id = ?", [time.time(), expiring["id"]]
        )
    for link in (revoked, expiring):
        assert (await central.client.get(f"/api/v1/public/{link['token']}")).status == 404
        assert (await central.client.get(f"/p/{link['token']}")).status == 404
    status, listed = await call(central, "staff-canteen-a", "GET", "/api/v1/public-links")
    states = {x["id"]: (x["revoked_at"] is not None, x["expired"]) for x in listed["items"]}
    assert states == {revoked["id"]: (True, False), expiring["id"]: (False, True)}


@pytest.fixture
def empty_database(
    central_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[CentralDatabase]:
    """A database with no migration applied, on the engine under test."""
    if central_backend == "sqlite":
        database = CentralDatabase(tmp_path / "old.db")
        yield database
        database.close()
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    database = CentralDatabase(url)
    yield database
    database.close()
    server.drop_database(url)


def test_links_made_before_the_upgrade_keep_working(
    empty_database: CentralDatabase, central_backend: str, tmp_path: Path
) -> None:
    database = empty_database
    with database.lock:
        apply_migrations(ingest.migrations, database.db)
        apply_migrations(schema.migrations, database.db, stop_before=MIGRATION)
    now = time.time()
    old = {name: new_token() for name in ("live", "later", "revoked", "expired")}
    with database.transaction() as db:
        for name, token in old.items():
            db.table("public_links").insert(
                {"token": token, "org_id": 1, "org_path": "/1/", "cameras": '["s/c"]',
                 "label": name, "created_by": 1, "created_at": now - 86400,
                 "revoked_at": now - 60 if name == "revoked" else None,
                 "expires_at": {"later": now + 3600, "expired": now - 1}.get(name),
                 "max_viewers": None}
            )  # fmt: skip
    with database.lock:
        apply_migrations(schema.migrations, database.db)

    links = PublicLinks(database)
    for name in ("live", "later"):
        link = links.link(old[name])
        assert link["org_id"] == 1 and link["max_viewers"] == 20, name
    for name in ("revoked", "expired"):
        with pytest.raises(NotFoundError):
            links.link(old[name])
    with pytest.raises(NotFoundError):
        links.link(token_digest(old["live"]))  # the digest is no token
    values = _all_values(database)
    assert not any(token in v for token in old.values() for v in values)
    assert {token_digest(t) for t in old.values()} <= set(values)
    if central_backend == "sqlite":  # the old tokens are gone from the file too
        with database.lock:
            database.db.execute("pragma wal_checkpoint(truncate)")
        data = _sqlite_bytes(tmp_path / "old.db")
        assert not any(token.encode() in data for token in old.values())
