"""The video system of video_system.py with two central nodes behind the shipped HAProxy.

Both nodes are `central-server run` processes on one SQLite file and one data folder
(`cluster.nodes: 2`); HAProxy runs configs/haproxy.cfg with only the addresses changed, and
the edge agent and the browser reach central through it. The broker runs the shipped policy;
each node logs in with its own account (`central@{node_id}`, docs/central.md "Several nodes").
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import yaml
from video_system import SITE, VideoSystem, wait_until

from central.config import BrokerAdminConfig
from central.ingest.accounts import (
    central_passwords,
    issue_site_credentials,
    set_passwords,
    write_acl,
)
from central.nodes import NODE_HEADER
from testbed.demo import shipped_broker_options
from testbed.haproxy import NODES, find_haproxy, start_haproxy
from testbed.mosquitto import Broker
from testbed.ports import free_port, port_accepts


class TwoNodeVideoSystem(VideoSystem):
    """Broker, two central nodes, HAProxy and the edge agent; `url` is HAProxy's."""

    def start(self) -> None:
        """Broker (an account per node), the seeded nodes and HAProxy, then the edge."""
        self.root.mkdir(parents=True, exist_ok=True)
        admin = BrokerAdminConfig(
            password_file=self.root / "auth" / "passwd", acl_file=self.root / "auth" / "acl"
        )
        central_password = os.urandom(12).hex()
        set_passwords(admin, central_passwords("central", central_password, NODES))
        write_acl(admin, "central")
        self.site_password = issue_site_credentials(admin, SITE, "central").password
        self.broker = Broker(options=shipped_broker_options(admin))
        self.broker.start()
        self._start_central(admin, central_password)
        edge_yaml = self.root / "edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(self._edge_config()))
        env = {
            **os.environ,
            "EDGE_CRED_MQTT_USER": SITE,
            "EDGE_CRED_MQTT_PASSWORD": self.site_password,
        }
        self._spawn("edge-agent", ["-m", "edge_agent", "run", "-c", str(edge_yaml)], env)

    def _start_central(self, admin: BrokerAdminConfig, password: str) -> None:
        binary = find_haproxy()
        assert binary, "haproxy is not installed (scripts/install.sh installs it)"
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": password}
        self.node_ports = {node: free_port() for node in NODES}
        configs = {}
        for node in NODES:
            config = self._central_config(admin)
            config["http"]["port"] = self.node_ports[node]
            config["cluster"] = {"nodes": 2, "node_id": node, "lease_s": 3, "renew_s": 1}
            config["web"]["trusted_proxies"] = ["127.0.0.1/32"]
            configs[node] = self.root / f"{node}.yaml"
            configs[node].write_text(yaml.safe_dump(config))
        result = self._seed(configs[NODES[0]], env)
        self.users = {u["username"]: u["password"] for u in result["users"]}
        self.orgs = result["orgs"]
        for node in NODES:  # one after the other: the first applies the migrations
            self._spawn(node, ["-m", "central", "run", "-c", str(configs[node])], env)
            port = self.node_ports[node]
            wait_until(lambda port=port: port_accepts(port), 60, f"{node} to listen")
        self.procs.append(("haproxy", start_haproxy(binary, self.root, self.port, self.node_ports)))
        wait_until(lambda: self.answered_by("/healthz") is not None, 30, "HAProxy to answer")

    def answered_by(self, path: str, user: str | None = None) -> str | None:
        """The node that answered a GET through HAProxy (None: none did)."""
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        req = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.headers.get(NODE_HEADER)
        except urllib.error.HTTPError as e:
            return e.headers.get(NODE_HEADER)
        except OSError:
            return None

    def kill(self, node: str) -> float:
        """SIGKILL one node; the wall-clock time (epoch seconds) it was sent."""
        [proc] = [p for n, p in self.procs if n == node]
        at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return at
