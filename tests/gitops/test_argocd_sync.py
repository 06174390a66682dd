"""A real Argo CD syncs the orders-etl chart from a Git repository into the local cluster.

Argo CD v2.14 (its application controller and repo-server, built from the argo-cd/v2
module, see localplatform.argocd) runs against the local control plane (kwok nodes). A
Git repository served over HTTP on 127.0.0.1 holds the chart and the values the way a
user's GitOps repository would; `argocd/orders-etl.yaml` is applied as shipped except for
its source (repoURL, targetRevision, values/local.yaml) and destination namespace.

kwok plays the kubelet: pods become Ready, Job pods Succeeded (its pod-complete stage),
no container code runs. The secrets-init Job's container is therefore played by the test
(its script from the installed ConfigMap, with the Job's env and ServiceAccount token),
as in tests/integration/test_chart_install.py.

The tests run in order on one Application and each leaves it Synced and Healthy.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import paths
from localplatform.argocd import APPLICATIONS_DIR, NAMESPACE, ArgoCD, application
from localplatform.cluster import Cluster
from localplatform.gitops import GitOpsRepo

pytestmark = [pytest.mark.gitops, pytest.mark.timeout(420)]

MANIFEST = APPLICATIONS_DIR / "orders-etl.yaml"
APP = "orders-etl"  # the Application's name in argocd/orders-etl.yaml
FULLNAME = "orders-etl"  # release orders-etl of chart orders-etl
VALUES = "values/local.yaml"
#: What a user's per-environment overlay changes: the kwok tier's values file.
VALUE_FILES = [f"../../{VALUES}"]
GENERATED_SECRET = f"{FULLNAME}-generated"
KINDS = (
    "deployments,statefulsets,jobs,services,configmaps,secrets,serviceaccounts,roles,"
    "rolebindings,poddisruptionbudgets,networkpolicies"
)
SETTLE_TIMEOUT = 180.0


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


@dataclass
class Deployed:
    """The Application under test, its repository and what the first sync measured."""

    argocd: ArgoCD
    cluster: Cluster
    repo: GitOpsRepo
    namespace: str
    manifest: dict[str, Any]
    seconds_to_healthy: float

    # -- reading ----------------------------------------------------------------------
    def app(self) -> dict[str, Any]:
        return self.argocd.get_application(APP)

    def live(self) -> dict[str, dict[str, Any]]:
        """Every object of the kinds the chart renders in the namespace, by Kind/name."""
        items = get_json(self.cluster, KINDS, "-n", self.namespace)["items"]
        return {f"{o['kind']}/{o['metadata']['name']}": o for o in items}

    def versions(self) -> dict[str, tuple[str, str]]:
        """uid and resourceVersion of every object: equal means nothing was written."""
        return {
            key: (o["metadata"]["uid"], o["metadata"]["resourceVersion"])
            for key, o in self.live().items()
            if not key.startswith(("Secret/default-token", "ConfigMap/kube-root-ca"))
        }

    def workloads(self) -> dict[str, dict[str, Any]]:
        return {
            k: {"generation": o["metadata"]["generation"], "template": o["spec"]["template"]}
            for k, o in self.live().items()
            if k.split("/")[0] in ("Deployment", "StatefulSet")
        }

    def jobs(self) -> dict[str, str]:
        return {k: o["metadata"]["uid"] for k, o in self.live().items() if k.startswith("Job/")}

    # -- waiting ----------------------------------------------------------------------
    def wait(
        self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = SETTLE_TIMEOUT
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            app = self.app()
            if check(app):
                return app
            if time.monotonic() > deadline:
                status = app.get("status", {})
                summary = {
                    "sync": status.get("sync"),
                    "health": status.get("health"),
                    "conditions": status.get("conditions"),
                    "operationState": {
                        k: v
                        for k, v in status.get("operationState", {}).items()
                        if k in ("phase", "message", "startedAt", "finishedAt")
                    },
                    "unsettled": [
                        r
                        for r in status.get("resources", [])
                        if r.get("status") != "Synced"
                        or r.get("health", {}).get("status", "Healthy") != "Healthy"
                    ],
                }
                pytest.fail(
                    f"Application {APP}: not {what} after {timeout:.0f} s:\n"
                    f"{yaml.safe_dump(summary, sort_keys=False)}\n"
                    f"controller log:\n{self.argocd.controller_log_tail()}"
                )
            time.sleep(1)

    def settled(
        self, revision: str, since: str | None = None, synced_by: str | None = None
    ) -> dict[str, Any]:
        """Wait until the Application is Synced and Healthy at `revision` and its last sync
        operation succeeded: one started after `since` if given, one that synced `synced_by`
        (default: `revision`; a commit that renders the same manifests needs no sync)."""

        def check(app: dict[str, Any]) -> bool:
            status = app.get("status", {})
            op = status.get("operationState", {})
            return (
                "operation" not in app
                and status.get("sync", {}).get("status") == "Synced"
                and status.get("sync", {}).get("revision") == revision
                and status.get("health", {}).get("status") == "Healthy"
                and op.get("phase") == "Succeeded"
                and op.get("syncResult", {}).get("revision") == (synced_by or revision)
                and (since is None or op.get("startedAt", "") > since)
            )

        return self.wait(check, f"Synced and Healthy at {revision[:8]}")

    def commit_values(self, change: Callable[[dict[str, Any]], None], message: str) -> str:
        values = yaml.safe_load(self.repo.read(VALUES))
        change(values)
        self.repo.write(VALUES, yaml.safe_dump(values, sort_keys=False))
        revision = self.repo.commit(message)
        self.argocd.refresh(APP)  # what the Git host's webhook does
        return revision

    def revert(self, revision: str) -> str:
        reverted = self.repo.revert(revision)
        self.argocd.refresh(APP)
        return reverted


def run_secrets_init(cluster: Cluster, namespace: str) -> str:
    """Plays the secrets-init Job's container (kwok runs no code): the script from the
    installed ConfigMap, the Job's env, a token of the Job's ServiceAccount."""
    cm = get_json(cluster, "configmap", f"{FULLNAME}-secrets-init", "-n", namespace)
    jobs = get_json(cluster, "jobs", "-n", namespace)["items"]
    (job,) = [j for j in jobs if j["metadata"]["name"].startswith(f"{FULLNAME}-secrets-init-")]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    token = cluster.kubectl(
        "create", "token", f"{FULLNAME}-secrets-init", "-n", namespace, "--duration=10m"
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="orders-etl-secrets-init-") as tmp:
        work = Path(tmp)
        (work / "generate_secrets.py").write_text(cm["data"]["generate_secrets.py"])
        (work / "token").write_text(token)
        result = subprocess.run(
            ["python3", str(work / "generate_secrets.py")],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                **env,
                "SECRET_NAMESPACE": namespace,
                "KUBE_API": cluster.server,
                "KUBE_TOKEN_FILE": str(work / "token"),
                "KUBE_CA_FILE": str(cluster.pki_dir / "ca.crt"),
            },
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def deployed(argocd: ArgoCD) -> Iterator[Deployed]:
    """The shipped Application, overlaid onto a fresh local GitOps repository, applied,
    and waited for until Synced and Healthy (the time is measured)."""
    cluster = argocd.cluster
    suffix = uuid.uuid4().hex[:6]
    repo = GitOpsRepo.create(argocd.git_root, f"orders-etl-{suffix}")
    namespace = f"gitops-{suffix}"
    # What the user provides out of band: the database Secret the values name. The
    # namespace's PodSecurity label comes from the Application (managedNamespaceMetadata).
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "orders-etl-db",
        "-n",
        namespace,
        "--from-literal=connection=postgresql+psycopg2://a:b@pg:5432/airflow",
    )
    manifest = application(
        MANIFEST,
        repo_url=argocd.repo_url(repo.bare.name.removesuffix(".git")),
        revision="main",
        namespace=namespace,
        value_files=VALUE_FILES,
    )
    assert cluster.kubectl(
        "get", "applications.argoproj.io", APP, "-n", NAMESPACE, check=False
    ).returncode, f"an Application {APP} already exists in {NAMESPACE}: delete it first"
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    handle = Deployed(argocd, cluster, repo, namespace, manifest, 0.0)
    try:
        handle.settled(repo.head())
        handle.seconds_to_healthy = time.monotonic() - started
        yield handle
    finally:
        # The resources finalizer: deleting the Application deletes what it synced.
        cluster.kubectl(
            "delete",
            "applications.argoproj.io",
            APP,
            "-n",
            NAMESPACE,
            "--ignore-not-found",
            "--timeout=120s",
            check=False,
            timeout=150,
        )
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ---- 1. first sync ----------------------------------------------------------------------


def test_first_sync_is_synced_and_healthy_in_wave_order(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(
            f"\nArgo CD: {APP} Synced and Healthy {deployed.seconds_to_healthy:.1f} s after apply"
        )
    shipped = yaml.safe_load(MANIFEST.read_text())
    app = deployed.app()
    # Nothing Argo-CD-specific was added: the spec is the shipped one but for the overlay.
    expected = copy.deepcopy(shipped["spec"])
    expected["source"].update(
        repoURL=deployed.manifest["spec"]["source"]["repoURL"], targetRevision="main"
    )
    expected["source"]["helm"]["valueFiles"] = VALUE_FILES
    expected["destination"]["namespace"] = deployed.namespace
    assert app["spec"] == expected
    assert shipped["spec"]["syncPolicy"]["syncOptions"] == ["CreateNamespace=true"]

    status = app["status"]
    assert all(r["status"] == "Synced" for r in status["resources"]), status["resources"]
    unhealthy = [
        r for r in status["resources"] if r.get("health", {}).get("status") not in (None, "Healthy")
    ]
    assert not unhealthy
    # No hooks: every object of the chart is a regular resource of the Sync phase, ordered
    # by sync waves only (the namespace is Argo CD's own PreSync step, CreateNamespace).
    results = status["operationState"]["syncResult"]["resources"]
    chart = [r for r in results if r["kind"] != "Namespace"]
    assert len(chart) == len(status["resources"])
    assert not [r for r in chart if r.get("hookType") or r.get("syncPhase") != "Sync"]

    live = deployed.live()
    jobs = {k.split("/")[1].rsplit("-", 1)[0]: o for k, o in live.items() if k.startswith("Job/")}
    assert set(jobs) == {
        f"{FULLNAME}-{j}" for j in ("secrets-init", "migrate", "bootstrap", "create-user")
    }
    for job in jobs.values():  # kwok's pod-complete stage completes the Jobs' pods
        assert job["status"].get("succeeded") == 1, job["metadata"]["name"]
    workloads = [o for k, o in live.items() if k.split("/")[0] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 6

    def created(obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["creationTimestamp"])

    secrets_init, migrate = jobs[f"{FULLNAME}-secrets-init"], jobs[f"{FULLNAME}-migrate"]
    bootstrap = jobs[f"{FULLNAME}-bootstrap"]
    create_user = jobs[f"{FULLNAME}-create-user"]
    # Wave -2 completes before wave -1 starts, the migration (wave -1) completes before
    # any workload (wave 0) exists, the pools bootstrap and the admin user (wave 1) come
    # after them.
    assert secrets_init["status"]["completionTime"] <= created(migrate)
    for workload in workloads:
        assert migrate["status"]["completionTime"] <= created(workload), workload["metadata"]
    for job in (bootstrap, create_user):
        assert created(job) >= max(created(w) for w in workloads), job["metadata"]["name"]

    labels = get_json(deployed.cluster, "namespace", deployed.namespace)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"

    # The Job's container, played: the generated Secret now exists (tests 2-6 keep it).
    assert "created secret" in run_secrets_init(deployed.cluster, deployed.namespace)


# ---- 2. a second sync is a no-op ---------------------------------------------------------


def assert_only_generated_secret_is_extraneous(app: dict[str, Any]) -> None:
    """Argo CD 2.x tracks resources by the app.kubernetes.io/instance label, which the
    in-cluster generated Secret carries (the release's labels): Argo CD lists it as
    extraneous. The chart's annotations on it (IgnoreExtraneous, Prune=false,Delete=false)
    keep it out of the sync status and away from pruning; without them a self-heal sync
    deletes it (measured)."""
    listed = [
        (r["kind"], r["name"], r.get("requiresPruning"))
        for r in app["status"]["resources"]
        if r["status"] != "Synced"
    ]
    assert listed == [("Secret", GENERATED_SECRET, True)]


def test_second_sync_changes_nothing(deployed: Deployed) -> None:
    before = deployed.versions()
    secret = get_json(deployed.cluster, "secret", GENERATED_SECRET, "-n", deployed.namespace)
    head = deployed.repo.head()
    app = deployed.settled(head)

    # A hard refresh re-renders the chart from Git: identical manifests, still Synced, and
    # the in-cluster generated Secret is not something Argo CD wants to prune.
    reconciled = app["status"]["reconciledAt"]
    deployed.argocd.refresh(APP, hard=True)
    app = deployed.wait(
        lambda a: (
            a["status"].get("reconciledAt", "") > reconciled
            and "argocd.argoproj.io/refresh" not in a["metadata"].get("annotations", {})
        ),
        "refreshed",
    )
    assert app["status"]["sync"]["status"] == "Synced"
    assert_only_generated_secret_is_extraneous(app)

    # An explicit sync (what `argocd app sync` does) of the same revision.
    last = app["status"]["operationState"]["startedAt"]
    deployed.argocd.sync(APP, head)
    app = deployed.settled(head, since=last)

    assert deployed.versions() == before, "the second sync wrote to the cluster"
    after = get_json(deployed.cluster, "secret", GENERATED_SECRET, "-n", deployed.namespace)
    assert after["metadata"]["uid"] == secret["metadata"]["uid"]
    assert after["data"] == secret["data"]
    assert_only_generated_secret_is_extraneous(app)


# ---- 3. a values change rolls out, its revert restores ----------------------------------


def test_values_change_rolls_out_and_revert_restores(deployed: Deployed) -> None:
    scheduler = f"Deployment/{FULLNAME}-scheduler"
    workloads, jobs = deployed.workloads(), deployed.jobs()
    configmaps = {k: v for k, v in deployed.versions().items() if k.startswith("ConfigMap/")}

    def more_cpu(values: dict[str, Any]) -> None:
        values["scheduler"]["resources"]["requests"]["cpu"] = "250m"

    changed = deployed.commit_values(more_cpu, "scheduler: request 250m CPU")
    deployed.settled(changed)
    now = deployed.workloads()
    assert now[scheduler]["generation"] > workloads[scheduler]["generation"]
    (container,) = [
        c for c in now[scheduler]["template"]["spec"]["containers"] if c["name"] == "scheduler"
    ]
    assert container["resources"]["requests"]["cpu"] == "250m"
    for name, workload in workloads.items():
        if name != scheduler:
            assert now[name] == workload, f"{name} changed"
    assert deployed.jobs() == jobs, "a Job was re-created"
    assert {k: v for k, v in deployed.versions().items() if k.startswith("ConfigMap/")} == (
        configmaps
    )

    reverted = deployed.revert(changed)
    deployed.settled(reverted)
    now = deployed.workloads()
    assert now[scheduler]["template"] == workloads[scheduler]["template"]
    assert {k: v for k, v in now.items() if k != scheduler} == {
        k: v for k, v in workloads.items() if k != scheduler
    }
    assert deployed.jobs() == jobs


# ---- 4. self-heal -------------------------------------------------------------------------


def test_hand_edits_are_put_back(deployed: Deployed) -> None:
    cluster, ns = deployed.cluster, deployed.namespace
    config = get_json(cluster, "configmap", f"{FULLNAME}-config", "-n", ns)
    replicas = get_json(cluster, "deployment", f"{FULLNAME}-scheduler", "-n", ns)["spec"][
        "replicas"
    ]
    last = deployed.app()["status"]["operationState"]["startedAt"]
    started = time.monotonic()
    cluster.kubectl("delete", "configmap", f"{FULLNAME}-config", "-n", ns)
    cluster.kubectl("scale", "deployment", f"{FULLNAME}-scheduler", "-n", ns, "--replicas=5")

    deployed.settled(deployed.repo.head(), since=last)
    deadline = time.monotonic() + 60
    while True:
        healed = get_json(cluster, "configmap", f"{FULLNAME}-config", "-n", ns)
        scheduler = get_json(cluster, "deployment", f"{FULLNAME}-scheduler", "-n", ns)
        if scheduler["spec"]["replicas"] == replicas or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"self-healed in {time.monotonic() - started:.1f} s")
    assert healed["metadata"]["uid"] != config["metadata"]["uid"]
    assert healed["data"] == config["data"]
    assert scheduler["spec"]["replicas"] == replicas
    deployed.settled(deployed.repo.head())


# ---- 5. prune -----------------------------------------------------------------------------


def test_component_switched_off_is_pruned(deployed: Deployed) -> None:
    spark_objects = {
        f"ConfigMap/{FULLNAME}-spark-template",
        f"ServiceAccount/{FULLNAME}-spark-driver",
        f"ServiceAccount/{FULLNAME}-spark-executor",
        f"Role/{FULLNAME}-spark-driver",
        f"RoleBinding/{FULLNAME}-spark-driver",
        f"Role/{FULLNAME}-spark-submitter",
        f"RoleBinding/{FULLNAME}-spark-submitter",
    }
    before = set(deployed.live())
    assert spark_objects <= before

    def spark_off(values: dict[str, Any]) -> None:
        values["spark"]["enabled"] = False

    changed = deployed.commit_values(spark_off, "spark: off")
    app = deployed.settled(changed)
    after = set(deployed.live())
    assert not spark_objects & after, spark_objects & after
    assert before - spark_objects - after == set(), "more than the switched-off component went"
    pruned = {
        f"{r['kind']}/{r['name']}"
        for r in app["status"]["operationState"]["syncResult"]["resources"]
        if r.get("message") == "pruned"
    }
    assert pruned == spark_objects

    deployed.settled(deployed.revert(changed))
    assert spark_objects <= set(deployed.live())


# ---- bad input: values failing the chart's schema ---------------------------------------


def test_values_failing_the_schema_leave_a_comparison_error_and_the_cluster_untouched(
    deployed: Deployed,
) -> None:
    def bad(values: dict[str, Any]) -> None:
        values["scheduler"]["replicas"] = "two"

    # The schema's own message, as the pinned helm prints it for these values.
    values = yaml.safe_load(deployed.repo.read(VALUES))
    bad(values)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        yaml.safe_dump(values, handle)
        handle.flush()
        rendered = subprocess.run(
            [
                str(paths.tool("helm")),
                "template",
                FULLNAME,
                str(deployed.repo.work / "charts" / "orders-etl"),
                "-f",
                handle.name,
                "--kube-version",
                "1.35.0",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert rendered.returncode != 0
    schema_lines = [
        line.strip()
        for line in rendered.stderr.splitlines()
        if "replicas" in line and line.strip() and not line.startswith("Error")
    ]
    assert schema_lines, rendered.stderr

    before = deployed.versions()
    last = deployed.app()["status"]["operationState"]["startedAt"]
    broken = deployed.commit_values(bad, "scheduler: replicas two (breaks the schema)")

    def comparison_error(app: dict[str, Any]) -> bool:
        return any(
            c["type"] == "ComparisonError" and "replicas" in c["message"]
            for c in app.get("status", {}).get("conditions", [])
        )

    app = deployed.wait(comparison_error, "in a ComparisonError")
    (condition,) = [c for c in app["status"]["conditions"] if c["type"] == "ComparisonError"]
    for line in schema_lines:
        assert line in condition["message"], (line, condition["message"])
    assert "values don't meet the specifications of the schema" in condition["message"]
    time.sleep(5)  # give a (wrong) automated sync the chance to start
    app = deployed.app()
    assert app["status"]["sync"]["status"] != "Synced"
    assert app["status"]["operationState"]["startedAt"] == last, "a sync was attempted"
    assert deployed.versions() == before, "the cluster changed"

    # The revert renders what was synced last: Synced again, without a sync.
    synced = app["status"]["operationState"]["syncResult"]["revision"]
    deployed.settled(deployed.revert(broken), synced_by=synced)
    app = deployed.app()
    assert not [c for c in app["status"].get("conditions", []) if c["type"] == "ComparisonError"]


# ---- deletion ---------------------------------------------------------------------------


def test_deleting_the_application_removes_what_it_synced_but_the_generated_secret(
    deployed: Deployed,
) -> None:
    cluster, ns = deployed.cluster, deployed.namespace
    secret = get_json(cluster, "secret", GENERATED_SECRET, "-n", ns)
    cluster.kubectl(
        "delete", "applications.argoproj.io", APP, "-n", NAMESPACE, "--timeout=120s", timeout=150
    )
    deadline = time.monotonic() + 60
    while True:
        left = {k for k in deployed.live() if not k.startswith("ConfigMap/kube-root-ca")}
        # Pods of deleted workloads go on their own (kwok's pod-delete stage).
        if not [k for k in left if k.startswith(("Deployment/", "StatefulSet/", "Job/"))]:
            break
        assert time.monotonic() < deadline, left
        time.sleep(1)
    # Like `helm uninstall`: the generated Secret (the fernet key) and the user's stay.
    assert left == {f"Secret/{GENERATED_SECRET}", "Secret/orders-etl-db", "ServiceAccount/default"}
    kept = get_json(cluster, "secret", GENERATED_SECRET, "-n", ns)
    assert kept["data"] == secret["data"]
