"""Shared fixtures: real footage, a real RTSP server and a real Mosquitto broker on 127.0.0.1."""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import StorageConfig
from edge_agent.retention.planner import required_free_bytes
from testbed import central_rows
from testbed.footage import Footage, ensure_footage
from testbed.mosquitto import Broker, BrokerOptions
from testbed.postgres import PostgresServer
from testbed.rtsp import RtspServer, camera_paths

RtspServerFactory = Callable[..., RtspServer]
BrokerFactory = Callable[..., Broker]

# What the suite itself writes at most on top of the recorders' watermark (clips, segments,
# databases, browser profiles), with room to spare.
SUITE_WRITES_BYTES = 3 << 30


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, saying why, when the disk under the tests is too full to record on.

    The recorders in the tests keep the edge agent's default watermark (5 % of the disk,
    at least 1 GiB): on a fuller disk they evict and refuse writes as they should, and
    recording tests would fail without naming the disk.
    """
    folder = Path(tempfile.gettempdir())
    disk = shutil.disk_usage(folder)
    watermark = required_free_bytes(StorageConfig(path=folder), disk.total)
    needed = watermark + SUITE_WRITES_BYTES
    if disk.free < needed:
        gib = 1 << 30
        pytest.exit(
            f"the disk under {folder} has {disk.free / gib:.1f} GiB free; the tests need "
            f"{needed / gib:.1f} GiB: the edge agent's default watermark on this "
            f"{disk.total / gib:.1f} GiB disk ({watermark / gib:.1f} GiB), which the recording "
            f"tests keep, and {SUITE_WRITES_BYTES / gib:.0f} GiB to write. Free some space "
            "and run again.",
            returncode=2,
        )


@pytest.fixture(scope="session")
def footage() -> Footage:
    """The cached test clips (built on first use, about 40 s on 2 cores)."""
    return ensure_footage()


@pytest.fixture(scope="session")
def rtsp_server(footage: Footage) -> Iterator[RtspServer]:
    """One shared RTSP server: cam1, cam1_sub, cam2, cam2_sub, h265, short and audio variants
    (aac, pcma, pcmu, ac3, mp3, opus).

    Do not stop it in a test: use `rtsp_server_factory` for outages.
    """
    with RtspServer(camera_paths(footage)) as server:
        yield server


@pytest.fixture
def rtsp_server_factory(footage: Footage) -> Iterator[RtspServerFactory]:
    """Start private RTSP servers a test may stop and restart; all are stopped afterwards.

    Call it as `factory(paths=None, port=None, udp=False)`; paths default to the standard set.
    """
    servers: list[RtspServer] = []

    def start(
        paths: Mapping[str, Path] | None = None, port: int | None = None, udp: bool = False
    ) -> RtspServer:
        server = RtspServer(paths or camera_paths(footage), port, udp=udp)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def mosquitto_broker() -> Iterator[Broker]:
    """One shared anonymous broker; do not stop it in a test (use `mosquitto_broker_factory`)."""
    with Broker() as broker:
        yield broker


@pytest.fixture
def mosquitto_broker_factory() -> Iterator[BrokerFactory]:
    """Start private brokers a test may stop, restart or configure; all are closed afterwards.

    Call it as `factory(port=None, **BrokerOptions fields)`, e.g.
    `factory(allow_anonymous=False, password_file=..., acl_file=...)`.
    """
    brokers: list[Broker] = []

    def start(port: int | None = None, **options: Any) -> Broker:
        # Its own folder under /tmp: pytest's tmp_path is not reachable by the `mosquitto`
        # user the broker drops to when started as root.
        broker = Broker(port, BrokerOptions(**options))
        brokers.append(broker)
        broker.start()
        return broker

    yield start
    for broker in brokers:
        broker.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (initdb in a temp dir, a random port)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A database with every central migration applied, copied for each test."""
    from central import schema
    from central.storage.db import CentralDatabase, apply_migrations
    from central.video import exports

    url = postgres_server.create_database()
    database = CentralDatabase(url)
    with database.lock:
        apply_migrations(schema.migrations, database.db)
        apply_migrations(exports.migrations, database.db)
    database.close()
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="session", autouse=True)
def system_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    """With $FSV_TEST_DATABASE=postgres, every system a fixture starts as a real
    `central-server` (security world, browser systems, model sites) gets a fresh migrated
    PostgreSQL database instead of its SQLite file (testbed/central_rows.py)."""
    if os.environ.get("FSV_TEST_DATABASE", "sqlite") != "postgres":
        yield
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("postgres_template")
    made: list[str] = []

    def new() -> str:
        made.append(server.create_database(template=template))
        return made[-1]

    central_rows.use_databases(new)
    try:
        yield
    finally:
        central_rows.use_databases(None)
        for url in made:
            server.drop_database(url)


@pytest.fixture
def central_backend(request: pytest.FixtureRequest) -> str:
    """The engine under central's database: a `databases` mark's, else $FSV_TEST_DATABASE
    ("sqlite" by default; "postgres" runs every test that takes the database from
    `central_db_url`, the app fixtures' included, on PostgreSQL)."""
    return str(getattr(request, "param", os.environ.get("FSV_TEST_DATABASE", "sqlite")))


@pytest.fixture
def central_db_url(central_backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None on SQLite (the default file), or the URL of a fresh PostgreSQL database."""
    if central_backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(template=request.getfixturevalue("postgres_template"))
    yield url
    server.drop_database(url)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.databases("sqlite", "postgres")` runs a test once per engine."""
    marker = metafunc.definition.get_closest_marker("databases")
    if marker is not None and "central_backend" in metafunc.fixturenames:
        metafunc.parametrize("central_backend", marker.args, indirect=True)
