"""A local SparkSession with the pinned Iceberg, S3 and JDBC jars (hack/maven/spark/pom.xml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from localplatform import paths
from spark_operator_standin.submit import LOCAL_JVM_OPTIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_JARS_DIR = paths.TOOLS_DIR / "spark-jars"


def spark_jars() -> list[Path]:
    jars = sorted(SPARK_JARS_DIR.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"no jars in {SPARK_JARS_DIR}: run `make tools`")
    return jars


def local_session(conf: dict[str, str], app_name: str = "orders-etl-local") -> SparkSession:
    """local[2] Spark with `conf` (e.g. orders_contract.catalog.spark_conf) and the pinned jars."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.jars", ",".join(str(j) for j in spark_jars()))
        .config("spark.driver.memory", "1g")
        .config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
