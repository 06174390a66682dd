"""The spark-operator stand-in's image (a TEST STAND-IN): the Spark image plus the
stand-in distribution, as charts/spark-operator-standin runs it."""

from __future__ import annotations

import json

import pytest
from imagetools import FIND_RIG, lock_version, podman, podman_run

pytestmark = pytest.mark.images


@pytest.fixture(scope="module")
def image(built: dict[str, str]) -> str:
    return built["spark-operator-standin"]


def test_runs_the_controller_as_the_chart_starts_it(image: str) -> None:
    # The chart's command: `python -m spark_operator_standin --mode=k8s ...`.
    out = podman_run(image, "python", "-m", "spark_operator_standin", "--help").stdout
    assert "--mode" in out
    assert "--namespace" in out


def test_is_the_spark_image_plus_the_stand_in_only(image: str, built: dict[str, str]) -> None:
    # spark-submit, its JDK and uid come from the Spark image underneath.
    proc = podman_run(image, "spark-submit", "--version")
    assert f"version {lock_version('pyspark')}" in proc.stdout + proc.stderr
    assert podman_run(image, "id", "-u").stdout.strip() == "185"
    assert json.loads(podman_run(image, "python", "-c", FIND_RIG).stdout) == [
        "spark_operator_standin"
    ]
    layers = {
        name: json.loads(
            podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout
        )
        for name, ref in built.items()
        if name in ("spark", "spark-operator-standin")
    }
    spark, standin = layers["spark"], layers["spark-operator-standin"]
    assert standin[: len(spark)] == spark, "not built on the Spark image"
    assert len(standin) == len(spark) + 1
