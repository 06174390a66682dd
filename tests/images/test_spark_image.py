"""The Spark image: Spark from the pinned pyspark with exactly the pinned extra jars, uid
185, the Kubernetes container contract (driver / executor), and a real Iceberg table
written and read back on the local S3 server through the JDBC catalog, from a container
on the host network."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from imagetools import FIND_RIG, lock_version, podman_run

from localplatform.spark import spark_jars

pytestmark = pytest.mark.images


@pytest.fixture(scope="module")
def image(built: dict[str, str]) -> str:
    return built["spark"]


def test_spark_version_and_user(image: str) -> None:
    # No argument: the entrypoint prints spark-submit --version.
    proc = podman_run(image)
    assert f"version {lock_version('pyspark')}" in proc.stdout + proc.stderr
    out = podman_run(image, "sh", "-c", 'id -u; echo "$SPARK_HOME"; java -version 2>&1 | head -1')
    uid, spark_home, java = out.stdout.strip().splitlines()
    assert uid == "185"
    assert spark_home == "/opt/spark"
    assert '"17.' in java


def test_jar_list_is_pyspark_plus_the_pinned_jars(image: str) -> None:
    import pyspark

    wheel_jars = {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    image_jars = set(podman_run(image, "ls", "/opt/spark/jars").stdout.split())
    assert image_jars - wheel_jars == {p.name for p in spark_jars()}
    assert wheel_jars <= image_jars


def test_job_code_and_its_contract_without_the_test_rig(image: str) -> None:
    out = podman_run(
        image,
        "sh",
        "-c",
        "test -f /opt/orders-etl/spark-jobs/main.py "
        "&& python -c 'import orders_cdc.job, orders_contract.staging' && echo ok",
    ).stdout
    assert out.strip() == "ok"
    # The product only: no stand-in, no local platform, no tests (nor their Kubernetes client).
    assert json.loads(podman_run(image, "python", "-c", FIND_RIG).stdout) == []
    assert podman_run(image, "python", "-c", "import kubernetes", check=False).returncode != 0


def test_executor_contract(image: str) -> None:
    env = {
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@10.0.0.5:7078",
        "SPARK_EXECUTOR_ID": "3",
        "SPARK_EXECUTOR_CORES": "2",
        "SPARK_EXECUTOR_MEMORY": "1024m",
        "SPARK_APPLICATION_ID": "spark-abc",
        "SPARK_EXECUTOR_POD_IP": "fd00::7",
        "SPARK_EXECUTOR_POD_NAME": "app-exec-3",
        "SPARK_RESOURCE_PROFILE_ID": "0",
        "SPARK_JAVA_OPT_10": "-Dlast=1",
        "SPARK_JAVA_OPT_2": "-Dsecond=1",
        "SPARK_JAVA_OPT_0": "-Dfirst=a=b",
        "SPARK_CLASSPATH": "/extra/*",
        "ORDERS_ETL_ENTRYPOINT_DRY_RUN": "1",
    }
    opts = tuple(a for k, v in env.items() for a in ("-e", f"{k}={v}"))
    argv = podman_run(image, "executor", opts=opts).stdout.splitlines()
    assert argv[0] == "/usr/lib/jvm/java-17/bin/java"
    assert argv[1:4] == ["-Dfirst=a=b", "-Dsecond=1", "-Dlast=1"]
    assert argv[4:6] == ["-Xms1024m", "-Xmx1024m"]
    cp = argv[argv.index("-cp") + 1]
    assert "/opt/spark/jars/*" in cp
    assert cp.endswith(":/extra/*")
    main = argv.index("org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend")
    flags = dict(zip(argv[main + 1 :: 2], argv[main + 2 :: 2], strict=True))
    assert flags == {
        "--driver-url": env["SPARK_DRIVER_URL"],
        "--executor-id": "3",
        "--cores": "2",
        "--app-id": "spark-abc",
        "--hostname": "[fd00::7]",
        "--resourceProfileId": "0",
        "--podName": "app-exec-3",
    }
    # An executor pod without its environment fails loudly, not with a Java stack trace.
    bad = podman_run(image, "executor", check=False)
    assert bad.returncode == 64
    assert "SPARK_DRIVER_URL" in bad.stderr


ROUNDTRIP = """
import json, sys
from pyspark.sql import SparkSession

table = sys.argv[1]
spark = SparkSession.builder.appName("image-roundtrip").getOrCreate()
spark.sql("CREATE NAMESPACE IF NOT EXISTS lakehouse.image_tests")
spark.sql(f"CREATE TABLE lakehouse.image_tests.{table} (id BIGINT, sku STRING) USING iceberg")
spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id BIGINT, sku STRING") \\
    .writeTo(f"lakehouse.image_tests.{table}").append()
rows = spark.table(f"lakehouse.image_tests.{table}").orderBy("id").collect()
# A Python UDF: executors' Python workers (pyarrow) from the image's venv.
n = spark.table(f"lakehouse.image_tests.{table}") \\
    .mapInArrow(lambda batches: batches, "id BIGINT, sku STRING").count()
print("RESULT " + json.dumps({"rows": [[r.id, r.sku] for r in rows], "arrow_rows": n,
                              "version": spark.version}))
spark.stop()
"""


def _properties(conf: dict[str, str]) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n")

    return "".join(f"{k}={esc(v)}\n" for k, v in sorted(conf.items()))


def test_iceberg_roundtrip_on_s3_as_a_kubernetes_driver(
    image: str, data_services: Any, tmp_path: Path
) -> None:
    from orders_contract.catalog import pyiceberg_properties, spark_conf

    config = data_services.catalog_config()
    assert config.name == "lakehouse"
    conf = {
        "spark.master": "local[2]",
        "spark.app.name": "image-roundtrip",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        **spark_conf(config),
    }
    job = tmp_path / "job"
    job.mkdir()
    (job / "roundtrip.py").write_text(ROUNDTRIP)
    (job / "spark.properties").write_text(_properties(conf))
    job.chmod(0o755)
    for f in job.iterdir():
        f.chmod(0o644)
    table = f"t_{uuid.uuid4().hex[:8]}"
    # What a driver pod gets: `driver --properties-file ... --class PythonRunner local://...`.
    proc = podman_run(
        image,
        "driver",
        "--properties-file",
        "/job/spark.properties",
        "--class",
        "org.apache.spark.deploy.PythonRunner",
        "local:///job/roundtrip.py",
        table,
        opts=(
            "--network",
            "host",
            "-v",
            f"{job}:/job:ro",
            "-e",
            "SPARK_DRIVER_BIND_ADDRESS=127.0.0.1",
        ),
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]  # noqa: PT018
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result == {
        "rows": [[1, "a"], [2, "b"], [3, "c"]],
        "arrow_rows": 3,
        "version": lock_version("pyspark"),
    }
    # The table is really in the catalog and on S3: read it from here with pyiceberg.
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(config.name, **pyiceberg_properties(config))
    iceberg = catalog.load_table(f"image_tests.{table}")
    assert iceberg.location().startswith("s3://warehouse/")
    assert sorted(iceberg.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    catalog.drop_table(f"image_tests.{table}")
