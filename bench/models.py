"""Models: offline training time and validation mAP50, and rollout time to 50 sites.

1. training: `central-server train`'s code on a synthetic dataset (bright squares labelled
   `rodent` on textured frames; `--train`/`--val` images at `--imgsz`) for `--epochs` from
   yolov8n.yaml on this machine's CPU (or GPU): `train_seconds`, `val_map50`;
2. rollout: a real broker (shipped policy, one account per site), a `central-server run`
   process with `--sites` registered sites and the trained model registered (signed), and
   `--sites` simulated sites in this process, each its own MQTT client with its own login
   that on `install_model` does what the edge does before loading: checks central's
   signature, downloads the file over HTTP with its site login, checks size and SHA-256,
   replies. `rollout_seconds_to_all_sites`: from the first install request to central
   having every site's reply.
Prints the figures and writes bench/results/models.json.

    .venv/bin/python bench/models.py [--sites 50] [--epochs 25] [--train 64] [--val 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from central.config import BrokerAdminConfig
from central.ingest.accounts import issue_site_credentials, set_password, write_acl
from central.models.train import TrainSettings, train
from edge_agent.credentials import Credential
from edge_agent.models.fetch import check_signature, download, load_public_key
from fsv_contract import encode, topics
from fsv_contract.codec import decode
from fsv_contract.models import InstallModelArgs
from fsv_contract.payloads import CommandPayload, ReplyPayload
from testbed.demo import shipped_broker_options
from testbed.mosquitto import Broker
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "models.json"


def synthetic_dataset(root: Path, train_n: int, val_n: int, imgsz: int) -> None:
    """Bright squares (class 0, `rodent`) on textured dark frames, YOLO labels."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    for split, count in (("train", train_n), ("val", val_n)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 60, (imgsz, imgsz, 3), dtype=np.uint8)
            size = int(rng.integers(imgsz // 5, imgsz // 2))
            x, y = (int(v) for v in rng.integers(0, imgsz - size, 2))
            cv2.rectangle(image, (x, y), (x + size, y + size), (230, 230, 230), -1)
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), image)
            cx, cy, w = (x + size / 2) / imgsz, (y + size / 2) / imgsz, size / imgsz
            (root / "labels" / split / f"{i}.txt").write_text(f"0 {cx} {cy} {w} {w}\n")
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: rodent\n"
    )


class SimulatedSite:
    """One site's MQTT login answering install_model as the edge does up to loading."""

    def __init__(self, site: str, password: str, port: int, central: str, key: Path) -> None:
        self.site, self.central, self.key = site, central, key
        self.login = Credential(site, password)
        self.folder = Path(tempfile.mkdtemp(prefix=f"bench-{site}-"))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"site-{site}")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(site, password)
        self.client.on_connect = lambda c, *_: c.subscribe(topics.command_filter(site), qos=1)
        self.client.on_message = self._received
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _received(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Never block paho's thread: download and reply on the site's own worker.
        self.pool.submit(self.handle, msg.topic, bytes(msg.payload))

    def handle(self, topic: str, data: bytes) -> None:
        command = decode(topic, data).payload
        assert isinstance(command, CommandPayload)
        error, result = None, {}
        try:
            args = InstallModelArgs.model_validate(command.args)
            check_signature(args, load_public_key(self.key))
            target = self.folder / args.version / "model.onnx"
            download(self.central, self.login, args, target)
            result = {"installed": f"{args.name}@{args.version}"}
        except Exception as e:  # noqa: BLE001 - the reply carries any failure
            error = str(e)[:300]
        reply = ReplyPayload(request_id=command.request_id, verb="install_model",
                             ok=error is None, result=result, error=error,
                             finished_at=datetime.now(UTC))  # fmt: skip
        self.client.publish(topics.reply(self.site, str(command.request_id)), encode(reply), 1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.pool.shutdown()


def api(base: str, method: str, path: str, token: str | None, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def bench_rollout(root: Path, model: Path, card: Path, sites: int) -> dict[str, Any]:
    admin = BrokerAdminConfig(
        password_file=root / "auth" / "passwd", acl_file=root / "auth" / "acl"
    )
    set_password(admin, "central", "bench-central")
    write_acl(admin, "central")
    names = [f"bench-site-{i:03d}" for i in range(sites)]
    passwords = {s: issue_site_credentials(admin, s, "central").password for s in names}
    broker = Broker(options=shipped_broker_options(admin))
    broker.start()
    http_port = free_port()
    config = root / "central.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(root / "central"), "log_level": "WARNING",
        "http": {"host": "127.0.0.1", "port": http_port},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "reconnect_max_s": 5},
        "broker": {"password_file": str(admin.password_file), "acl_file": str(admin.acl_file)},
        "web": {"base_url": f"http://127.0.0.1:{http_port}", "cookie_secure": False},
    }))  # fmt: skip
    env = {**os.environ, "CENTRAL_MQTT_PASSWORD": "bench-central"}

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "central", *args, "-c", str(config)],
                              env=env, check=True, capture_output=True, text=True,
                              cwd=REPO).stdout  # fmt: skip

    site_args = [a for s in names for a in ("--site", f"{s}=canteen_a")]
    users = json.loads(cli("seed-demo", "--json", *site_args))["users"]
    cli("model", "add", str(model), "--name", "bench", "--version", "1", "--classes", "rodent",
        "--card", str(card))  # fmt: skip
    key = root / "central.pem"
    key.write_text(cli("model", "public-key"))
    proc = spawn_python(["-m", "central", "run", "-c", str(config)], env, root / "central.log")
    simulated: list[SimulatedSite] = []
    try:
        deadline = time.monotonic() + 60
        while not port_accepts(http_port) and time.monotonic() < deadline:
            time.sleep(0.5)
        base = f"http://127.0.0.1:{http_port}"
        password = next(u["password"] for u in users if u["username"] == "admin")
        login = {"username": "admin", "password": password, "kind": "bearer"}
        token = api(base, "POST", "/api/v1/auth/login", None, login)["token"]
        simulated = [SimulatedSite(s, passwords[s], broker.port, base, key) for s in names]
        time.sleep(3)  # every simulated site subscribed
        started = time.monotonic()
        for site in names:
            api(base, "POST", f"/api/v1/sites/{site}/models/install", token,
                {"name": "bench", "version": "1"})  # fmt: skip
        sent_s = time.monotonic() - started
        done: dict[str, str] = {}
        while len(done) < sites and time.monotonic() - started < 600:
            for site in names:
                if site in done:
                    continue
                rollouts = api(base, "GET", f"/api/v1/sites/{site}/models", token)["rollouts"]
                if rollouts and rollouts[0]["state"] != "sent":
                    done[site] = rollouts[0]["state"]
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        for sim in simulated:
            sim.close()
        terminate(proc, 20)
        broker.close()
    return {
        "sites": sites,
        "rollout_seconds_to_all_sites": round(elapsed, 2),
        "requests_sent_seconds": round(sent_s, 2),
        "sites_done": sum(1 for v in done.values() if v == "done"),
        "sites_failed": sum(1 for v in done.values() if v == "failed"),
        "model_bytes": model.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--train", type=int, default=64, help="training images")
    parser.add_argument("--val", type=int, default=16, help="validation images")
    parser.add_argument("--imgsz", type=int, default=96)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        root = Path(tmp)
        synthetic_dataset(root / "ds", args.train, args.val, args.imgsz)
        started = time.monotonic()
        card = train(TrainSettings(dataset=root / "ds", out=root / "model", epochs=args.epochs,
                                   imgsz=args.imgsz, batch=16))  # fmt: skip
        train_s = time.monotonic() - started
        rollout = bench_rollout(root, root / "model" / "model.onnx", root / "model" / "card.json",
                                args.sites)  # fmt: skip
    result = {
        "train_seconds": round(train_s, 1),
        "train_dataset": {
            "train_images": args.train,
            "val_images": args.val,
            "imgsz": args.imgsz,
            "classes": 1,
            "epochs": args.epochs,
            "base": "yolov8n.yaml (from scratch)",
            "device": card["training"]["device"],
        },  # fmt: skip
        "val_map50": card["validation"]["map50"],
        **rollout,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "note": "shared machine: other work may have run at the same time",
        },  # fmt: skip
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench-models"
    sys.exit(main())
