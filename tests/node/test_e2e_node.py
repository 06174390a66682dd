"""The chart in a cluster whose pods really run: they start and stay up, the
SparkApplication controller runs the chart's template as real driver and executor pods,
the pipeline runs in the pods, and `helm upgrade` rolls them.

Two targets (localplatform.chart_e2e), picked by CHART_E2E_TARGET:
- `node` (default, `make e2e-node`): the real node of the local control plane with the
  spark-operator stand-in; starts what it needs (reusing running ones) and leaves it
  running (`make e2e-node-down` stops everything);
- `kind` (`make kind-e2e`, users with Docker, not exercised by this project's CI): the
  kind cluster `make kind-up` prepared, with the real spark-operator."""

from __future__ import annotations

import base64
import copy
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import cdc_events
from localplatform.chart_e2e import NAMESPACE, RELEASE, ChartE2E
from localplatform.node import NODE_LABEL, NODE_TAINT

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from oracle import daily_revenue

DAG_ID = "orders_etl"

pytestmark = pytest.mark.node

WATCH_SECONDS = float(os.environ.get("NODE_E2E_WATCH_SECONDS", "180"))


@pytest.fixture(scope="module")
def platform() -> ChartE2E:
    target = os.environ.get("CHART_E2E_TARGET", "node")
    e2e: ChartE2E
    if target == "kind":
        from localplatform.kind_e2e import KindE2E

        e2e = KindE2E()
    elif target == "node":
        from localplatform.node_e2e import NodeE2E

        e2e = NodeE2E()
    else:
        raise ValueError(f"CHART_E2E_TARGET={target!r}: expected node or kind")
    started = time.monotonic()
    timings = e2e.up()
    print(f"\nchart on {target} in {time.monotonic() - started:.1f} s: {timings}")
    return e2e


def _workload_pods(e2e: ChartE2E) -> list[dict[str, Any]]:
    """The pods of the Deployments and StatefulSets (workers, triggerers), not of Jobs."""
    return [
        p
        for p in e2e.pods()
        if p["metadata"].get("ownerReferences", [{}])[0].get("kind")
        in ("ReplicaSet", "StatefulSet")
        and not p["metadata"].get("deletionTimestamp")
    ]


def _restarts(pods: list[dict[str, Any]]) -> dict[str, int]:
    return {
        p["metadata"]["name"]: sum(
            c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])
        )
        for p in pods
    }


def _all_ready(pods: list[dict[str, Any]]) -> bool:
    return bool(pods) and all(
        p["status"].get("phase") == "Running"
        and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
        for p in pods
    )


@pytest.mark.timeout(2400)  # includes the fixture's helm install on 2 shared cores
def test_every_pod_runs_ready_on_the_target_nodes_without_restarts(platform: ChartE2E) -> None:
    nodes = platform.node_names()
    pods = _workload_pods(platform)
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert {"scheduler", "triggerer", "dag-processor", "api-server", "worker"} <= components
    assert _all_ready(pods), [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
    assert {p["spec"]["nodeName"] for p in pods} <= nodes
    jobs = json.loads(
        platform.cluster.kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json").stdout
    )["items"]
    migrate = [j for j in jobs if "-migrate-" in j["metadata"]["name"]]
    assert migrate, "no migration Job"
    assert all(j["status"].get("succeeded") == 1 for j in migrate)
    before = _restarts(pods)
    deadline = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        now = _workload_pods(platform)
        assert _restarts(now) == before, f"a container restarted: {_restarts(now)}"
        assert _all_ready(now), "a pod stopped being Ready"
        time.sleep(10)
    print(f"no restart and all Ready for {WATCH_SECONDS:.0f} s: {sorted(before)}")


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _scheduled_pods(platform: ChartE2E, fragment: str, since: str) -> set[str]:
    """Spark pods whose name contains `fragment` that the scheduler bound to one of the
    target's nodes at or after `since` (UTC, ISO 8601), from the events (they outlive the
    pods)."""
    nodes = platform.node_names()
    events = json.loads(
        platform.cluster.kubectl(
            "get",
            "events",
            "-n",
            platform.spark_namespace,
            "--field-selector",
            "reason=Scheduled",
            "-o",
            "json",
        ).stdout
    )["items"]
    return {
        e["involvedObject"]["name"]
        for e in events
        if fragment in e["involvedObject"]["name"]
        and any(node in e.get("message", "") for node in nodes)
        and (e.get("eventTime") or e.get("firstTimestamp") or e.get("lastTimestamp") or "") >= since
    }


def _apply_pi(platform: ChartE2E, name: str, argument: str) -> None:
    """The chart's own SparkApplication template running Spark's pi example."""
    cm = platform.cluster.kubectl(
        "get", "configmap", f"{RELEASE}-spark-template", "-n", NAMESPACE, "-o", "json"
    )
    app = copy.deepcopy(yaml.safe_load(json.loads(cm.stdout)["data"]["sparkapplication.yaml"]))
    app["metadata"] = {"name": name, "namespace": platform.spark_namespace}
    app["spec"]["mainApplicationFile"] = "local:///opt/spark/examples/src/main/python/pi.py"
    app["spec"]["arguments"] = [argument]
    platform.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(app))


@pytest.mark.timeout(1200)
def test_the_standin_runs_real_driver_and_executor_pods(platform: ChartE2E) -> None:
    """The chart's own SparkApplication template, running Spark's pi example: the
    in-cluster stand-in submits it, Spark creates the driver pod, the driver creates an
    executor pod, both on the real node, and the status reaches COMPLETED."""
    kubectl = platform.cluster.kubectl
    name = f"node-pi-{int(time.time())}"
    since = _utc_now()
    _apply_pi(platform, name, "4")
    seen: dict[str, set[str]] = {"driver": set(), "executor": set()}
    specs: dict[str, dict[str, Any]] = {}  # role -> a pod spec seen (executors are short-lived)
    nodes: set[str] = set()
    state, status = "", dict[str, Any]()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        out = kubectl(
            "get", "sparkapplication", name, "-n", platform.spark_namespace, "-o", "json"
        ).stdout
        status = json.loads(out).get("status") or {}
        state = status.get("applicationState", {}).get("state", "")
        pods = json.loads(
            kubectl(
                "get",
                "pods",
                "-n",
                platform.spark_namespace,
                "-l",
                f"spark-app-name={name}",
                "-o",
                "json",
            ).stdout
        )["items"]
        pods += json.loads(
            kubectl(
                "get",
                "pods",
                "-n",
                platform.spark_namespace,
                "-l",
                "spark-role=executor",
                "-o",
                "json",
            ).stdout
        )["items"]
        for pod in pods:
            role = pod["metadata"]["labels"].get("spark-role", "")
            if role in seen:
                seen[role].add(pod["metadata"]["name"])
                nodes.add(pod["spec"].get("nodeName", ""))
                specs.setdefault(role, pod["spec"])
        if state in ("COMPLETED", "FAILED", "SUBMISSION_FAILED"):
            break
        time.sleep(2)
    # Executors of a short job may come and go between two polls: their scheduling
    # events stay.
    seen["executor"] |= _scheduled_pods(platform, "-exec-", since)
    print(f"SparkApplication {name}: {state}; driver pods {sorted(seen['driver'])}, "
          f"executor pods {sorted(seen['executor'])}, on {sorted(nodes)}")  # fmt: skip
    assert state == "COMPLETED", status
    assert seen["driver"], "no driver pod seen"
    assert seen["executor"], "no executor pod seen"
    assert nodes <= platform.node_names()
    driver = status["driverInfo"]["podName"]
    assert driver in seen["driver"], "driverInfo.podName is not the driver pod Spark created"
    pod = json.loads(
        kubectl("get", "pod", driver, "-n", platform.spark_namespace, "-o", "json").stdout
    )
    assert status["sparkApplicationId"] == pod["metadata"]["labels"]["spark-app-selector"]
    assert set(status["executorState"]) <= seen["executor"]
    assert status["executorState"], "no executor state reported"
    logs = kubectl("logs", driver, "-n", platform.spark_namespace).stdout
    assert "Pi is roughly 3.1" in logs
    # The pods are the SparkApplication's own: its pod templates' security context and
    # placement (values/node.yaml), nothing injected by the stand-in.
    for role, container_name in (
        ("driver", "spark-kubernetes-driver"),
        ("executor", "spark-kubernetes-executor"),
    ):
        spec = specs.get(role)
        assert spec is not None, f"no {role} pod spec seen"
        (container,) = [c for c in spec["containers"] if c["name"] == container_name]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert [t for t in spec["tolerations"] if t["key"] == NODE_TAINT["key"]], spec
        assert spec["nodeSelector"] == {NODE_LABEL[0]: NODE_LABEL[1]}
    assert specs["executor"]["serviceAccountName"] == f"{RELEASE}-spark-executor"
    assert specs["executor"]["automountServiceAccountToken"] is False
    # Spark stops its executors with SIGTERM once the job is done: the operator (and so
    # the stand-in) reports them FAILED (exit code 143) for a COMPLETED application.
    print(f"executorState of a COMPLETED application: {status['executorState']}")


@pytest.mark.timeout(900)
def test_a_failing_driver_fails_the_application_with_its_error(platform: ChartE2E) -> None:
    """The job raises in the driver pod (pi.py given a non-number): the state comes from
    the driver pod as the operator reads it, not from spark-submit's exit code."""
    kubectl = platform.cluster.kubectl
    name = f"node-fail-{int(time.time())}"
    _apply_pi(platform, name, "not-a-number")
    states: list[str] = []
    status: dict[str, Any] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        out = kubectl(
            "get", "sparkapplication", name, "-n", platform.spark_namespace, "-o", "json"
        ).stdout
        status = json.loads(out).get("status") or {}
        state = status.get("applicationState", {}).get("state", "")
        if state and (not states or states[-1] != state):
            states.append(state)
        if state in ("COMPLETED", "FAILED", "SUBMISSION_FAILED"):
            break
        time.sleep(1)
    print(f"SparkApplication {name}: states {states}; {status.get('applicationState')}")
    assert states[-1] == "FAILED", status
    assert "COMPLETED" not in states
    assert "driver container failed with ExitCode: 1" in status["applicationState"]["errorMessage"]
    driver = status["driverInfo"]["podName"]
    assert status["sparkApplicationId"].startswith("spark-")
    pod = json.loads(
        kubectl("get", "pod", driver, "-n", platform.spark_namespace, "-o", "json").stdout
    )
    assert pod["status"]["phase"] == "Failed"
    assert status["sparkApplicationId"] == pod["metadata"]["labels"]["spark-app-selector"]
    logs = kubectl("logs", driver, "-n", platform.spark_namespace).stdout
    assert "ValueError" in logs
    kubectl("delete", "sparkapplication", name, "-n", platform.spark_namespace)


def _admin_password(platform: ChartE2E) -> str:
    """The FAB admin's password: the chart's generated Secret (secrets-init made it; the
    create-user Job set it)."""
    secret = json.loads(
        platform.cluster.kubectl(
            "get", "secret", f"{RELEASE}-generated", "-n", NAMESPACE, "-o", "json"
        ).stdout
    )
    return base64.b64decode(secret["data"]["admin-password"]).decode()


def _token(platform: ChartE2E, base: str, timeout: float = 600) -> str:
    """A JWT from the API server at `base` for the chart's FAB admin. Retries while the
    create-user Job (not waited for by `helm --wait`) has not created the user yet."""
    body = json.dumps({"username": "admin", "password": _admin_password(platform)}).encode()
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(  # noqa: S310 (a port-forward to the Service)
            f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return str(json.loads(response.read())["access_token"])
        except urllib.error.HTTPError as err:
            if err.code != 401 or time.monotonic() > deadline:
                raise
        except (TimeoutError, ConnectionError, urllib.error.URLError):
            # A replica restarting or slow on a loaded machine (seen on the real node).
            if time.monotonic() > deadline:
                raise
        time.sleep(5)


def _call(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/v2{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _dashboard(platform: ChartE2E) -> list[list[Any]]:
    """dashboards.daily_revenue from the worker pod's chdb (where load_clickhouse ran)."""
    worker = next(
        p["metadata"]["name"]
        for p in _workload_pods(platform)
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    )
    code = (
        "import clickhouse_connect, json\n"
        "c = clickhouse_connect.get_client(dsn='chdb:///tmp/clickhouse')\n"
        "rows = c.query('SELECT date, revenue, orders, items, customers "
        "FROM dashboards.daily_revenue ORDER BY date').result_rows\n"
        "print(json.dumps([[d.isoformat(), f'{r:.2f}', o, i, cu] for d, r, o, i, cu in rows]))"
    )
    out = platform.cluster.kubectl(
        "exec", "-n", NAMESPACE, worker, "--", "python", "-c", code, timeout=300
    ).stdout
    rows: list[list[Any]] = json.loads(out.strip().splitlines()[-1])
    return rows


@pytest.mark.timeout(2400)
def test_the_pipeline_runs_in_the_pods(platform: ChartE2E) -> None:
    """Events in Kafka, the DAG triggered through the REST API, the SparkApplication
    controller's real driver and executor pods, the trigger resuming the task, the
    dashboard in ClickHouse equal to an independent computation; the run cleared and run
    again changes nothing. verify_staging runs in a KubernetesExecutor pod of the same
    run (values/e2e.yaml), the others on Celery."""
    run_id = _run_the_pipeline(platform, rerun=True)
    with platform.airflow_api() as base:
        _assert_ran_in_a_kubernetes_executor_pod(
            platform, base, _token(platform, base), run_id, "verify_staging"
        )


def _assert_ran_in_a_kubernetes_executor_pod(
    platform: ChartE2E, base: str, token: str, run_id: str, task_id: str
) -> None:
    """The task's every try ran in a pod the KubernetesExecutor built from the chart's
    pod template: Completed on a target node, in the restricted namespace, hardened;
    the task instance's hostname is that pod; its log is readable after the pod ended.
    The run's other tasks ran on Celery."""
    kubectl = platform.cluster.kubectl
    tis = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    by_task = {t["task_id"]: t for t in tis["task_instances"]}
    ti = by_task[task_id]
    assert ti["state"] == "success", ti
    assert ti["executor"] == "KubernetesExecutor", ti
    others = {t["task_id"]: t["executor"] for t in tis["task_instances"] if t["task_id"] != task_id}
    assert set(others.values()) <= {"CeleryExecutor", None}, others
    listed = kubectl(
        "get", "pods", "-n", NAMESPACE, "-l", f"kubernetes_executor=True,task_id={task_id}",
        "-o", "json",
    ).stdout  # fmt: skip
    pods = [
        p
        for p in json.loads(listed)["items"]
        if p["metadata"].get("annotations", {}).get("run_id") == run_id
    ]
    assert pods, f"no KubernetesExecutor pod for {task_id} in run {run_id}"
    names = {p["metadata"]["name"] for p in pods}
    table = kubectl("get", "pods", "-n", NAMESPACE, "--no-headers", *sorted(names)).stdout
    print(f"KubernetesExecutor pods of {task_id}:\n{table}")
    assert all(line.split()[2] == "Completed" for line in table.splitlines()), table
    assert ti["hostname"] in names, (ti["hostname"], names)
    namespace = json.loads(kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout)
    labels = namespace["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    for pod in pods:
        assert pod["status"]["phase"] == "Succeeded"
        assert pod["spec"]["nodeName"] in platform.node_names()
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        base_container = next(c for c in spec["containers"] if c["name"] == "base")
        context = base_container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        env = {e["name"] for e in base_container.get("env", [])}
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env, "a task pod got the DB URL"
    # Its log, from remote logging (the pod's own files are gone with its container).
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
        f"{ti['try_number']}?full_content=true",
        headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        content = json.dumps(json.loads(response.read())["content"])
    assert "staging verified" in content, content[-2000:]


def _run_the_pipeline(platform: ChartE2E, dashboard_kept: bool = True, rerun: bool = False) -> str:
    """One batch through the pods. `dashboard_kept=False` after the worker pod was
    replaced: its chdb lives in the pod's /tmp (values/e2e.yaml: no ClickHouse server
    here), so the dashboard then holds only the dates loaded since, each of them right.
    `rerun`: then clear the run and run it again (same run id, same batch and offsets):
    nothing may change."""
    # Every batch published into this Kafka is kept beside its data (wiped with it), so
    # the independent computation covers all of them, whatever earlier runs left.
    batches = platform.services.kafka.dir / "node-e2e-batches"
    batches.mkdir(exist_ok=True)
    number = len(list(batches.iterdir()))
    events = batches / f"batch-{number}"
    stream = cdc_events.generate(
        40, seed=11 + number, start_id=1 + 100_000 * number, lsn_base=10**9 * (number + 1)
    )
    cdc_events.write(stream, events)
    published = cdc_events.publish(events, platform.services.kafka.bootstrap)
    print(f"published batch {number}: {published}")
    with platform.airflow_api() as base:
        token = _token(platform, base)
        run_id = _trigger(base, token)
        state, states, seen = _follow(platform, base, token, run_id)
        for task in ("consume", "verify_staging", "spark_transform"):
            assert all(v == "success" for (t, _), v in states.items() if t == task), states
        assert seen["completed"], "no SparkApplication of the run COMPLETED"
        assert seen["driver"]
        assert seen["executor"]
        # The Iceberg gold table the driver and executor pods wrote, read from here.
        expected = [list(r) for r in daily_revenue(sorted(batches.iterdir()))]
        assert _gold(platform) == expected
        assert state == "success", states
        dashboard = _dashboard(platform)
        if dashboard_kept:
            assert dashboard == expected
        else:
            assert [row for row in dashboard if row not in expected] == []
            touched = {row[0] for row in daily_revenue([events])}  # this batch's dates
            assert touched <= {row[0] for row in dashboard}
        if rerun:
            body = {"dry_run": False, "reset_dag_runs": True, "only_failed": False,
                    "dag_run_id": run_id}  # fmt: skip
            _call(base, token, "POST", f"/dags/{DAG_ID}/clearTaskInstances", body)
            state, states, _ = _follow(platform, base, token, run_id)
            assert state == "success", states
            assert _gold(platform) == expected, "clearing and rerunning changed gold"
            assert _dashboard(platform) == dashboard, "clearing and rerunning changed the dashboard"
    return run_id


def _trigger(base: str, token: str) -> str:
    """Unpause the DAG once parsed, trigger a run; its run id."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # parsed, and not stale (a stale DAG cannot run)
        try:
            if _call(base, token, "GET", f"/dags/{DAG_ID}")["is_stale"] is False:
                break
        except urllib.error.HTTPError:
            pass
        time.sleep(5)
    _call(base, token, "PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    run_id = f"node__{int(time.time())}"
    _call(
        base, token, "POST", f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None}
    )
    return run_id


def _follow(
    platform: ChartE2E, base: str, token: str, run_id: str
) -> tuple[str, dict[tuple[str, int], str], dict[str, set[str]]]:
    """Follow a run to its end: (run state, task instance states, the Spark driver and
    executor pods seen and the SparkApplications created meanwhile that COMPLETED, by
    kind)."""
    since = _utc_now()
    started = time.monotonic()
    seen: dict[str, set[str]] = {"driver": set(), "executor": set()}
    state, last = "", ""
    while time.monotonic() - started < 2000:
        run = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        state = run["state"]
        tis = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        line = " ".join(f"{t['task_id']}={t['state']}" for t in tis["task_instances"])
        if line != last:
            print(f"  [{time.monotonic() - started:6.1f} s] {line}", flush=True)
            last = line
        pods = json.loads(
            platform.cluster.kubectl(
                "get", "pods", "-n", platform.spark_namespace, "-l", "spark-role", "-o", "json"
            ).stdout
        )["items"]
        for pod in pods:
            role = pod["metadata"]["labels"]["spark-role"]
            seen["executor" if role == "executor" else "driver"].add(pod["metadata"]["name"])
        if state in ("success", "failed"):
            break
        time.sleep(5)
    apps = json.loads(
        platform.cluster.kubectl(
            "get", "sparkapplications", "-n", platform.spark_namespace, "-o", "json"
        ).stdout
    )["items"]
    mine = [a for a in apps if a["metadata"]["creationTimestamp"] >= since]
    seen["completed"] = {
        a["metadata"]["name"]
        for a in mine
        if a.get("status", {}).get("applicationState", {}).get("state") == "COMPLETED"
    }
    for app in mine:
        print(f"SparkApplication {app['metadata']['name']}: "
              f"{app.get('status', {}).get('applicationState')}")  # fmt: skip
    seen["executor"] |= _scheduled_pods(platform, "-exec-", since)
    print(f"run {run_id}: {state} in {time.monotonic() - started:.1f} s; driver pods "
          f"{sorted(seen['driver'])}, executor pods {sorted(seen['executor'])}")  # fmt: skip
    tis = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    states = {(t["task_id"], t["map_index"]): t["state"] for t in tis["task_instances"]}
    return state, states, seen


def _gold(platform: ChartE2E) -> list[list[Any]]:
    from pyiceberg.catalog import load_catalog

    from orders_contract.catalog import pyiceberg_properties

    config = platform.services.catalog_config()
    table = load_catalog(config.name, **pyiceberg_properties(config)).load_table(
        "gold.daily_revenue"
    )
    rows = table.scan().to_arrow().to_pylist()
    return sorted(
        [r["date"].isoformat(), f"{r['revenue']:.2f}", r["orders"], r["items"], r["customers"]]
        for r in rows
    )


# ---- day-2: login, task logs, housekeeping ------------------------------------------------

#: Run inside a pod (through the cluster's Service routing, so the same on every target):
#: log in N times at each URL, use each token to list the DAGs at the next URL, print one
#: JSON line {url: [login status, list status, ...]}. The password comes on stdin.
_LOGINS = """
import json, sys, urllib.error, urllib.request
password = sys.stdin.read().strip()
urls, n = sys.argv[1].split(","), int(sys.argv[2])
def call(url, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
out = {}
for i, url in enumerate(urls):
    other = urls[(i + 1) % len(urls)]
    results = []
    for _ in range(n):
        status, body = call(url + "/auth/token", {"username": "admin", "password": password})
        results.append(status)
        token = (body or {}).get("access_token")
        results.append(call(other + "/api/v2/dags?limit=1", token=token)[0] if token else 0)
    out[url] = results
print(json.dumps(out))
"""


def _component_pods(platform: ChartE2E, component: str) -> list[dict[str, Any]]:
    return [
        p
        for p in _workload_pods(platform)
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]


def _logins(platform: ChartE2E, urls: list[str], n: int) -> dict[str, list[int]]:
    """`_LOGINS` run in a scheduler pod (python and the cluster's DNS are there)."""
    scheduler = _component_pods(platform, "scheduler")[0]["metadata"]["name"]
    out = platform.cluster.kubectl(
        "exec", "-i", "-n", NAMESPACE, scheduler, "-c", "scheduler", "--",
        "python", "-c", _LOGINS, ",".join(urls), str(n),
        input=_admin_password(platform), timeout=600,
    ).stdout  # fmt: skip
    result: dict[str, list[int]] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.timeout(1800)
def test_login_works_on_every_api_server_replica(platform: ChartE2E) -> None:
    """2 api-server replicas: 20 logins through the Service, each token used to list the
    DAGs, all succeed (one user store, one JWT secret); a token from each pod works on
    the other; a replaced replica knows the same admin."""
    with platform.airflow_api() as base:
        _token(platform, base)  # waits for the create-user Job
    service = f"http://{RELEASE}-api-server.{NAMESPACE}.svc:8080"
    pods = _component_pods(platform, "api-server")
    assert len(pods) == 2
    through_service = _logins(platform, [service], 20)[service]
    assert through_service == [201, 200] * 20, through_service
    direct = [f"http://{p['status']['podIP']}:8080" for p in pods]
    crossed = _logins(platform, direct, 3)
    assert all(r == [201, 200] * 3 for r in crossed.values()), crossed
    # Delete one replica: its successor serves the same login.
    victim = pods[0]["metadata"]["name"]
    platform.cluster.kubectl("delete", "pod", victim, "-n", NAMESPACE, "--wait=true")
    platform.cluster.kubectl(
        "rollout", "status", f"deployment/{RELEASE}-api-server", "-n", NAMESPACE,
        "--timeout=600s", timeout=660,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not (
        len(_component_pods(platform, "api-server")) == 2
        and _all_ready(_component_pods(platform, "api-server"))
    ):
        assert time.monotonic() < deadline, "the api-server did not come back to 2 Ready pods"
        time.sleep(5)
    pods = _component_pods(platform, "api-server")
    assert victim not in {p["metadata"]["name"] for p in pods}
    after = _logins(platform, [service, *[f"http://{p['status']['podIP']}:8080" for p in pods]], 3)
    assert all(r == [201, 200] * 3 for r in after.values()), after


#: A task values/e2e.yaml runs on Celery, and one it runs on KubernetesExecutor.
TASK = "load_clickhouse"
KUBERNETES_TASK = "verify_staging"


@pytest.mark.timeout(900)
def test_a_celery_task_log_is_readable_through_the_api(platform: ChartE2E) -> None:
    """After a pipeline run (test_the_pipeline_runs_in_the_pods): the logs of the Celery
    task load_clickhouse and of the KubernetesExecutor task verify_staging (its pod gone:
    the remote log in S3) through the api-server, their lines and not "Could not read
    served logs"; and the worker hostname Airflow recorded resolves inside the cluster, so
    the log of a running task is reachable on the worker's log server too."""
    with platform.airflow_api() as base:
        token = _token(platform, base)
        runs = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns?state=success&limit=100")
        assert runs["dag_runs"], "no successful run: run test_the_pipeline_runs_in_the_pods"
        run_id = sorted(runs["dag_runs"], key=lambda r: r["end_date"])[-1]["dag_run_id"]
        instances, logs = {}, {}
        for task in (TASK, KUBERNETES_TASK):
            ti = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}")
            assert ti["state"] == "success", (task, ti["state"])
            instances[task] = ti
            logs[task] = _call(
                base, token, "GET",
                f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/{ti['try_number']}",
            )  # fmt: skip
    assert instances[TASK]["executor"] in (None, "CeleryExecutor"), instances[TASK]["executor"]
    assert instances[KUBERNETES_TASK]["executor"] == "KubernetesExecutor"
    for task, log in logs.items():
        text = json.dumps(log["content"])
        assert "Could not read served logs" not in text, (task, text[:2000])
        assert "Failed to resolve" not in text, (task, text[:2000])
        assert f"task_id={task}" in text, (task, text[:2000])
        assert len(log["content"]) > 3, (task, text[:2000])
    ti = instances[TASK]
    hostname = ti["hostname"]
    assert hostname.startswith(f"{RELEASE}-worker-"), hostname
    api = _component_pods(platform, "api-server")[0]["metadata"]["name"]
    probe = (
        "import socket, sys; s = socket.create_connection((sys.argv[1], 8793), timeout=10); "
        "print('connected', s.getpeername()[0])"
    )
    out = platform.cluster.kubectl(
        "exec", "-n", NAMESPACE, api, "-c", "api-server", "--", "python", "-c", probe, hostname
    ).stdout
    assert "connected" in out, out


_DB_CLEAN_PROBE = """
import datetime as dt, sys
from sqlalchemy import text
from airflow.utils.session import create_session
now = dt.datetime.now(dt.timezone.utc)
with create_session() as s:
    if sys.argv[1] == "insert":
        s.execute(text("DELETE FROM log WHERE event LIKE 'db-clean-probe-%'"))
        for event, age in (("db-clean-probe-old", 200), ("db-clean-probe-recent", 1)):
            s.execute(
                text("INSERT INTO log (dttm, event, owner) VALUES (:dttm, :event, 'node-test')"),
                {"dttm": now - dt.timedelta(days=age), "event": event},
            )
    print(",".join(r[0] for r in s.execute(text(
        "SELECT event FROM log WHERE event LIKE 'db-clean-probe-%' ORDER BY event"))))
"""


@pytest.mark.timeout(1200)
def test_db_clean_job_keeps_the_last_days(platform: ChartE2E) -> None:
    """The db-clean CronJob's Job, run once: an audit-log row older than
    dbClean.retentionDays (90) goes, one from yesterday stays, and so do the DAG runs."""
    scheduler = _component_pods(platform, "scheduler")[0]["metadata"]["name"]

    def probe(action: str) -> str:
        out = platform.cluster.kubectl(
            "exec", "-n", NAMESPACE, scheduler, "-c", "scheduler", "--",
            "python", "-c", _DB_CLEAN_PROBE, action, timeout=300,
        ).stdout  # fmt: skip
        return out.strip().splitlines()[-1]

    assert probe("insert") == "db-clean-probe-old,db-clean-probe-recent"
    with platform.airflow_api() as base:
        token = _token(platform, base)
        runs_before = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns?limit=1")["total_entries"]
    job = f"db-clean-once-{int(time.time())}"
    k = platform.cluster.kubectl
    k("create", "job", job, f"--from=cronjob/{RELEASE}-db-clean", "-n", NAMESPACE)
    k("wait", f"job/{job}", "-n", NAMESPACE, "--for=condition=Complete", "--timeout=900s",
      timeout=960)  # fmt: skip
    logs = k("logs", f"job/{job}", "-n", NAMESPACE).stdout
    assert "deleting metadata older than 90 days" in logs, logs
    assert probe("list") == "db-clean-probe-recent"
    with platform.airflow_api() as base:
        token = _token(platform, base)
        runs_after = _call(base, token, "GET", f"/dags/{DAG_ID}/dagRuns?limit=1")["total_entries"]
    assert runs_after == runs_before >= 1
    k("delete", "job", job, "-n", NAMESPACE, "--wait=false")


@pytest.mark.timeout(3600)
def test_helm_upgrade_rolls_the_pods(platform: ChartE2E) -> None:
    # By uid: a StatefulSet's rolled pod keeps its name (worker-0 stays worker-0).
    before = {p["metadata"]["uid"] for p in _workload_pods(platform)}
    started = time.monotonic()
    # A changed airflow.cfg: every component's config checksum changes, so all roll.
    platform.install_chart({"airflow": {"config": {"core": {"default_task_retries": "2"}}}})
    print(f"helm upgrade --wait: {time.monotonic() - started:.1f} s")
    after = _workload_pods(platform)
    assert _all_ready(after)
    assert not before & {p["metadata"]["uid"] for p in after}, "some pods did not roll"
    jobs = json.loads(
        platform.cluster.kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json").stdout
    )["items"]
    failed = [j["metadata"]["name"] for j in jobs if j["status"].get("failed")]
    assert not failed, f"jobs with failed runs: {failed}"
    cfg = platform.cluster.kubectl(
        "get", "configmap", f"{RELEASE}-config", "-n", NAMESPACE, "-o", "json"
    ).stdout
    assert "default_task_retries = 2" in json.loads(cfg)["data"]["airflow.cfg"]
    # The rolled platform runs the pipeline: a new batch, its dates right on the dashboard.
    _run_the_pipeline(platform, dashboard_kept=False)
    if (memory := platform.pods_memory()) is not None:
        current, peak = memory
        print(f"pods' memory now {current / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
