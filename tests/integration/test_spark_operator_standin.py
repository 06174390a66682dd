"""The spark-operator stand-in runs real spark-submit and reports status like spark-operator v2."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localplatform import paths
from localplatform.cluster import Cluster
from spark_operator_standin.controller import Controller
from spark_operator_standin.submit import SubmitSettings, local_spark_env

sys.path.insert(0, str(Path(__file__).parent))
from sparkapp_status import spark_application

pytestmark = pytest.mark.integration

JOB_OK = (
    "from pyspark.sql import SparkSession\nimport sys\n"
    "s = SparkSession.builder.getOrCreate()\nassert s.range(10).count() == 10\n"
    "open(sys.argv[1], 'w').write('done')\n"
)
JOB_FAIL = "raise RuntimeError('the job refused its input')\n"
JOB_SLOW = "import time\ntime.sleep(120)\n"


@pytest.fixture(scope="module")
def standin(
    local_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, str, Path, Controller]]:
    local_cluster.apply_spark_crds()
    namespace = f"standin-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", namespace)
    work = tmp_path_factory.mktemp("standin")
    for name, code in (("ok.py", JOB_OK), ("fail.py", JOB_FAIL), ("slow.py", JOB_SLOW)):
        (work / name).write_text(code)
    api = client.CustomObjectsApi(config.new_client_from_config(str(local_cluster.kubeconfig)))
    spark_submit = str(paths.REPO_ROOT / ".venv" / "bin" / "spark-submit")
    controller = Controller(
        api,
        SubmitSettings(
            spark_submit=spark_submit, path_map={"/opt/jobs": str(work)}, env=local_spark_env()
        ),
        work / "logs",
        namespace=namespace,
        max_concurrent=2,
    )
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            controller.reconcile_once()
            time.sleep(0.5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield local_cluster, namespace, work, controller
    stop.set()
    thread.join(10)
    for submission in controller.active.values():
        if submission.process is not None:
            submission.process.kill()
    local_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def wait_state(
    cluster: Cluster, namespace: str, name: str, states: set[str], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "sparkapplication", name, "-n", namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(out.stdout)
        if obj.get("status", {}).get("applicationState", {}).get("state") in states:
            return obj
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached {states}")


def test_completed_application_reports_like_the_operator(standin) -> None:  # type: ignore[no-untyped-def]
    cluster, namespace, work, _ = standin
    marker = work / "marker"
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(spark_application("ok", "/opt/jobs/ok.py", [str(marker)])),
    )
    obj = wait_state(cluster, namespace, "ok", {"COMPLETED", "FAILED"})
    status = obj["status"]
    assert status["applicationState"]["state"] == "COMPLETED", status
    assert marker.read_text() == "done"  # the job really ran, with its arguments
    assert status["sparkApplicationId"].startswith("spark-")
    assert status["driverInfo"]["podName"] == "ok-driver"
    assert status["submissionAttempts"] == 1
    assert status["terminationTime"]


def test_failed_application_carries_the_error(standin) -> None:  # type: ignore[no-untyped-def]
    cluster, namespace, _, _ = standin
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(spark_application("bad", "/opt/jobs/fail.py", [])),
    )
    obj = wait_state(cluster, namespace, "bad", {"COMPLETED", "FAILED"})
    assert obj["status"]["applicationState"]["state"] == "FAILED"
    assert "the job refused its input" in obj["status"]["applicationState"]["errorMessage"]


def test_deleting_a_running_application_stops_its_process(standin) -> None:  # type: ignore[no-untyped-def]
    cluster, namespace, _, controller = standin
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(spark_application("slow", "/opt/jobs/slow.py", [])),
    )
    obj = wait_state(cluster, namespace, "slow", {"RUNNING"})
    process = controller.active[obj["metadata"]["uid"]].process
    cluster.kubectl("delete", "sparkapplication", "slow", "-n", namespace)
    process.wait(timeout=30)
    assert process.returncode is not None
