"""SparkApplication operator + trigger against the real API server and the generated CRD."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred

from localplatform.cluster import Cluster
from orders_contract.catalog import CatalogConfig, S3Config, spark_conf
from orders_etl.operators.sparkapplication import SparkApplicationOperator
from orders_etl.sparkapp import LABEL_TRY, application_name
from orders_etl.triggers.sparkapplication import SparkApplicationTrigger

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from sparkapp_status import set_state

from sparkapp_sequences import SEQUENCES

pytestmark = pytest.mark.integration

CONN_ID = "kubernetes_local_test"

TEMPLATE: dict[str, Any] = {
    "apiVersion": "sparkoperator.k8s.io/v1beta2",
    "kind": "SparkApplication",
    "metadata": {"name": "placeholder"},
    "spec": {
        "type": "Python",
        "mode": "cluster",
        "pythonVersion": "3",
        "image": "orders-etl/spark:3.5.9",
        "sparkVersion": "3.5.9",
        "mainApplicationFile": "local:///opt/orders-etl/spark-jobs/main.py",
        "restartPolicy": {"type": "Never"},
        "driver": {"cores": 1, "memory": "1g", "serviceAccount": "orders-etl-spark-driver"},
        "executor": {"cores": 1, "instances": 1, "memory": "1g"},
    },
}


@pytest.fixture(scope="module")
def spark_namespace(
    local_cluster: Cluster, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[str]:
    local_cluster.apply_spark_crds()
    namespace = f"spark-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", namespace)
    monkeypatch_module.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(local_cluster.kubeconfig)},
            }
        ),
    )
    yield namespace
    local_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def create_app(cluster: Cluster, namespace: str, name: str) -> None:
    body = {**TEMPLATE, "metadata": {"name": name, "namespace": namespace}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))


def run_trigger(
    trigger: SparkApplicationTrigger,
    cluster: Cluster,
    namespace: str,
    transitions: list[tuple[str, str]],
) -> dict[str, Any]:
    async def drive() -> dict[str, Any]:
        async def patch_later() -> None:
            for state, message in transitions:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(set_state, cluster, namespace, trigger.name, state, message)

        patcher = asyncio.create_task(patch_later())
        event = await asyncio.wait_for(anext(trigger.run()), timeout=60)
        await patcher
        return dict(event.payload)

    return asyncio.run(drive())


def trigger_for(
    name: str,
    namespace: str,
    timeout: float = 60,
    stall_timeout: float = 900,
    watch: bool = False,
    poll_interval: float = 0.2,
) -> SparkApplicationTrigger:
    return SparkApplicationTrigger(
        name=name,
        namespace=namespace,
        kubernetes_conn_id=CONN_ID,
        poll_interval=poll_interval,
        timeout_at=time.time() + timeout,
        stall_timeout=stall_timeout,
        watch=watch,
    )


@pytest.mark.parametrize("watch", [False, True], ids=["poll", "watch"])
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_trigger_through_every_sequence_the_operator_writes(
    local_cluster: Cluster, spark_namespace: str, sequence: str, watch: bool
) -> None:
    """Each state written through the real API server's status subresource (the CRD
    validates it), as the operator writes it; the trigger's conclusion at the end, polling
    and reading the shared watch alike."""
    expected = SEQUENCES[sequence]
    name = f"seq-{'w' if watch else 'p'}-{sequence}"[:50]
    create_app(local_cluster, spark_namespace, name)
    event = run_trigger(
        trigger_for(name, spark_namespace, stall_timeout=2, watch=watch),
        local_cluster,
        spark_namespace,
        list(expected.states),
    )
    assert event["status"] == expected.outcome, event
    assert event["state"] == expected.states[-1][0]
    if expected.outcome == "failed":
        assert event["message"] == expected.states[-1][1]


def test_trigger_success_after_submitted_and_running(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    create_app(local_cluster, spark_namespace, "app-ok")
    event = run_trigger(
        trigger_for("app-ok", spark_namespace),
        local_cluster,
        spark_namespace,
        [("SUBMITTED", ""), ("RUNNING", ""), ("COMPLETED", "")],
    )
    assert event["status"] == "success"
    assert event["state"] == "COMPLETED"


def test_trigger_failure_carries_error_message(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    create_app(local_cluster, spark_namespace, "app-bad")
    event = run_trigger(
        trigger_for("app-bad", spark_namespace),
        local_cluster,
        spark_namespace,
        [("RUNNING", ""), ("FAILED", "driver container failed with ExitCode: 1")],
    )
    assert event == {
        "status": "failed",
        "state": "FAILED",
        "message": "driver container failed with ExitCode: 1",
        "name": "app-bad",
        "namespace": spark_namespace,
    }


def test_serialised_trigger_resumes(local_cluster: Cluster, spark_namespace: str) -> None:
    create_app(local_cluster, spark_namespace, "app-resume")
    set_state(local_cluster, spark_namespace, "app-resume", "RUNNING")
    classpath, kwargs = trigger_for("app-resume", spark_namespace).serialize()
    json.dumps(kwargs)  # what the triggerer stores must be JSON-plain
    module, _, cls = classpath.rpartition(".")
    revived = getattr(importlib.import_module(module), cls)(**kwargs)
    event = run_trigger(revived, local_cluster, spark_namespace, [("COMPLETED", "")])
    assert event["status"] == "success"


def test_missing_application_fails_clearly(local_cluster: Cluster, spark_namespace: str) -> None:
    event = run_trigger(
        trigger_for("never-created", spark_namespace), local_cluster, spark_namespace, []
    )
    assert event["status"] == "not_found"
    assert "was deleted" in event["message"]


def test_an_application_deleted_while_waited_on_fails_clearly(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    create_app(local_cluster, spark_namespace, "app-deleted")
    set_state(local_cluster, spark_namespace, "app-deleted", "RUNNING")
    trigger = trigger_for("app-deleted", spark_namespace)

    async def drive() -> dict[str, Any]:
        async def delete_once_waiting() -> None:
            await asyncio.sleep(1.0)  # five polls (0.2 s) that see RUNNING and keep waiting
            await asyncio.to_thread(
                local_cluster.kubectl,
                "delete", "sparkapplication", "app-deleted", "-n", spark_namespace,
            )  # fmt: skip

        deleter = asyncio.create_task(delete_once_waiting())
        event = await asyncio.wait_for(anext(trigger.run()), timeout=60)
        await deleter
        return dict(event.payload)

    event = asyncio.run(drive())
    assert event["status"] == "not_found", event
    assert "app-deleted" in event["message"]
    assert "was deleted" in event["message"]


def test_with_the_watch_a_change_wakes_the_waits_at_once(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    """Three triggers, one watch: with a 30 s poll interval, each resumes within seconds
    of its application finishing (polling would take up to 30 s), and the waits made two
    requests in all (one list, one watch stream), none per trigger."""
    from orders_etl.triggers.sparkapplication_watch import ApplicationWatch

    names = [f"watched-{i}" for i in range(3)]
    for name in names:
        create_app(local_cluster, spark_namespace, name)
        set_state(local_cluster, spark_namespace, name, "RUNNING")

    async def drive() -> tuple[list[float], int]:
        probe = ApplicationWatch.acquire(CONN_ID, spark_namespace)
        triggers = [trigger_for(n, spark_namespace, watch=True, poll_interval=30) for n in names]
        waits = [asyncio.create_task(anext(t.run())) for t in triggers]
        deadline = time.monotonic() + 20
        while not probe.synced:
            assert time.monotonic() < deadline, "the watch did not sync"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # every trigger read RUNNING and waits on the watch
        delays = []
        for name, wait in zip(names, waits, strict=True):
            patched = time.monotonic()
            await asyncio.to_thread(set_state, local_cluster, spark_namespace, name, "COMPLETED")
            event = await asyncio.wait_for(wait, timeout=25)
            delays.append(time.monotonic() - patched)
            assert event.payload["status"] == "success", event.payload
        requests = probe.requests
        probe.release()
        return delays, requests

    delays, requests = asyncio.run(drive())
    assert max(delays) < 5, delays
    assert requests == 2


def test_the_watch_stream_outlives_the_providers_request_timeout(
    local_cluster: Cluster, spark_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's API client gives every request without its own timeout a total
    client-side one (API_TIMEOUT, 60 s; 3 s here). The watch's stream is meant to last
    WATCH_SECONDS: cut at the client's timeout, the watch would fall out of sync every
    minute and every trigger would GET (seen in the triggerer benchmark at 500 and 1,000
    waits). An idle watch stays in sync on its first list and stream."""
    from airflow.providers.cncf.kubernetes import kube_client

    from orders_etl.triggers.sparkapplication_watch import ApplicationWatch

    monkeypatch.setattr(kube_client, "API_TIMEOUT", 3)

    async def drive() -> tuple[int, list[bool]]:
        probe = ApplicationWatch.acquire(CONN_ID, spark_namespace)
        deadline = time.monotonic() + 20
        while not probe.synced:
            assert time.monotonic() < deadline, "the watch did not sync"
            await asyncio.sleep(0.1)
        in_sync = []
        for _ in range(40):  # 8 s: more than twice the client timeout
            await asyncio.sleep(0.2)
            in_sync.append(probe.synced)
        requests = probe.requests
        probe.release()
        return requests, in_sync

    requests, in_sync = asyncio.run(drive())
    assert all(in_sync), "the watch fell out of sync"
    assert requests == 2, f"{requests} requests: the stream was cut and listed again"


def test_with_a_broken_watch_the_triggers_poll(
    local_cluster: Cluster, spark_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch cannot list (the API refuses it): the trigger still finishes, by GET."""
    from orders_etl.triggers import sparkapplication_watch

    async def refused(self: Any, api: Any) -> None:
        self.requests += 1
        raise ConnectionError("watch refused (test)")

    monkeypatch.setattr(sparkapplication_watch.ApplicationWatch, "_list_and_follow", refused)
    create_app(local_cluster, spark_namespace, "app-unwatched")
    event = run_trigger(
        trigger_for("app-unwatched", spark_namespace, watch=True),
        local_cluster,
        spark_namespace,
        [("RUNNING", ""), ("COMPLETED", "")],
    )
    assert event["status"] == "success"


def test_with_the_watch_a_deleted_application_fails_clearly(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    create_app(local_cluster, spark_namespace, "app-deleted-w")
    set_state(local_cluster, spark_namespace, "app-deleted-w", "RUNNING")
    trigger = trigger_for("app-deleted-w", spark_namespace, watch=True, poll_interval=30)

    async def drive() -> dict[str, Any]:
        async def delete_soon() -> None:
            await asyncio.sleep(2.0)
            await asyncio.to_thread(
                local_cluster.kubectl,
                "delete", "sparkapplication", "app-deleted-w", "-n", spark_namespace,
            )  # fmt: skip

        deleter = asyncio.create_task(delete_soon())
        event = await asyncio.wait_for(anext(trigger.run()), timeout=20)
        await deleter
        return dict(event.payload)

    event = asyncio.run(drive())
    assert event["status"] == "not_found", event


def test_timeout_is_an_event_not_a_hang(local_cluster: Cluster, spark_namespace: str) -> None:
    create_app(local_cluster, spark_namespace, "app-slow")
    event = run_trigger(
        trigger_for("app-slow", spark_namespace, timeout=1), local_cluster, spark_namespace, []
    )
    assert event["status"] == "timeout"


class FakeTI:
    def __init__(self, run_id: str, try_number: int) -> None:
        self.dag_id = "orders_etl"
        self.run_id = run_id
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def operator(tmp_path: Path, namespace: str) -> SparkApplicationOperator:
    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump(TEMPLATE))
    return SparkApplicationOperator(
        task_id="spark_transform",
        template_path=template,
        namespace=namespace,
        arguments=["--batch-id", "b1"],
        metrics_uri="s3://staging/x/_metrics.json",
        kubernetes_conn_id=CONN_ID,
        poll_interval=0.2,
    )


def test_the_catalog_file_becomes_the_applications_catalog_settings(
    local_cluster: Cluster, spark_namespace: str, tmp_path: Path
) -> None:
    """The chart's iceberg-catalog.json, through orders_contract.catalog, lands in the
    SparkApplication's sparkConf under the template's own keys (spark.sparkConf wins)."""
    catalog = CatalogConfig(
        "lakehouse",
        "rest",
        "s3://warehouse/",
        uri="http://iceberg-rest:8181",
        s3=S3Config(endpoint="http://s3:9000", path_style=True),
    )
    described = tmp_path / "iceberg-catalog.json"
    described.write_text(json.dumps(catalog.to_dict()))
    own = {"spark.sql.catalog.lakehouse.uri": "http://rest-override:8181", "spark.cores.max": "2"}
    template = tmp_path / "template.yaml"
    template.write_text(
        yaml.safe_dump({**TEMPLATE, "spec": {**TEMPLATE["spec"], "sparkConf": own}})
    )
    op = SparkApplicationOperator(
        task_id="spark_transform",
        template_path=template,
        namespace=spark_namespace,
        arguments=["--batch-id", "b1"],
        metrics_uri="s3://staging/x/_metrics.json",
        catalog_file=str(described),
        kubernetes_conn_id=CONN_ID,
    )
    run_id = f"manual__{uuid.uuid4().hex}"
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI(run_id, 1)})
    created = get_app(local_cluster, spark_namespace, application_name("orders_etl", run_id, 1))
    assert created is not None
    assert created["spec"]["sparkConf"] == {**spark_conf(catalog), **own}
    assert created["spec"]["sparkConf"]["spark.sql.catalog.lakehouse.type"] == "rest"


def get_app(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl(
        "get", "sparkapplication", name, "-n", namespace, "-o", "json", check=False
    )
    return json.loads(out.stdout) if out.returncode == 0 else None


def test_operator_creates_defers_adopts_and_cleans_up_earlier_tries(
    local_cluster: Cluster, spark_namespace: str, tmp_path: Path
) -> None:
    op = operator(tmp_path, spark_namespace)
    run_id = f"manual__{uuid.uuid4().hex}"
    first = FakeTI(run_id, 1)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": first})
    name1 = application_name("orders_etl", run_id, 1)
    assert deferred.value.trigger.name == name1
    created = get_app(local_cluster, spark_namespace, name1)
    assert created is not None
    assert created["spec"]["arguments"] == ["--batch-id", "b1"]
    assert created["metadata"]["labels"][LABEL_TRY] == "1"
    assert created["spec"]["driver"]["labels"][LABEL_TRY] == "1"

    # The same try again (a worker died after creating it): the running app is adopted.
    set_state(local_cluster, spark_namespace, name1, "RUNNING")
    uid = created["metadata"]["uid"]
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI(run_id, 1)})
    assert get_app(local_cluster, spark_namespace, name1)["metadata"]["uid"] == uid

    # SUBMISSION_FAILED is not final (the operator retries it or fails it): adopted.
    set_state(local_cluster, spark_namespace, name1, "SUBMISSION_FAILED", "refused")
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI(run_id, 1)})
    assert get_app(local_cluster, spark_namespace, name1)["metadata"]["uid"] == uid

    # A FAILED app of the same try is replaced by a fresh one.
    set_state(local_cluster, spark_namespace, name1, "FAILED", "OOMKilled")
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI(run_id, 1)})
    assert get_app(local_cluster, spark_namespace, name1)["metadata"]["uid"] != uid

    # A retry gets a new name and the earlier try's application is deleted.
    with pytest.raises(TaskDeferred):
        op.execute({"ti": FakeTI(run_id, 2)})
    assert get_app(local_cluster, spark_namespace, application_name("orders_etl", run_id, 2))
    deadline = time.monotonic() + 30
    while get_app(local_cluster, spark_namespace, name1) is not None:
        assert time.monotonic() < deadline, "the earlier try's application was not deleted"
        time.sleep(0.5)


def test_operator_fails_a_stalled_application_with_the_triggers_message(tmp_path: Path) -> None:
    op = operator(tmp_path, "ns")
    with pytest.raises(Exception, match=r"stalled \(SUSPENDED\): .*stayed"):
        op.execute_complete(
            {},
            {
                "status": "stalled",
                "state": "SUSPENDED",
                "name": "a",
                "namespace": "ns",
                "message": "SparkApplication ns/a stayed SUSPENDED, ... for 900 s",
            },
        )


def test_operator_raises_with_the_operators_error_message(tmp_path: Path) -> None:
    op = operator(tmp_path, "ns")
    with pytest.raises(Exception, match=r"FAILED.*executor lost"):
        op.execute_complete(
            {},
            {
                "status": "failed",
                "state": "FAILED",
                "name": "a",
                "namespace": "ns",
                "message": "executor lost",
            },
        )


def test_template_violating_the_schema_is_refused_before_the_api(tmp_path: Path) -> None:
    bad = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "driver": {"cores": "one"}}}
    template = tmp_path / "bad.yaml"
    template.write_text(yaml.safe_dump(bad))
    op = SparkApplicationOperator(
        task_id="t",
        template_path=template,
        namespace="ns",
        arguments=[],
        metrics_uri="s3://b/k",
        kubernetes_conn_id=CONN_ID,
    )
    with pytest.raises(ValueError, match="cores"):
        op.execute({"ti": FakeTI("r", 1)})


def test_an_unreachable_api_server_at_submit_is_one_clear_error(
    local_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server down when the task submits: the task fails (Airflow retries it with
    backoff) with an error naming the server, in bounded time."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = yaml.safe_load(local_cluster.kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    down = tmp_path / "down.kubeconfig"
    down.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DOWN",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(down)}}),
    )
    op = operator(tmp_path, "spark-jobs")
    op.kubernetes_conn_id = "kubernetes_down"
    started = time.monotonic()
    with pytest.raises(Exception, match=f"127.0.0.1.*{port}|{port}.*127.0.0.1") as error:
        op.execute({"ti": FakeTI(f"manual__{uuid.uuid4().hex}", 1)})
    assert not isinstance(error.value, TaskDeferred)
    assert time.monotonic() - started < 120
