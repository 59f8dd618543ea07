"""A real Mosquitto broker on 127.0.0.1 for tests: temp config, persistence, stop and restart."""

import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import BrokerError
from testbed.ports import LOOPBACK, free_port, port_accepts
from testbed.processes import ManagedProcess, kill, terminate

log = logging.getLogger(__name__)

MOSQUITTO = "mosquitto"
# When started as root, mosquitto drops to this user: its files must be writable by it.
MOSQUITTO_USER = "mosquitto"


@dataclass(frozen=True)
class BrokerOptions:
    """What goes into the broker's config file."""

    allow_anonymous: bool = True
    password_file: Path | None = None
    acl_file: Path | None = None
    # The default (1000) silently drops QoS 1 messages queued for a slow or offline client.
    max_queued_messages: int = 1_000_000
    max_inflight_messages: int = 100
    # Seconds between database saves; the database is always saved on a clean stop.
    autosave_interval: int = 30
    extra_config: Sequence[str] = field(default_factory=tuple)


class Broker(ManagedProcess):
    """One `mosquitto -c CONF` process; its folder (config, database, log) outlives restarts."""

    def __init__(
        self,
        port: int | None = None,
        options: BrokerOptions | None = None,
        *,
        workdir: Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.options = options or BrokerOptions()
        self.start_timeout = start_timeout
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="fsv-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """The generated mosquitto.conf."""
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """The broker's log file."""
        return self.workdir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (for CPU and memory readings)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Write the config, start the broker and wait until its port accepts connections."""
        if self.running:
            raise BrokerError(f"broker already running on port {self.port}")
        self._prepare_dir()
        with (self.workdir / "stderr.log").open("ab") as stderr:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            self._wait_listening(self._proc)
        except BaseException:
            self.kill()
            raise
        log.info("mosquitto ready on %s:%d (pid %d)", self.host, self.port, self._proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM: the database, with persistent sessions, is saved)."""
        proc = self._proc
        if proc is None:
            return
        if not terminate(proc, timeout):
            log.warning("mosquitto %d ignored SIGTERM and was killed", proc.pid)
        self._proc = None

    def kill(self) -> None:
        """Kill the broker at once (a crash: changes since the last autosave are lost)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            kill(proc)

    def reload(self) -> None:
        """Copy the password and ACL files again and make the broker re-read them (SIGHUP)."""
        self._copy_auth_files()
        if self._proc is None or self._proc.poll() is not None:
            raise BrokerError("broker is not running")
        self._proc.send_signal(signal.SIGHUP)

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the broker's log and stderr (for failure messages)."""
        parts = []
        for path in (self.workdir / "stderr.log", self.log_path):
            if path.is_file():
                parts.append(path.read_bytes()[-limit:].decode(errors="replace"))
        return "\n".join(parts)

    def close(self) -> None:
        """Stop the broker and remove its folder if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _prepare_dir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._copy_auth_files()
        self.config_path.write_text(render_config(self.port, self.workdir, self.options))
        _give_to_mosquitto_user(self.workdir)

    def _copy_auth_files(self) -> None:
        """Copies in the broker's folder, readable by the user mosquitto runs as."""
        for source, name in (
            (self.options.password_file, "passwd"),
            (self.options.acl_file, "acl"),
        ):
            if source is not None:
                target = self.workdir / name
                shutil.copyfile(source, target)
                target.chmod(0o600)
                _give_to_mosquitto_user(target)

    def _wait_listening(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not port_accepts(self.port, self.host, timeout=0.2):
            if proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"mosquitto not listening after {self.start_timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)


def render_config(port: int, workdir: Path, options: BrokerOptions) -> str:
    """The mosquitto.conf text for a broker on 127.0.0.1:`port` keeping its files in `workdir`."""
    lines = [
        f"listener {port} {LOOPBACK}",
        f"allow_anonymous {'true' if options.allow_anonymous else 'false'}",
        "persistence true",
        f"persistence_location {workdir}/",
        "persistence_file mosquitto.db",
        f"autosave_interval {options.autosave_interval}",
        f"max_queued_messages {options.max_queued_messages}",
        f"max_inflight_messages {options.max_inflight_messages}",
        f"pid_file {workdir / 'mosquitto.pid'}",
        f"log_dest file {workdir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
    ]
    if options.password_file is not None:
        lines.append(f"password_file {workdir / 'passwd'}")
    if options.acl_file is not None:
        lines.append(f"acl_file {workdir / 'acl'}")
    lines.extend(options.extra_config)
    return "\n".join(lines) + "\n"


def _give_to_mosquitto_user(path: Path) -> None:
    """chown `path` to the mosquitto user when we are root (mosquitto then drops to it)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return  # no such user: mosquitto keeps running as root
    os.chown(path, user.pw_uid, user.pw_gid)
