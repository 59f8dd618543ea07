"""Fixtures of the regulator tests: the real central app on a temporary database."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from central_support import Central, make_config

from central.api.common import SERVICES
from central.app import create_app
from central.regulation.seed import seed_demo

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest_asyncio.fixture
async def central(
    central_db_url: str | None, aiohttp_client: ClientFactory, tmp_path: Path
) -> Central:
    """The real app (broker unreachable: ingest keeps retrying) with the demo tree seeded,
    on SQLite, or on PostgreSQL in a module marked `databases("sqlite", "postgres")`."""
    client = await aiohttp_client(create_app(make_config(tmp_path, database=central_db_url)))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    return Central(client, seed)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test starts (central nodes, HAProxy): any still running at its end are
    killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
