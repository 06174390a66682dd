"""Where each benchmark writes its figures (JSON) and how the report finds them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import machine
from localplatform import paths

#: The published figures: docs/benchmarks.md is generated from these files.
DEFAULT_DIR = paths.REPO_ROOT / "docs" / "benchmarks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DIR, help="directory for the results JSON"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the script, measures nothing"
    )


def write(out_dir: Path, name: str, body: dict[str, Any]) -> Path | None:
    """Write `<out_dir>/<name>.json`; a smoke run never overwrites the published figures."""
    if body.get("smoke") and out_dir.resolve() == DEFAULT_DIR.resolve():
        print(f"smoke run: {name}.json not written to {DEFAULT_DIR} (use --out)")
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"machine": machine.describe(), **body}, indent=2) + "\n")
    return path


def read(out_dir: Path, name: str) -> dict[str, Any] | None:
    path = out_dir / f"{name}.json"
    if not path.exists():
        return None
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def target_lines(targets: dict[str, dict[str, Any]]) -> str:
    return "\n".join(
        f"target {name}: {t['value']} -> {'met' if t['met'] else 'NOT met'}"
        for name, t in targets.items()
    )
