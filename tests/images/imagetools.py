"""Helpers of the image tests: the names hack/build-images.sh tags, and podman as measured
working here (cgroupfs, runc, rlimits that need no raise)."""

from __future__ import annotations

import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from localplatform import paths

ROOT = paths.REPO_ROOT
BUILD_SCRIPT = ROOT / "hack" / "build-images.sh"
DOCKERFILES = sorted((ROOT / "images").glob("*/Dockerfile"))
#: The test rig's importable names: never in a product image.
RIG_MODULES = ("localplatform", "spark_operator_standin", "bench", "tests")
#: Prints the rig modules an image's interpreter can import (a JSON list).
FIND_RIG = (
    "import importlib.util, json; "
    f"print(json.dumps([m for m in {RIG_MODULES!r} if importlib.util.find_spec(m)]))"
)

PODMAN = ["podman", "--cgroup-manager=cgroupfs"]
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@dataclass(frozen=True)
class ImageName:
    name: str
    #: the reference the chart uses (orders-etl/airflow:3.3.2)
    ref: str
    #: what podman, containerd and kubelet resolve it to (docker.io/orders-etl/airflow:3.3.2)
    qualified: str


def image_names(*names: str) -> dict[str, ImageName]:
    """`hack/build-images.sh names`: what the build script tags each image as."""
    out = subprocess.run(
        [str(BUILD_SCRIPT), "names", *names], check=True, capture_output=True, text=True
    ).stdout
    result = {}
    for line in out.splitlines():
        name, ref, qualified = line.split("\t")
        result[name] = ImageName(name, ref, qualified)
    return result


def podman(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def podman_run(
    image: str, *args: str, opts: tuple[str, ...] = (), timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman run --rm` with the flags that work on this machine."""
    return podman("run", "--rm", *RUN_FLAGS, *opts, image, *args, timeout=timeout, check=check)


def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)


def lock_version(package: str) -> str:
    """A package's version in uv.lock."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return str(next(p["version"] for p in lock["package"] if p["name"] == package))
