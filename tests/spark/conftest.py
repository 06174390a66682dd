"""Fixtures for the Spark job's tests: one Spark session per module, the job on the path."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localplatform import paths

HERE = Path(__file__).parent
# The job package (spark-jobs/orders_cdc) and the test helpers (cdc_*.py), importable.
for entry in (paths.REPO_ROOT / "spark-jobs", HERE):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from cdc_jobfiles import job_zip  # noqa: E402


@pytest.fixture(scope="session")
def services(data_services: Any) -> Any:
    """The shared local data services (Postgres/JDBC catalog, S3)."""
    return data_services


@pytest.fixture(scope="module")
def spark(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from localplatform.spark import local_session
    from orders_contract.catalog import spark_conf

    # Python workers (mapInArrow) must run this venv's interpreter (pyarrow, boto3).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = local_session(spark_conf(services.catalog_config()), "orders-cdc-tests")
    session.sparkContext.addPyFile(str(job_zip(tmp_path_factory.mktemp("job"))))
    yield session
    session.stop()
    # py4j closes its gateway connection in __del__ at interpreter exit and logs that at
    # INFO, to a stream pytest has closed by then ("--- Logging error ---" in CI logs).
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
