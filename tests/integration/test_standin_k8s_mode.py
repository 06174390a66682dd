"""The stand-in in k8s mode takes the state from the driver pod, as spark-operator v2 does.

Real here: the API server, the SparkApplication CRD, the pods and their status
subresource, the controller's loop. Mocked: spark-submit itself
(`spark_submit_mock.py`): on kwok nodes no driver could run, so the mock only does
what spark-submit does to the API (it creates the driver pod from the pod template file
it is given, labelled as the `--conf`s say, and exits 0: the operator's spark-submit does
not wait for the application), and the test then moves the pod through the phases a
kubelet would report. `tests/node/test_e2e_node.py` runs the real
spark-submit on a real node.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localplatform.cluster import Cluster
from spark_operator_standin.controller import Controller
from spark_operator_standin.submit import LABEL_APP_NAME, LABEL_SUBMISSION_ID, SubmitSettings

sys.path.insert(0, str(Path(__file__).parent))
from sparkapp_status import set_state, spark_application

pytestmark = pytest.mark.integration

APP_ID = "spark-0123456789abcdef"

#: Creates the driver pod the way spark-submit does (no node will take it: an
#: unsatisfiable nodeSelector keeps kwok's fake kubelet out, so the test owns its status).
SPARK_SUBMIT_MOCK = textwrap.dedent(
    f"""\
    #!{sys.executable}
    import sys
    from kubernetes import client, config

    import json
    argv = sys.argv[1:]
    conf = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf")
    if argv[-1] == "refuse":
        print("Exception in thread main: the API server refused the driver pod")
        sys.exit(1)
    assert conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
    template = json.load(open(conf["spark.kubernetes.driver.podTemplateFile"]))
    prefix = "spark.kubernetes.driver.label."
    labels = {{k[len(prefix):]: v for k, v in conf.items() if k.startswith(prefix)}}
    labels.update({{"spark-role": "driver", "spark-app-selector": "{APP_ID}"}})
    config.load_kube_config()
    client.CoreV1Api().create_namespaced_pod(
        conf["spark.kubernetes.namespace"],
        {{
            "metadata": {{
                "name": conf["spark.kubernetes.driver.pod.name"],
                "labels": labels,
                "ownerReferences": template["metadata"]["ownerReferences"],
            }},
            "spec": {{
                "nodeSelector": {{"orders-etl/no-such-node": "true"}},
                "containers": [{{"name": "spark-kubernetes-driver", "image": "spark:mock"}}],
            }},
        }},
    )
    """
)


@dataclass
class K8sStandin:
    cluster: Cluster
    namespace: str
    core: client.CoreV1Api
    controller: Controller


def _loop(controller: Controller, stop: threading.Event) -> None:
    while not stop.is_set():
        controller.reconcile_once()
        time.sleep(0.3)


def _controller(cluster: Cluster, namespace: str, work: Path) -> Controller:
    api_client = config.new_client_from_config(str(cluster.kubeconfig))
    mock = work / "spark_submit_mock.py"
    mock.write_text(SPARK_SUBMIT_MOCK)
    mock.chmod(0o755)
    return Controller(
        client.CustomObjectsApi(api_client),
        SubmitSettings(
            spark_submit=str(mock),
            mode="k8s",
            env={"KUBECONFIG": str(cluster.kubeconfig)},
            template_dir=work / "templates",
        ),
        work / "logs",
        namespace=namespace,
        max_concurrent=4,
        pods=client.CoreV1Api(api_client),
        pod_poll_interval=0.3,
    )


@pytest.fixture(scope="module")
def standin(
    local_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[K8sStandin]:
    local_cluster.apply_spark_crds()
    namespace = f"standin-k8s-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", namespace)
    controller = _controller(local_cluster, namespace, tmp_path_factory.mktemp("standin-k8s"))
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(controller, stop), daemon=True)
    thread.start()
    yield K8sStandin(local_cluster, namespace, controller.pods, controller)  # type: ignore[arg-type]
    stop.set()
    thread.join(10)
    local_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def _create(s: K8sStandin, name: str, arguments: list[str] | None = None) -> None:
    body = spark_application(name, "/opt/jobs/job.py", arguments or [])
    s.cluster.kubectl("create", "-n", s.namespace, "-f", "-", input=json.dumps(body))


def _status(s: K8sStandin, name: str) -> dict[str, Any]:
    out = s.cluster.kubectl("get", "sparkapplication", name, "-n", s.namespace, "-o", "json")
    status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
    return status


def _wait(s: K8sStandin, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _status(s, name)
        if status.get("applicationState", {}).get("state") == state:
            return status
        time.sleep(0.3)
    raise AssertionError(f"{name} never reached {state}: {status}")


def _wait_pod(s: K8sStandin, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.core.list_namespaced_pod(s.namespace, field_selector=f"metadata.name={name}").items:
            return
        time.sleep(0.3)
    raise AssertionError(f"pod {name} never appeared")


def _set_phase(
    s: K8sStandin, pod: str, phase: str, terminated: dict[str, Any] | None = None
) -> None:
    """What the kubelet reports: the phase and, once ended, the container's termination."""
    status: dict[str, Any] = {"phase": phase}
    if terminated is not None:
        status["containerStatuses"] = [
            {
                "name": "spark-kubernetes-driver",
                "image": "spark:mock",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ]
    s.core.patch_namespaced_pod_status(pod, s.namespace, {"status": status})


def _pod(s: K8sStandin, app: str, name: str, role: str, phase: str | None = None) -> None:
    """A Spark pod as Spark labels it, which no node takes (the test reports its phase)."""
    status = _status(s, app)
    labels = {"spark-role": role, "spark-app-selector": APP_ID, LABEL_APP_NAME: app}
    if status.get("submissionID"):
        labels[LABEL_SUBMISSION_ID] = status["submissionID"]
    s.core.create_namespaced_pod(
        s.namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "nodeSelector": {"orders-etl/no-such-node": "true"},
                "containers": [{"name": f"spark-kubernetes-{role}", "image": "spark:mock"}],
            },
        },
    )
    if phase:
        s.core.patch_namespaced_pod_status(name, s.namespace, {"status": {"phase": phase}})


def _running(s: K8sStandin, name: str) -> None:
    """Submitted, and its driver pod reported running."""
    _create(s, name)
    _wait_pod(s, f"{name}-driver")
    _set_phase(s, f"{name}-driver", "Running")
    _wait(s, name, "RUNNING")


def test_a_failed_driver_fails_the_application_although_spark_submit_exited_0(
    standin: K8sStandin,
) -> None:
    s = standin
    _create(s, "fails")
    _wait_pod(s, "fails-driver")
    # spark-submit has exited 0 by now; the driver has not run yet.
    time.sleep(1.5)
    assert _status(s, "fails")["applicationState"]["state"] == "SUBMITTED"
    _set_phase(s, "fails-driver", "Running")
    _pod(s, "fails", "fails-exec-1", "executor", "Running")
    status = _wait(s, "fails", "RUNNING")
    deadline = time.monotonic() + 30
    while (
        status.get("executorState") != {"fails-exec-1": "RUNNING"} and time.monotonic() < deadline
    ):
        status = _status(s, "fails")
        time.sleep(0.3)
    assert status["executorState"] == {"fails-exec-1": "RUNNING"}
    assert status["sparkApplicationId"] == APP_ID
    # The executor goes away (Spark deletes executors), then the driver fails.
    s.core.delete_namespaced_pod("fails-exec-1", s.namespace, grace_period_seconds=0)
    _set_phase(
        s,
        "fails-driver",
        "Failed",
        {"exitCode": 1, "reason": "Error", "message": "ValueError: bad"},
    )
    status = _wait(s, "fails", "FAILED")
    assert status["applicationState"]["errorMessage"] == (
        "driver container failed with ExitCode: 1, Reason: Error"
    )
    # gone while the driver was not running: FAILED, as the operator assumes
    assert status["executorState"] == {"fails-exec-1": "FAILED"}
    assert status["driverInfo"]["podName"] == "fails-driver"
    assert status["terminationTime"]


def test_a_succeeded_driver_completes_the_application(standin: K8sStandin) -> None:
    s = standin
    _running(s, "works")
    _set_phase(s, "works-driver", "Succeeded", {"exitCode": 0, "reason": "Completed"})
    status = _wait(s, "works", "COMPLETED")
    assert status["sparkApplicationId"] == APP_ID
    assert "errorMessage" not in status["applicationState"]


def test_spark_submit_failing_before_the_driver_exists_is_a_submission_failure(
    standin: K8sStandin,
) -> None:
    s = standin
    _create(s, "refused", ["refuse"])
    # SUBMISSION_FAILED, then (restartPolicy Never) FAILED with the same message.
    status = _wait(s, "refused", "FAILED")
    assert "the API server refused the driver pod" in status["applicationState"]["errorMessage"]
    assert status["submissionAttempts"] == 1
    assert "executionAttempts" not in status
    assert not s.core.list_namespaced_pod(
        s.namespace, field_selector="metadata.name=refused-driver"
    ).items


def test_deleting_the_application_deletes_its_driver_pod(standin: K8sStandin) -> None:
    s = standin
    _running(s, "deleted")
    s.cluster.kubectl("delete", "sparkapplication", "deleted", "-n", s.namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = s.core.list_namespaced_pod(
            s.namespace, field_selector="metadata.name=deleted-driver"
        )
        if not pods.items or pods.items[0].metadata.deletion_timestamp:
            return
        time.sleep(0.3)
    raise AssertionError("the driver pod outlived its SparkApplication")


def test_a_restarted_standin_adopts_a_running_application(
    standin: K8sStandin, tmp_path: Path
) -> None:
    """The operator is stateless: a new incarnation follows the driver pod it finds. The
    earlier incarnation is played by the test: its status and its driver pod are in place."""
    namespace = f"standin-adopt-{uuid.uuid4().hex[:8]}"
    s = K8sStandin(standin.cluster, namespace, standin.core, standin.controller)
    s.cluster.kubectl("create", "namespace", namespace)
    try:
        _create(s, "adopted")
        set_state(s.cluster, namespace, "adopted", "RUNNING")  # as the earlier one left it
        _pod(s, "adopted", "adopted-driver", "driver", "Running")
        restarted = _controller(s.cluster, namespace, tmp_path)
        restarted.reconcile_once()
        assert restarted.active == {}  # nothing submitted: it follows the driver pod
        stop = threading.Event()
        loop = threading.Thread(target=_loop, args=(restarted, stop), daemon=True)
        loop.start()
        try:
            _set_phase(s, "adopted-driver", "Succeeded", {"exitCode": 0, "reason": "Completed"})
            status = _wait(s, "adopted", "COMPLETED")
        finally:
            stop.set()
            loop.join(10)
        assert status["sparkApplicationId"] == APP_ID
        assert status.get("submissionAttempts") is None  # never submitted again
    finally:
        s.cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_driver_pod_is_owned_by_its_application_and_labelled_as_the_operators(
    standin: K8sStandin,
) -> None:
    s = standin
    _create(s, "owned")
    _wait_pod(s, "owned-driver")
    pod = s.core.read_namespaced_pod("owned-driver", s.namespace)
    app = json.loads(
        s.cluster.kubectl(
            "get", "sparkapplication", "owned", "-n", s.namespace, "-o", "json"
        ).stdout
    )
    assert [(o.kind, o.name, o.uid, o.controller) for o in pod.metadata.owner_references] == [
        ("SparkApplication", "owned", app["metadata"]["uid"], True)
    ]
    status = _wait(s, "owned", "SUBMITTED")
    assert pod.metadata.labels[LABEL_SUBMISSION_ID] == status["submissionID"]
    assert pod.metadata.labels[LABEL_APP_NAME] == "owned"
    assert (status["submissionAttempts"], status["executionAttempts"]) == (1, 1)


def test_a_driver_pod_that_disappears_fails_the_application(standin: K8sStandin) -> None:
    """The operator's FAILING "driver pod not found", then FAILED (restartPolicy Never)."""
    s = standin
    _running(s, "vanished")
    s.core.delete_namespaced_pod("vanished-driver", s.namespace, grace_period_seconds=0)
    status = _wait(s, "vanished", "FAILED")
    assert status["applicationState"]["errorMessage"] == "driver pod not found"
