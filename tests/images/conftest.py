"""Fixtures of the image tests: images built on demand (incrementally)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from imagetools import BUILD_SCRIPT, image_names  # noqa: E402


@pytest.fixture(scope="session")
def built() -> dict[str, str]:
    """Builds every image (a no-op when nothing changed); name -> qualified reference."""
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: make images-deps (or make test-images)")
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "build"], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"hack/build-images.sh build failed:\n{proc.stderr[-6000:]}")
    print("\n" + "\n".join(line for line in proc.stderr.splitlines() if "[build-images]" in line))
    return {n: i.qualified for n, i in image_names().items()}
