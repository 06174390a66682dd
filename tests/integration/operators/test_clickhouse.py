"""GoldToClickHouseOperator end to end: gold in Iceberg (local catalog + S3) -> chdb."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DateType, DecimalType, LongType, NestedField

from localplatform.services import LocalServices
from orders_contract.catalog import pyiceberg_properties
from orders_etl.clickhouse_load import ensure_table, replace_partitions
from orders_etl.operators.clickhouse import GoldToClickHouseOperator

pytestmark = pytest.mark.integration

CONN_ID = "clickhouse_operator_test"
D1, D2, D3, D4 = (dt.date(2026, 11, day) for day in (1, 2, 3, 4))
GOLD_SCHEMA = Schema(
    NestedField(1, "date", DateType(), required=True),
    NestedField(2, "revenue", DecimalType(18, 2), required=True),
    NestedField(3, "orders", LongType(), required=True),
    NestedField(4, "items", LongType(), required=True),
    NestedField(5, "customers", LongType(), required=True),
)
ARROW_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("revenue", pa.decimal128(18, 2), nullable=False),
        pa.field("orders", pa.int64(), nullable=False),
        pa.field("items", pa.int64(), nullable=False),
        pa.field("customers", pa.int64(), nullable=False),
    ]
)


@pytest.fixture(scope="module")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("chdb-operator")
    return f"chdb://{path}"


@pytest.fixture
def clickhouse_conn(chdb_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # Resolved by Airflow's env-var secrets backend, as a deployment's Secret would be.
    conn = {"conn_type": "clickhouse", "extra": {"dsn": chdb_dsn}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return CONN_ID


@pytest.fixture
def gold_catalog(data_services: LocalServices) -> Iterator[tuple[Catalog, dict[str, str], str]]:
    config = data_services.catalog_config()
    props = pyiceberg_properties(config)
    catalog = load_catalog(config.name, **props)
    namespace = f"gold_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    table = catalog.create_table(
        f"{namespace}.daily_revenue",
        schema=GOLD_SCHEMA,
        partition_spec=PartitionSpec(
            PartitionField(source_id=1, field_id=1000, transform=IdentityTransform(), name="date")
        ),
    )
    table.append(
        pa.Table.from_pylist(
            [
                # 11-01 is NOT touched by this run: its (different) gold row must not load.
                {"date": D1, "revenue": Decimal("11.00"), "orders": 9, "items": 9, "customers": 9},
                {"date": D2, "revenue": Decimal("99.99"), "orders": 7, "items": 8, "customers": 5},
                {"date": D4, "revenue": Decimal("30.25"), "orders": 3, "items": 4, "customers": 3},
            ],
            schema=ARROW_SCHEMA,
        )
    )
    yield catalog, props, namespace
    catalog.drop_table(f"{namespace}.daily_revenue")
    catalog.drop_namespace(namespace)


def dashboard(dsn: str, database: str) -> list[tuple[Any, ...]]:
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        rows = client.query(
            f"SELECT date, revenue, orders, items, customers FROM {database}.daily_revenue "
            "ORDER BY date"
        ).result_rows
    finally:
        client.close()
    return [tuple(row) for row in rows]


def test_operator_loads_exactly_the_touched_dates(
    gold_catalog: tuple[Catalog, dict[str, str], str], clickhouse_conn: str, chdb_dsn: str
) -> None:
    catalog, props, namespace = gold_catalog
    database = f"dash_{uuid.uuid4().hex[:8]}"
    operator = GoldToClickHouseOperator(
        task_id="load_clickhouse",
        # As rendered from a Jinja template (a string), the XCom list works the same.
        touched_dates="['2026-11-02', '2026-11-03', '2026-11-04']",
        iceberg_catalog=catalog.name,
        gold_table=f"{namespace}.daily_revenue",
        clickhouse_conn_id=clickhouse_conn,
        database=database,
        table="daily_revenue",
        catalog_properties=props,
    )
    # The dashboard already holds an earlier state of 11-01 .. 11-03.
    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    try:
        ensure_table(client, database, "daily_revenue")
        replace_partitions(
            client,
            database,
            "daily_revenue",
            [
                {"date": d, "revenue": Decimal("1.00"), "orders": 1, "items": 1, "customers": 1}
                for d in (D1, D2, D3)
            ],
            [D1, D2, D3],
        )
    finally:
        client.close()

    result = operator.execute(context={})  # type: ignore[arg-type]

    expected = [
        (D1, Decimal("1.00"), 1, 1, 1),  # untouched: the old row stays
        (D2, Decimal("99.99"), 7, 8, 5),  # replaced from gold
        (D4, Decimal("30.25"), 3, 4, 3),  # new from gold; 11-03 has no gold row: removed
    ]
    assert dashboard(chdb_dsn, database) == expected
    assert result == {
        "rows_written": 2,
        "partitions_replaced": 2,
        "partitions_dropped": 1,
        "dates_touched": 3,
    }
    assert len(json.dumps(result)) < 200, "the XCom stays small"

    rerun = operator.execute(context={})  # type: ignore[arg-type]
    assert dashboard(chdb_dsn, database) == expected
    assert rerun["partitions_dropped"] == 0
    assert rerun["rows_written"] == 2


def test_operator_with_no_touched_dates_does_nothing(clickhouse_conn: str) -> None:
    operator = GoldToClickHouseOperator(
        task_id="load_clickhouse",
        touched_dates=[],
        iceberg_catalog="lakehouse",
        gold_table="gold.daily_revenue",
        clickhouse_conn_id=clickhouse_conn,
        database="dashboards",
        table="daily_revenue",
    )
    assert operator.execute(context={}) == {  # type: ignore[arg-type]
        "rows_written": 0,
        "partitions_replaced": 0,
        "partitions_dropped": 0,
        "dates_touched": 0,
    }


def test_operator_refuses_a_hostile_table_name() -> None:
    with pytest.raises(ValueError, match="refusing ClickHouse table"):
        GoldToClickHouseOperator(
            task_id="load_clickhouse",
            touched_dates=[],
            iceberg_catalog="lakehouse",
            gold_table="gold.daily_revenue",
            database="dashboards",
            table="daily_revenue; DROP TABLE x",
        )


def test_operator_opens_the_catalog_file_with_its_login_from_the_environment(
    gold_catalog: tuple[Catalog, dict[str, str], str],
    clickhouse_conn: str,
    chdb_dsn: str,
    data_services: LocalServices,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the chart runs it: iceberg-catalog.json holds no credential; the catalog's login
    (spark.catalog.existingSecret) and the S3 keys (s3.existingSecret) are env vars."""
    _, _, namespace = gold_catalog
    config = data_services.catalog_config()
    described = tmp_path / "iceberg-catalog.json"
    described.write_text(json.dumps(config.to_dict()))
    assert config.jdbc_password is not None
    assert config.jdbc_password not in described.read_text()
    monkeypatch.setenv("ICEBERG_JDBC_USER", config.jdbc_user or "")
    monkeypatch.setenv("ICEBERG_JDBC_PASSWORD", config.jdbc_password)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", data_services.s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", data_services.s3.secret_key)
    database = f"dash_{uuid.uuid4().hex[:8]}"

    def operator(catalog_name: str) -> GoldToClickHouseOperator:
        return GoldToClickHouseOperator(
            task_id="load_clickhouse",
            touched_dates=["2026-11-02", "2026-11-04"],
            iceberg_catalog=catalog_name,
            catalog_file=str(described),
            gold_table=f"{namespace}.daily_revenue",
            clickhouse_conn_id=clickhouse_conn,
            database=database,
            table="daily_revenue",
        )

    result = operator(config.name).execute(context={})  # type: ignore[arg-type]
    assert result["rows_written"] == 2
    assert dashboard(chdb_dsn, database) == [
        (D2, Decimal("99.99"), 7, 8, 5),
        (D4, Decimal("30.25"), 3, 4, 3),
    ]
    with pytest.raises(ValueError, match="describes catalog 'lakehouse', the pipeline reads"):
        operator("other").execute(context={})  # type: ignore[arg-type]
