"""The pipeline's own asset URI schemes, registered with Airflow the way a provider's are.

Airflow normalizes an asset's URI, and the OpenLineage provider turns it into a dataset,
only through handlers that providers declare (`asset-uris` in their provider info,
orders_etl.provider). The
Kafka (`kafka://`) and S3 (`s3://`) assets are covered by the Kafka and Amazon
providers; the Iceberg and ClickHouse assets use schemes no installed provider knows, so
without this module OpenLineage silently left them out of every event. The package
declares itself a provider (entry point `apache_airflow_provider` in pyproject.toml) with
the two schemes:

    iceberg://<catalog>/<namespace>/<table>       -> namespace iceberg://<catalog>,
                                                     name <namespace>.<table>
    clickhouse://<connection>/<database>/<table>  -> namespace clickhouse://<connection>,
                                                     name <database>.<table>

The authority is the name the pipeline config gives the catalog or connection, as the
Kafka provider's converter uses the connection id: stable across environments, so the
lineage graph of staging and production has the same nodes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.sdk import Asset

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _parts(uri: SplitResult) -> tuple[str, str, str]:
    """(authority, container, table) of `scheme://authority/container/table`."""
    path = uri.path.strip("/").split("/")
    if len(path) != 2 or not all(_PART.match(p) for p in (uri.netloc, *path)):
        raise ValueError(
            f"{uri.scheme} asset URI must be {uri.scheme}://<name>/<namespace>/<table>, "
            f"got {uri.geturl()!r}"
        )
    return uri.netloc, path[0], path[1]


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI normalizer for the two schemes: the shape is checked, nothing else."""
    if uri.query or uri.fragment:
        raise ValueError(f"{uri.scheme} asset URI takes no query or fragment: {uri.geturl()!r}")
    _parts(uri)
    return uri


def to_openlineage(asset: Asset, lineage_context: Any = None) -> Dataset:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parsed = urlsplit(asset.uri)
    authority, container, table = _parts(parsed)
    return Dataset(namespace=f"{parsed.scheme}://{authority}", name=f"{container}.{table}")
