"""Reads versions.env, the one file that pins every tool the project installs itself."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from localplatform.paths import REPO_ROOT


@cache
def load(path: Path = REPO_ROOT / "versions.env") -> dict[str, str]:
    """Parse KEY=value lines (comments and blank lines ignored)."""
    pins: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value or " " in value:
            raise ValueError(f"{path}:{lineno}: expected KEY=value, got {raw!r}")
        pins[key] = value
    return pins


def get(key: str) -> str:
    """One pinned version, e.g. get("KUBERNETES_VERSION") -> "1.35.4"."""
    try:
        return load()[key]
    except KeyError:
        raise KeyError(f"{key} is not pinned in versions.env") from None
