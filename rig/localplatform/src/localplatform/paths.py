"""Where the local platform keeps its tools, state and logs (all git-ignored)."""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path
from typing import Any

#: The repository root (this file is rig/localplatform/src/localplatform/paths.py).
REPO_ROOT = Path(__file__).resolve().parents[4]

#: Pinned tools built or downloaded by hack/install-tools.sh.
TOOLS_DIR = Path(os.environ.get("TOOLS_DIR", REPO_ROOT / ".tools"))
TOOLS_BIN = TOOLS_DIR / "bin"
TOOLS_SHARE = TOOLS_DIR / "share"

#: Runtime state of local servers: data, logs, pid files, kubeconfig.
RUN_DIR = Path(os.environ.get("LOCALPLATFORM_RUN_DIR", REPO_ROOT / ".run"))


def tool(name: str) -> Path:
    """Path of a pinned tool binary; raises with the fix when it is not installed."""
    path = TOOLS_BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make tools` (hack/install-tools.sh)")
    return path


def port_field(name: str, default: int) -> Any:
    """A dataclass field holding `port(name, default)`, read when the instance is made
    (so a test's LOCALPLATFORM_PORT_* settings apply): the Ports dataclasses of the
    control plane, the node, Argo CD, Airflow and the data services are lists of these."""
    return field(default_factory=lambda: port(name, default))


def port(name: str, default: int) -> int:
    """A loopback port: $LOCALPLATFORM_PORT_<NAME>, else `default` shifted by
    $LOCALPLATFORM_PORT_OFFSET (one knob to run a second platform beside the first)."""
    explicit = os.environ.get(f"LOCALPLATFORM_PORT_{name.upper()}")
    if explicit:
        return int(explicit)
    return default + int(os.environ.get("LOCALPLATFORM_PORT_OFFSET", "0"))
