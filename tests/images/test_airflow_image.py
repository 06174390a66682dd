"""The Airflow image runs as the chart runs it: uid 50000, read-only root filesystem, the
chart's writable mounts (/tmp, /opt/airflow/logs) and its rendered airflow.cfg mounted at
AIRFLOW_CONFIG; it reports the pinned Airflow, imports the DAG folder with zero errors and
carries exactly the packages of uv.lock."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from imagetools import FIND_RIG, ROOT, lock_version, podman_run
from packaging.markers import Marker

from localplatform import paths, versions

pytestmark = pytest.mark.images

#: The extras the Dockerfile installs by default (`ARG EXTRAS`; airflow-local adds `local`).
AIRFLOW_EXTRAS = tuple(
    re.search(r'^ARG EXTRAS="([^"]+)"', (ROOT / "images/airflow/Dockerfile").read_text(), re.M)
    .group(1)
    .split()  # type: ignore[union-attr]
)


@pytest.fixture(scope="module")
def image(built: dict[str, str]) -> str:
    return built["airflow"]


@pytest.fixture(scope="module")
def chart_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's airflow.cfg (defaults), as its ConfigMap mounts it."""
    out = subprocess.run(
        [
            str(paths.tool("helm")),
            "template",
            "oe",
            str(ROOT / "charts" / "orders-etl"),
            "--kube-version",
            versions.get("KUBERNETES_VERSION"),
            "--set",
            "database.existingSecret=db",
            "--show-only",
            "templates/configmaps/configmap-airflow-cfg.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cfg = yaml.safe_load(out)["data"]["airflow.cfg"]
    d = tmp_path_factory.mktemp("chart-config")
    (d / "airflow.cfg").write_text(cfg)
    d.chmod(0o755)
    (d / "airflow.cfg").chmod(0o644)
    return d


def chart_like(chart_config: Path) -> tuple[str, ...]:
    """The pod's security context and mounts (templates/_helpers.tpl airflowVolumes)."""
    return (
        "--user",
        "50000:0",
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp:rw,mode=1777",
        "--tmpfs",
        "/opt/airflow/logs:rw,mode=0777",  # an emptyDir is 0777
        "-v",
        f"{chart_config}:/opt/airflow/chart-config:ro",
        "-e",
        "AIRFLOW_HOME=/opt/airflow",
        "-e",
        "AIRFLOW_CONFIG=/opt/airflow/chart-config/airflow.cfg",
        # No metadata DB is needed to parse DAGs; anything written goes to the tmpfs.
        "-e",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:////tmp/airflow.db",
    )


def test_reports_the_pinned_version(image: str, chart_config: Path) -> None:
    pinned = lock_version("apache-airflow")
    out = podman_run(image, "airflow", "version", opts=chart_like(chart_config)).stdout
    version = out.strip().splitlines()[-1]
    assert version == pinned == image.rsplit(":", 1)[1]
    # The entrypoint: `<image> version` is `airflow version`.
    assert (
        podman_run(image, "version", opts=chart_like(chart_config)).stdout.strip().endswith(version)
    )


def test_runs_as_uid_50000_with_airflow_home(image: str, chart_config: Path) -> None:
    out = podman_run(
        image,
        "sh",
        "-c",
        'id -u; id -g; echo "$AIRFLOW_HOME"; command -v airflow; command -v python3',
    ).stdout.split()
    assert out == ["50000", "0", "/opt/airflow", "/opt/venv/bin/airflow", "/opt/venv/bin/python3"]


DAGBAG = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
print(json.dumps({"folder": bag.dag_folder, "dags": sorted(bag.dag_ids),
                  "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


def test_imports_the_dag_folder_with_zero_errors(image: str, chart_config: Path) -> None:
    out = podman_run(image, "python", "-c", DAGBAG, opts=chart_like(chart_config)).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["folder"] == "/opt/airflow/dags"
    assert "orders_etl" in result["dags"]


def test_root_filesystem_is_really_read_only(image: str, chart_config: Path) -> None:
    proc = podman_run(
        image, "sh", "-c", "touch /opt/airflow/x", opts=chart_like(chart_config), check=False
    )
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_export(environment: dict[str, str]) -> dict[str, str]:
    uv = paths.TOOLS_DIR / "uv" / "bin" / "uv"
    extras = [a for e in AIRFLOW_EXTRAS for a in ("--extra", e)]
    out = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", *extras],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        req, _, marker = line.partition(";")
        name, _, version = req.strip().partition("==")
        # Markers evaluated for the image's interpreter (python_full_version matters:
        # Debian's 3.11.2 gets async-timeout, a later 3.11 does not).
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        pins[_normalize(name)] = version.strip()
    return pins


INSTALLED = """
import json, os, platform, sys, importlib.metadata as m
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
print(json.dumps({"env": env,
                  "dists": {d.metadata["Name"]: d.version for d in m.distributions()}}))
"""


def test_installs_exactly_the_lock(image: str) -> None:
    raw = json.loads(podman_run(image, "python", "-c", INSTALLED).stdout.splitlines()[-1])
    installed = {_normalize(n): v for n, v in raw["dists"].items()}
    assert installed.pop("orders-etl") == "0.1.0"
    assert installed == _lock_export(raw["env"])


def test_carries_the_product_and_no_test_rig(image: str) -> None:
    found = podman_run(image, "python", "-c", FIND_RIG).stdout.splitlines()[-1]
    assert json.loads(found) == []
    podman_run(image, "python", "-c", "import orders_etl.dag, orders_contract.staging")


def test_entrypoint_passes_other_commands_through(image: str) -> None:
    # KubernetesExecutor task pods pass `python -m ...` as the container's args.
    out = podman_run(image, "python", "-c", "import orders_etl; print('ok')").stdout
    assert out.strip() == "ok"
