"""A real PostgreSQL server in a temporary folder on a random port of 127.0.0.1, for tests.

initdb runs once per server; each test gets a fresh database copied from a template
(`CREATE DATABASE ... TEMPLATE`), which takes milliseconds. Run as root, the server runs as
the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from testbed.ports import free_port

START_TIMEOUT_S = 30


def find_bin_dir() -> Path | None:
    """The folder of initdb, pg_ctl and postgres: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


class PostgresServer:
    """initdb + pg_ctl start in a temporary folder; `stop()` (or leaving `with`) removes it."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL server binaries not found (scripts/install.sh tests)")
        self.bin_dir = found
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")  # KeyError: no user to run the server as
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="fsv-pg-"))
        self.data = self.folder / "data"
        self._started = False

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._run_as, *args], check=True, capture_output=True, timeout=START_TIMEOUT_S * 2
        )

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; returns when it accepts connections."""
        if self._run_as:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user,
            "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "server.log"), "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip
        self._started = True
        return self

    def url(self, database: str = "postgres") -> str:
        """The connection URL of one database of this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            suffix = f" template {template}" if template else ""
            conn.execute(f"create database {name}{suffix}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database` (closing what is still connected)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self._started:
            try:
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")  # fmt: skip
            finally:
                self._started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
