"""The spark-operator stand-in's spark-submit command in local mode: one JVM does the
driver's and the executors' work, so it gets the memory of all of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from spark_operator_standin.submit import (
    LOCAL_JVM_OPTIONS,
    SubmitSettings,
    command,
    jvm_memory_mib,
)

pytestmark = pytest.mark.unit


def app(driver: dict[str, Any], executor: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "orders-transform", "namespace": "jobs"},
        "spec": {
            "type": "Python",
            "image": "orders-etl/spark:3.5.9",
            "mainApplicationFile": "local:///opt/orders-etl/spark-jobs/main.py",
            "driver": driver,
            "executor": executor,
        },
    }


def driver_memory(argv: list[str]) -> str | None:
    return argv[argv.index("--driver-memory") + 1] if "--driver-memory" in argv else None


@pytest.mark.parametrize(
    ("value", "mib"),
    [("512m", 512), ("1g", 1024), ("1536M", 1536), ("2gb", 2048), ("2048", 2048), ("1t", 1 << 20)],
)
def test_jvm_memory_strings(value: str, mib: int) -> None:
    assert jvm_memory_mib(value) == mib


@pytest.mark.parametrize("bad", ["", "g", "1.5g", "lots", "-1g"])
def test_bad_memory_strings_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Spark memory size"):
        jvm_memory_mib(bad)


def test_local_mode_jvm_gets_driver_and_executor_memory() -> None:
    local = SubmitSettings(spark_submit="spark-submit", mode="local")
    spec = app({"memory": "512m"}, {"instances": 2, "memory": "1g"})
    assert driver_memory(command(spec, local)) == f"{512 + 2 * 1024}m"
    assert driver_memory(command(app({}, {}), local)) is None


def test_cluster_mode_keeps_the_driver_memory_as_given(tmp_path: Path) -> None:
    k8s = SubmitSettings(spark_submit="spark-submit", mode="k8s", template_dir=tmp_path)
    argv = command(app({"memory": "512m"}, {"instances": 2, "memory": "1g"}), k8s)
    assert "spark.driver.memory=512m" in argv  # as the operator passes it: a conf
    assert "spark.executor.memory=1g" in argv


def test_cluster_mode_passes_the_pod_resources_as_the_operator_does(tmp_path: Path) -> None:
    k8s = SubmitSettings(spark_submit="spark-submit", mode="k8s", template_dir=tmp_path)
    spec = app(
        {"cores": 1, "coreLimit": "1200m", "memoryOverhead": "256m"},
        {"cores": 2, "coreRequest": "500m", "instances": 1},
    )
    argv = command(spec, k8s)
    for conf in (
        "spark.driver.cores=1",
        "spark.kubernetes.driver.limit.cores=1200m",
        "spark.driver.memoryOverhead=256m",
        "spark.executor.cores=2",
        "spark.kubernetes.executor.request.cores=500m",
    ):
        assert conf in argv
    # The operator passes sparkConf before the spec's fields: the later --conf wins.
    spec["spec"]["sparkConf"] = {"spark.kubernetes.driver.limit.cores": "2"}
    argv = command(spec, k8s)
    limits = [a for a in argv if a.startswith("spark.kubernetes.driver.limit.cores=")]
    assert limits == [
        "spark.kubernetes.driver.limit.cores=2",
        "spark.kubernetes.driver.limit.cores=1200m",
    ]


def confs(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--conf"]
    return {k: v for k, v in pairs}


def test_cluster_mode_passes_the_applications_own_pod_templates(tmp_path: Path) -> None:
    """driverPodTemplateOption / executorPodTemplateOption: the spec's templates, owned by
    the application, in files under the submission's folder; nothing of the stand-in's."""
    template = {
        "metadata": {"annotations": {"a": "b"}},
        "spec": {
            "tolerations": [{"key": "real", "operator": "Exists"}],
            "containers": [
                {"name": "spark-kubernetes-driver", "securityContext": {"runAsNonRoot": True}}
            ],
        },
    }
    spec = app({"template": template, "serviceAccount": "driver-sa"}, {"serviceAccount": "exec-sa"})
    spec["metadata"]["uid"] = "uid-1"
    spec["spec"]["sparkVersion"] = "3.5.9"
    k8s = SubmitSettings(spark_submit="spark-submit", mode="k8s", template_dir=tmp_path)
    argv = command(spec, k8s, submission_id="sub-1")
    conf = confs(argv)
    driver_file = Path(conf["spark.kubernetes.driver.podTemplateFile"])
    executor_file = Path(conf["spark.kubernetes.executor.podTemplateFile"])
    assert driver_file.parent == executor_file.parent == tmp_path / "sub-1"
    driver = json.loads(driver_file.read_text())
    assert driver["spec"] == template["spec"]
    assert driver["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "name": "orders-transform",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    executor = json.loads(executor_file.read_text())  # no template: a bare one
    assert executor["spec"] == {"containers": [{"name": "spark-kubernetes-executor"}]}
    assert "controller" not in executor["metadata"]["ownerReferences"][0]
    assert conf["spark.kubernetes.driver.podTemplateContainerName"] == "spark-kubernetes-driver"
    assert conf["spark.kubernetes.executor.podTemplateContainerName"] == "spark-kubernetes-executor"
    assert conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
    assert conf["spark.kubernetes.driver.label.sparkoperator.k8s.io/submission-id"] == "sub-1"
    assert (
        conf["spark.kubernetes.executor.label.sparkoperator.k8s.io/app-name"] == "orders-transform"
    )
    # With a template the driver is not left to the webhook; without one it is.
    assert (
        "spark.kubernetes.driver.label.sparkoperator.k8s.io/mutated-by-spark-operator" not in conf
    )
    assert (
        conf["spark.kubernetes.executor.label.sparkoperator.k8s.io/mutated-by-spark-operator"]
        == "true"
    )
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "driver-sa"
    assert conf["spark.kubernetes.authenticate.executor.serviceAccountName"] == "exec-sa"
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"
    assert argv[-1] == "local:///opt/orders-etl/spark-jobs/main.py"


def test_cluster_mode_maps_env_vars_but_not_the_webhooks_env_list(tmp_path: Path) -> None:
    """envVars and envSecretKeyRefs become conf; `env` (a list) reaches pods only through
    the operator's webhook, so it is not passed (the chart puts env in the templates)."""
    spec = app(
        {
            "envVars": {"AWS_REGION": "us-east-1"},
            "env": [{"name": "IGNORED", "value": "x"}],
            "envSecretKeyRefs": {"AWS_ACCESS_KEY_ID": {"name": "s3", "key": "id"}},
        },
        {"envVars": {"AWS_REGION": "us-east-1"}},
    )
    conf = confs(command(spec, SubmitSettings("spark-submit", mode="k8s", template_dir=tmp_path)))
    assert conf["spark.kubernetes.driverEnv.AWS_REGION"] == "us-east-1"
    assert conf["spark.executorEnv.AWS_REGION"] == "us-east-1"
    assert conf["spark.kubernetes.driver.secretKeyRef.AWS_ACCESS_KEY_ID"] == "s3:id"
    assert not [k for k in conf if "IGNORED" in k]


def _final_flag(options: str, name: str) -> int:
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    done = subprocess.run(
        [java, *options.split(), "-XX:+PrintFlagsFinal", "-version"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == name:
            return int(parts[3])
    raise AssertionError(f"{name} not in the JVM's final flags")


def test_the_local_jvm_keeps_compiling_through_a_long_batch() -> None:
    """C1 only (TieredStopAtLevel=1) shrinks the JVM's default code cache to 48 MB, which
    the job fills in 40-70 s (a batch of a million events, or a grown table): the JVM then
    logs "CodeCache is full. Compiler has been disabled." and runs the rest interpreted.
    The local JVM gets the code cache a tiered JVM has by default."""
    tiered_default = _final_flag("", "ReservedCodeCacheSize")
    assert _final_flag(LOCAL_JVM_OPTIONS, "TieredStopAtLevel") == 1
    assert _final_flag(LOCAL_JVM_OPTIONS, "ReservedCodeCacheSize") >= tiered_default
