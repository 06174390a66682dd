"""Where the job lives and how it is shipped (as spark-submit --py-files does)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from localplatform import paths

SPARK_JOBS = paths.REPO_ROOT / "spark-jobs"


def job_zip(directory: Path) -> Path:
    """spark-jobs/orders_cdc as a zip, the way --py-files ships it."""
    target = directory / "orders_cdc.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for source in sorted((SPARK_JOBS / "orders_cdc").glob("*.py")):
            archive.write(source, f"orders_cdc/{source.name}")
    return target
