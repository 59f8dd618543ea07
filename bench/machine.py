"""The description of this machine that every benchmark's results carry."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (the platform's processor name if none)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def describe_machine(note: str = "", **extra: Any) -> dict[str, Any]:
    """CPU, cores, the load averages now and Python; `extra` fields and a `note` appended."""
    load = os.getloadavg()
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_1min_at_start": round(load[0], 2),
        "load_avg_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        **extra,
    }
    info["note"] = "shared machine: other work may have run at the same time" + (
        f"; {note}" if note else ""
    )
    return info
