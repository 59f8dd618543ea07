"""The whole system on one machine: sample cameras, broker, central and an edge agent.

Run with ``python -m testbed.demo`` (``scripts/demo.sh`` installs and starts it). Everything
listens on 127.0.0.1 only; state lives under ``var/demo`` and is kept between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from central.config import BrokerAdminConfig
from central.ingest.accounts import (
    central_passwords,
    issue_site_credentials,
    set_password,
    set_passwords,
    write_acl,
)
from testbed.demo_edge import DemoCamera, demo_edge_config
from testbed.demo_public import (
    CANTEEN_SITE,
    PublicLink,
    canteen_edge_config,
    canteen_streams,
    ensure_public_link,
    ensure_site,
)
from testbed.footage import Footage, ensure_footage
from testbed.mosquitto import Broker, BrokerOptions
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate
from testbed.rtsp import RtspServer

REPO = Path(__file__).resolve().parents[1]
SHIPPED_BROKER_CONF = REPO / "configs" / "mosquitto" / "mosquitto.conf"
SITE = "demo-slaughter-01"
TIMEZONE = "Asia/Shanghai"
# Lines of the shipped broker config the demo broker sets itself (listeners, files, paths).
_BROKER_OWN = (
    "listener",
    "certfile",
    "keyfile",
    "cafile",
    "tls_version",
    "password_file",
    "acl_file",
    "persistence_location",
    "persistence",
    "per_listener_settings",
)
_BROKER_FIELDS = {
    "allow_anonymous",
    "max_queued_messages",
    "max_inflight_messages",
    "autosave_interval",
}


def shipped_broker_options(admin: BrokerAdminConfig) -> BrokerOptions:
    """BrokerOptions with the policy lines of configs/mosquitto/mosquitto.conf."""
    fields: dict[str, Any] = {}
    extra: list[str] = []
    for raw in SHIPPED_BROKER_CONF.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key in _BROKER_OWN:
            continue
        if key in _BROKER_FIELDS:
            fields[key] = value == "true" if key == "allow_anonymous" else int(value)
        else:
            extra.append(line)
    return BrokerOptions(
        password_file=admin.password_file, acl_file=admin.acl_file, extra_config=extra, **fields
    )


@dataclass(frozen=True)
class SiteBroker:
    """A started broker with the shipped policy, central's login and one site's login."""

    broker: Broker
    admin: BrokerAdminConfig
    central_password: str
    site_password: str


def start_site_broker(root: Path, site: str) -> SiteBroker:
    """Accounts and ACL under `root/auth` (central plus `site`), then the broker, started."""
    admin = BrokerAdminConfig(
        password_file=root / "auth" / "passwd", acl_file=root / "auth" / "acl"
    )
    central_password = os.urandom(12).hex()
    set_passwords(admin, central_passwords("central", central_password))
    write_acl(admin, "central")
    site_password = issue_site_credentials(admin, site, "central").password
    broker = Broker(options=shipped_broker_options(admin))
    broker.start()
    return SiteBroker(broker, admin, central_password, site_password)


def camera_streams(footage: Footage) -> dict[str, Path]:
    """RTSP paths of the demo cameras: a main and a sub stream each."""
    return {
        "disposal-1": footage.main_h264,
        "disposal-1_sub": footage.sub_h264,
        "quarantine-1": footage.main_h264,
        "quarantine-1_sub": footage.sub_h264,
    }


def _closed_window_now(tz: str) -> dict[str, Any]:
    """A one-hour permitted window twelve hours away, so 'now' counts as after hours."""
    start = datetime.now(ZoneInfo(tz)) + timedelta(hours=12)
    end = start + timedelta(hours=1)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    if end.date() != start.date():
        start = start.replace(hour=0, minute=0)
        end = start + timedelta(hours=1)
    return {"days": days, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


def edge_config(root: Path, rtsp: RtspServer, broker_port: int, central_url: str) -> dict[str, Any]:
    """The demo edge agent's configuration."""
    # The demo runs "at night": people in the disposal room raise an alert.
    after_hours = {
        "id": "disposal-after-hours",
        "min_seconds": 5,
        "cooldown_s": 120,
        "permitted": [_closed_window_now(TIMEZONE)],
    }
    return demo_edge_config(
        site=SITE,
        recordings=root / "recordings",
        state=root / "edge-state",
        rtsp=rtsp,
        broker_port=broker_port,
        central_url=central_url,
        timezone=TIMEZONE,
        cameras=[
            DemoCamera(
                "disposal-1",
                "Harmless disposal room",
                "harmless_disposal",
                detection={"rules": [after_hours]},
            ),
            DemoCamera("quarantine-1", "Synchronous quarantine inspection", "quarantine"),
        ],
        detection={"fps": 1, "pre_roll_s": 5, "post_roll_s": 5},
    )


def central_config(
    root: Path, http_port: int, broker_port: int, admin: BrokerAdminConfig
) -> dict[str, Any]:
    """The demo central server's configuration."""
    return {
        "data_dir": str(root / "central"),
        "log_level": "INFO",
        "http": {"host": "127.0.0.1", "port": http_port},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "reconnect_max_s": 5},
        "broker": {"password_file": str(admin.password_file), "acl_file": str(admin.acl_file)},
        "web": {"base_url": f"http://127.0.0.1:{http_port}", "cookie_secure": False},
    }


class Demo:
    """Starts the parts in order and stops them in reverse."""

    def __init__(self, root: Path, http_port: int) -> None:
        self.root = root
        self.http_port = http_port
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.closers: list[Callable[[], None]] = []
        self.accounts: list[dict[str, str]] = []
        self.orgs: dict[str, int] = {}
        self.public: PublicLink | None = None

    def start(self) -> None:
        """Footage, cameras, broker, central (seeded), the slaughterhouse's and the canteen's
        edge agents, then the canteen's public link."""
        self.root.mkdir(parents=True, exist_ok=True)
        say("building sample footage (cached after the first run)")
        footage = ensure_footage()
        rtsp = RtspServer({**camera_streams(footage), **canteen_streams(footage)})
        rtsp.start()
        self.closers.append(rtsp.close)
        say(
            f"sample cameras: {rtsp.url('disposal-1')}, {rtsp.url('quarantine-1')}, "
            f"{rtsp.url('kitchen-1')}, {rtsp.url('washing-1')} (+ _sub)"
        )

        site_broker = start_site_broker(self.root, SITE)
        broker = site_broker.broker
        self.closers.append(broker.close)
        say(f"MQTT broker (per-site accounts and ACL): 127.0.0.1:{broker.port}")

        central_url = f"http://127.0.0.1:{self.http_port}"
        canteen_password = self._start_canteen(site_broker, rtsp, central_url)
        self._start_central(site_broker.admin, broker.port, site_broker.central_password)
        config = edge_config(self.root, rtsp, broker.port, central_url)
        edge_yaml = self.root / "edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            **os.environ,
            "EDGE_CRED_MQTT_USER": SITE,
            "EDGE_CRED_MQTT_PASSWORD": site_broker.site_password,
        }
        self._spawn("edge-agent", ["-m", "edge_agent", "run", "-c", str(edge_yaml)], env)
        if ensure_site(central_url, self.accounts, self.orgs):
            # A demo state from before the canteen's site: registering it issued another
            # password; the running canteen agent keeps its own.
            set_password(site_broker.admin, CANTEEN_SITE, canteen_password)
            broker.reload()
        say("publishing the canteen's kitchen cameras (public link and QR code)")
        self.public = ensure_public_link(central_url, self.accounts, self.orgs, self.root, 60)

    def _start_canteen(self, site_broker: SiteBroker, rtsp: RtspServer, central_url: str) -> str:
        """The school canteen's edge agent with its own broker login (its password).

        It starts before central, so central finds its cameras' retained states at once.
        """
        password = issue_site_credentials(site_broker.admin, CANTEEN_SITE, "central").password
        site_broker.broker.reload()
        config = canteen_edge_config(
            self.root, rtsp, site_broker.broker.port, central_url, TIMEZONE
        )
        edge_yaml = self.root / "canteen-edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            **os.environ,
            "EDGE_CRED_MQTT_USER": CANTEEN_SITE,
            "EDGE_CRED_MQTT_PASSWORD": password,
        }
        self._spawn("canteen-edge-agent", ["-m", "edge_agent", "run", "-c", str(edge_yaml)], env)
        return password

    def _start_central(self, admin: BrokerAdminConfig, broker_port: int, password: str) -> None:
        config_path = self.root / "central.yaml"
        config_path.write_text(
            yaml.safe_dump(
                central_config(self.root, self.http_port, broker_port, admin), sort_keys=False
            )
        )
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": password}
        accounts_file = self.root / "accounts.json"
        if not accounts_file.exists():
            seeded = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "central",
                    "seed-demo",
                    "--json",
                    "-c",
                    str(config_path),
                    "--site",
                    f"{SITE}=slaughter_a",
                    "--site",
                    f"{CANTEEN_SITE}=canteen_a",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            accounts_file.write_text(seeded.stdout)
        seeded_state = json.loads(accounts_file.read_text())
        self.accounts = seeded_state["users"]
        self.orgs = seeded_state["orgs"]
        self._spawn("central-server", ["-m", "central", "run", "-c", str(config_path)], env)
        wait_until(lambda: port_accepts(self.http_port), 30, "central to listen")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.procs.append((name, spawn_python(args, env, self.root / f"{name}.log")))

    def check_alive(self) -> list[str]:
        """Names of processes that have exited."""
        return [name for name, proc in self.procs if proc.poll() is not None]

    def stop(self) -> None:
        """Stop processes in reverse order (SIGTERM, then SIGKILL), then the fixtures."""
        for _name, proc in reversed(self.procs):
            terminate(proc, 20)
        for close in reversed(self.closers):
            close()

    def banner(self) -> str:
        """What the user should open and how to stop."""
        url = f"http://127.0.0.1:{self.http_port}/"
        lines = [
            "",
            "Demo is running.",
            f"  Open:        {url}",
            "  Accounts:",
            *(f"    {a['role']:<17} {a['username']:<18} {a['password']}" for a in self.accounts),
            *self._public_lines(),
            f"  Recordings:  {self.root / 'recordings'}  ({{camera}}/{{date}}/{{hour}}/MM.SS.mp4)",
            f"               {self.root / 'canteen-recordings'}  (the canteen's cameras)",
            f"  Storage:     .venv/bin/edge-agent storage -c {self.root / 'edge.yaml'}",
            f"  Logs:        {self.root}/edge-agent.log, {self.root}/canteen-edge-agent.log, "
            f"{self.root}/central-server.log",
            "  Stop:        Ctrl-C (or kill -TERM this process)",
            "",
        ]
        return "\n".join(lines)

    def _public_lines(self) -> list[str]:
        if self.public is None:
            return []
        return [
            f"  Public page: {self.public.url}",
            "               (明厨亮灶 bright kitchen: what parents see from the QR code, no login)",
            f"  QR code:     {self.public.qr_path}  (print it for the kitchen door)",
        ]


def say(text: str) -> None:
    """Progress line on stdout."""
    print(f"==> {text}", flush=True)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until true; RuntimeError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C, SIGTERM or --duration seconds."""
    parser = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO / "var" / "demo",
        help="folder for recordings, databases and logs",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="central's HTTP port (0, or busy: any free port)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop after this many seconds (0: run until stopped)",
    )
    args = parser.parse_args(argv)
    port = args.port if args.port and not port_accepts(args.port) else free_port()
    demo = Demo(args.root.resolve(), port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        demo.start()
        print(demo.banner(), flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.wait(1.0):
            if dead := demo.check_alive():
                print(
                    f"demo: {', '.join(dead)} exited; see its log in {demo.root}", file=sys.stderr
                )
                return 1
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        say("stopping")
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
