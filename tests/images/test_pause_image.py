"""The pod sandbox image: one static file built from the Kubernetes module's pause.c; it
runs, reports its version, and exits 0 on SIGTERM (how the runtime stops a sandbox)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from imagetools import RUN_FLAGS, podman, podman_run

from localplatform import versions

pytestmark = pytest.mark.images


@pytest.fixture(scope="module")
def image(built: dict[str, str]) -> str:
    return built["pause"]


def test_one_static_file(image: str) -> None:
    mount = Path(podman("image", "mount", image).stdout.strip())
    try:
        entries = {p.relative_to(mount).as_posix(): p.stat().st_size for p in mount.rglob("*")}
    finally:
        podman("image", "unmount", image, check=False)
    assert list(entries) == ["pause"]
    assert entries["pause"] < 2_000_000


def test_reports_its_version(image: str) -> None:
    proc = podman_run(image, "-v")
    assert f"-v{versions.get('KUBERNETES_VERSION')}" in proc.stdout + proc.stderr


def test_starts_and_exits_on_sigterm(image: str) -> None:
    name = f"pause-test-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, *RUN_FLAGS, image)
    try:
        time.sleep(1)
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running"
        podman("kill", "--signal", "TERM", name)
        code = podman("wait", name, timeout=30).stdout.strip()
        assert code == "0"
    finally:
        podman("rm", "-f", name, check=False)
