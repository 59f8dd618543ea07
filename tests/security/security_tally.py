"""Counts of the probe suite per class of attack, written to bench/results/security.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "security.json"
CLASSES = (
    "cross_tenant",
    "path_traversal",
    "sql_injection",
    "malformed_json",
    "media_type_confusion",
    "ssrf",
    "lockout",
    "login_csrf",
    "mqtt_acl",
    "uplink_tokens",
    "public_links",
)


@dataclass
class ClassCount:
    """One class: attacks tried, refused (the attacker got nothing), leaked (it worked)."""

    attempts: int = 0
    refused: int = 0
    leaked: int = 0
    leaks: list[str] = field(default_factory=list)
    stopped_by: dict[str, int] = field(default_factory=dict)

    def record(self, refused: bool, what: str, stopped_by: str = "") -> None:
        """One attempt; `refused` False means the attack got through (`what` says how).

        `stopped_by` names the control that stopped a refused attempt, where a class has
        several (counted in the results).
        """
        self.attempts += 1
        if refused:
            self.refused += 1
            if stopped_by:
                self.stopped_by[stopped_by] = self.stopped_by.get(stopped_by, 0) + 1
        else:
            self.leaked += 1
            if len(self.leaks) < 20:
                self.leaks.append(what[:300])


class Tally:
    """Every class's counts; `write` puts them in bench/results/security.json."""

    def __init__(self) -> None:
        self.classes: dict[str, ClassCount] = {}
        self.started = time.time()

    def __getitem__(self, name: str) -> ClassCount:
        assert name in CLASSES, f"unknown probe class {name}"
        return self.classes.setdefault(name, ClassCount())

    def as_json(self) -> dict[str, Any]:
        """The results document."""
        return {
            "probes": {
                name: {
                    "attempts": c.attempts,
                    "refused": c.refused,
                    "leaked": c.leaked,
                    **({"stopped_by": c.stopped_by} if c.stopped_by else {}),
                    **({"leaks": c.leaks} if c.leaks else {}),
                }
                for name, c in sorted(self.classes.items())
            },
            "not_run": [name for name in CLASSES if name not in self.classes],
            "leaked_total": sum(c.leaked for c in self.classes.values()),
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
        }

    def write(self, path: Path = RESULTS) -> None:
        """Write the document (only when at least one class ran)."""
        if not self.classes:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n")


def machine() -> dict[str, Any]:
    """What the suite ran on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mosquitto": mosquitto.splitlines()[0] if mosquitto else "",
    }
