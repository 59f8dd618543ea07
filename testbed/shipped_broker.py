"""The shipped broker config, started as Debian's mosquitto package would start it.

Debian's `/etc/mosquitto/mosquitto.conf` sets the pid file, persistence and the log, then
`include_dir /etc/mosquitto/conf.d`, where `configs/mosquitto/mosquitto.conf` is installed.
This module writes that main file and the shipped file, with only the lines the shipped file
marks as deployment-specific (ports and paths) rewritten, and starts `mosquitto -c` on it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import BrokerError
from testbed.ports import free_port, port_accepts
from testbed.processes import terminate

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "mosquitto" / "mosquitto.conf"
MAKE_CERTS = REPO / "scripts" / "make-certs.sh"
# The only keys whose values name this installation (paths and ports).
DEPLOYMENT_KEYS = ("listener", "certfile", "keyfile", "cafile", "password_file", "acl_file")


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket of a process, as `ss` shows it."""

    address: str
    port: int

    @property
    def loopback(self) -> bool:
        """True for 127.0.0.0/8 and ::1."""
        return self.address.startswith("127.") or self.address in ("::1", "[::1]")


def rewrite_shipped(text: str, folder: Path, tls_port: int, plain_port: int) -> str:
    """The shipped text with its deployment lines pointing at `folder` and the given ports."""
    out = []
    for line in text.splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = re.sub(r"^listener 8883\b", f"listener {tls_port}", line)
            line = re.sub(r"^listener 1883\b", f"listener {plain_port}", line)
        elif key in DEPLOYMENT_KEYS:
            line = line.replace("/etc/mosquitto/fsv/", f"{folder}/")
        out.append(line)
    return "\n".join(out) + "\n"


def changed_keys(shipped: str, rewritten: str) -> set[str]:
    """The config keys of the lines that differ between the two texts (same line count)."""
    a, b = shipped.splitlines(), rewritten.splitlines()
    if len(a) != len(b):
        raise ValueError("the rewrite added or removed lines")
    return {x.split(" ", 1)[0] for x, y in zip(a, b, strict=True) if x != y}


def listeners_of(pid: int) -> list[Listener]:
    """Every listening TCP socket of process `pid` (from `ss -ltnpH`)."""
    text = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    found = []
    for row in text.splitlines():
        if f"pid={pid}," not in row:
            continue
        local = row.split()[3]
        address, _, port = local.rpartition(":")
        found.append(Listener(address.strip("[]"), int(port)))
    return found


class ShippedBroker:
    """mosquitto started on a Debian-style main config that includes the shipped file."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="fsv-shipped-broker-"))
        self.tls_port = free_port()
        self.plain_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.shipped_text = SHIPPED.read_text()
        self.rewritten = rewrite_shipped(
            self.shipped_text, self.folder, self.tls_port, self.plain_port
        )

    def start(self, timeout: float = 15.0) -> None:
        """Certificates, empty password and ACL files, the two configs; start and wait."""
        subprocess.run(
            ["bash", str(MAKE_CERTS), str(self.folder / "certs")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        for name in ("passwd", "acl"):
            (self.folder / name).write_text("")
            (self.folder / name).chmod(0o600)
        (self.folder / "data").mkdir()
        confd = self.folder / "conf.d"
        confd.mkdir()
        (confd / "fsv.conf").write_text(self.rewritten)
        main = self.folder / "mosquitto.conf"
        main.write_text(
            f"pid_file {self.folder}/mosquitto.pid\n"
            "persistence true\n"
            f"persistence_location {self.folder}/data/\n"
            f"log_dest file {self.folder}/mosquitto.log\n"
            f"include_dir {confd}\n"
        )
        chown_to_mosquitto(self.folder)
        with (self.folder / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(main)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not port_accepts(self.plain_port):
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto not listening:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        """The broker's stderr and log file."""
        parts = []
        for name in ("stderr.log", "mosquitto.log"):
            path = self.folder / name
            if path.is_file():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def close(self) -> None:
        """Stop the broker and remove its folder."""
        if self.proc is not None:
            terminate(self.proc, 10.0)
            self.proc = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ShippedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chown_to_mosquitto(root: Path) -> None:
    """Give the folder and all in it to the mosquitto user when we are root (mosquitto drops
    to it, and must still read its files)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
