"""The spark-operator stand-in's spark-submit command in local mode: one JVM does the
driver's and the executors' work, so it gets the memory of all of them."""

from __future__ import annotations

from typing import Any

import pytest

from spark_operator_standin.submit import SubmitSettings, command, jvm_memory_mib

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


def test_cluster_mode_keeps_the_driver_memory_as_given() -> None:
    k8s = SubmitSettings(spark_submit="spark-submit", mode="k8s")
    argv = command(app({"memory": "512m"}, {"instances": 2, "memory": "1g"}), k8s)
    assert driver_memory(argv) == "512m"
    assert "spark.executor.memory=1g" in argv


def test_cluster_mode_passes_the_pod_resources_as_the_operator_does() -> None:
    k8s = SubmitSettings(spark_submit="spark-submit", mode="k8s")
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
    # The spec's own sparkConf wins, as with the operator.
    spec["spec"]["sparkConf"] = {"spark.kubernetes.driver.limit.cores": "2"}
    assert "spark.kubernetes.driver.limit.cores=2" in command(spec, k8s)
