"""Tables of several central nodes sharing one database."""

from __future__ import annotations

import sqlite_utils


def m019_node_leases(db: sqlite_utils.Database) -> None:
    """Leases of the work that runs on one node at a time; claims of push jobs by node."""
    db.execute(
        "create table node_leases ("
        "name text primary key, holder text not null, expires_at float not null)"
    )
    db.execute("alter table deliveries add column claimed_by text")
    db.execute("alter table deliveries add column claimed_until float")


def m020_login_failures(db: sqlite_utils.Database) -> None:
    """Failed logins counted in the database, so every node applies one throttle."""
    db.execute(
        "create table login_failures ("
        "key text primary key, count integer not null, last float not null)"
    )


def m021_shared_limits(db: sqlite_utils.Database) -> None:
    """Rate limits counted in the database (public view, webhook tests, token audits)."""
    db.execute(
        "create table shared_limits ("
        "key text primary key, hits text not null, expires_at float not null)"
    )
    db.execute("create index shared_limits_expiry on shared_limits (expires_at)")
