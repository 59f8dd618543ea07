"""The shipped HAProxy config (configs/haproxy.cfg) in front of test nodes on loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NODES = ("central-1", "central-2")  # the servers of the shipped config, in its order


def find_haproxy() -> str | None:
    """The haproxy binary (on PATH or Debian's /usr/sbin), or None."""
    found = shutil.which("haproxy")
    if found:
        return found
    return "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None


def haproxy_config(port: int, node_ports: dict[str, int]) -> str:
    """configs/haproxy.cfg listening on `port`, its servers on the nodes' ports, no syslog."""
    text = (REPO / "configs" / "haproxy.cfg").read_text()
    text = re.sub(r"(?m)^\s*log /dev/log.*\n", "", text)
    text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
    for node, node_port in node_ports.items():
        default = 8081 + NODES.index(node)
        text = text.replace(
            f"server {node} 127.0.0.1:{default}", f"server {node} 127.0.0.1:{node_port}"
        )
    assert text.count("127.0.0.1:808") == 0
    return text


def start_haproxy(
    binary: str, folder: Path, port: int, node_ports: dict[str, int]
) -> subprocess.Popen[bytes]:
    """HAProxy in the foreground on `port`; its config and log in `folder`."""
    cfg = folder / "haproxy.cfg"
    cfg.write_text(haproxy_config(port, node_ports))
    log = (folder / "haproxy.log").open("ab")
    return subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
