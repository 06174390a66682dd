"""What the figures were measured on: cores, CPU model, memory, load, time of the run."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def describe() -> dict[str, Any]:
    """A JSON-plain description of this machine and the moment of the run."""
    load1, load5, _ = os.getloadavg()
    return {
        "cores": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
        "memory_gib": round(memory_gib(), 1),
        "load_1m": round(load1, 2),
        "load_5m": round(load5, 2),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def headline(info: dict[str, Any]) -> str:
    return (
        f"machine: {info['cores']} cores, {info['cpu_model']}, {info['memory_gib']} GiB; "
        f"load {info['load_1m']}/{info['load_5m']} (1/5 min); at {info['time_utc']}"
    )
