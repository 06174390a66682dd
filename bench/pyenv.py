"""Bytecode caching for the processes a benchmark starts.

The images compile bytecode at build time (UV_COMPILE_BYTECODE=1 in
images/airflow/Dockerfile), so a deployed component imports Airflow from .pyc files.
A shell with PYTHONDONTWRITEBYTECODE=1 (this machine's default) would instead recompile
every module in every fresh process and time the compiler, not the code. Benchmarks
therefore run their children with a private bytecode cache under the bench run
directory (PYTHONPYCACHEPREFIX; nothing is written into .venv), warmed before timing."""

from __future__ import annotations

import os
from collections.abc import Mapping

from localplatform import paths

PYCACHE = paths.RUN_DIR / "bench-pycache"


def with_bytecode_cache(env: Mapping[str, str] | None = None) -> dict[str, str]:
    result = dict(os.environ if env is None else env)
    result.pop("PYTHONDONTWRITEBYTECODE", None)
    result["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return result


def enable_for_this_process_tree() -> None:
    """Make every process started from now on (servers, Airflow) use the cache."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
