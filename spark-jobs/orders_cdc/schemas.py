"""Explicit schemas: the data contract's rows (DESIGN.md, "The data contract") and our tables.

Events are Debezium JSON envelopes without embedded schema, `decimal.handling.mode=string`,
timestamptz as ISO-8601 UTC. Every field listed in `ROW_FIELDS` is required and non-null
in `after` (c/u/r); a `d` needs `before.id` only (REPLICA IDENTITY DEFAULT gives the key).
Fields not listed (a column added upstream) are ignored by silver and kept in bronze's raw
`value` JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

# The tables, and which topic carries which (orders_contract.topics.table_for_topic).
from orders_contract.topics import TABLES as TABLES

OPS = ("c", "u", "d", "r")
ORDER_STATUSES = ("pending", "paid", "shipped", "cancelled", "refunded")
#: Statuses counted by gold.daily_revenue.
REVENUE_STATUSES = ("paid", "shipped")


@dataclass(frozen=True)
class Field:
    name: str
    #: Contract type: long (int64), int (int32), string, timestamp (ISO-8601 with offset,
    #: stored as UTC), decimal (string, at most 16 integer and 2 fraction digits),
    #: status (one of ORDER_STATUSES), country (ISO-3166 alpha-2 shape: two capitals).
    kind: str

    @property
    def spark_type(self) -> str:
        return {
            "long": "BIGINT",
            "int": "INT",
            "string": "STRING",
            "timestamp": "TIMESTAMP",
            "decimal": "DECIMAL(18,2)",
            "status": "STRING",
            "country": "STRING",
        }[self.kind]


ROW_FIELDS: dict[str, tuple[Field, ...]] = {
    "customers": (
        Field("id", "long"),
        Field("email", "string"),
        Field("country", "country"),
        Field("created_at", "timestamp"),
    ),
    "orders": (
        Field("id", "long"),
        Field("customer_id", "long"),
        Field("status", "status"),
        Field("currency", "string"),
        Field("created_at", "timestamp"),
        Field("updated_at", "timestamp"),
    ),
    "line_items": (
        Field("id", "long"),
        Field("order_id", "long"),
        Field("sku", "string"),
        Field("quantity", "int"),
        Field("unit_price", "decimal"),
    ),
}

#: Quarantine reasons (codes; `detail` says which field and why).
REASONS = (
    "invalid_json",  # value is not UTF-8 JSON
    "invalid_envelope",  # JSON but not an object, or before/after/source not objects
    "unknown_op",  # op missing from c/u/d/r
    "missing_field",  # a required envelope or row field is absent or null
    "wrong_type",  # a field has the wrong JSON type or is out of its integer range
    "invalid_value",  # right type, bad value (timestamp, decimal, status, country)
    "null_after",  # c/u/r with after null
    "null_before",  # d with before null
    "too_large",  # value over MAX_VALUE_BYTES (kept whole in the quarantine, never parsed)
)

#: The largest message value parsed. A row of these tables is well under 1 KiB, so a
#: value over Kafka's default max.message.bytes (1 MiB) cannot be a valid event: it is
#: quarantined without being decoded, so a hostile one costs no parse memory.
MAX_VALUE_BYTES = 1024 * 1024

# ---- the columns the parse step produces (mapInArrow output), per table --------------

#: Event columns shared by every table (Kafka coordinates, envelope, outcome).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "long"),
    ("kafka_timestamp_ms", "long"),
    ("key", "string"),
    ("value", "binary"),
    ("kind", "string"),  # event | tombstone | quarantine
    ("reason", "string"),
    ("detail", "string"),
    ("op", "string"),
    ("lsn", "long"),
    ("tx_id", "long"),
    ("source_ts_ms", "long"),
    ("ts_ms", "long"),
)


def parsed_row_columns(table: str) -> tuple[tuple[str, str], ...]:
    """Row columns as produced by parsing: timestamps as UTC micros, decimals as strings."""
    kinds = {
        "long": "long",
        "int": "int",
        "timestamp": "long",
        "decimal": "string",
        "string": "string",
        "status": "string",
        "country": "string",
    }
    return tuple((f"row_{f.name}", kinds[f.kind]) for f in ROW_FIELDS[table])


def parsed_ddl(table: str) -> str:
    """The Spark DDL schema of the parse step's output for `table`."""
    cols = EVENT_COLUMNS + parsed_row_columns(table)
    return ", ".join(f"`{name}` {kind}" for name, kind in cols)


# ---- table DDL ------------------------------------------------------------------------

BRONZE_COLUMNS = """
    batch_id STRING NOT NULL,
    topic STRING NOT NULL,
    `partition` INT NOT NULL,
    `offset` BIGINT NOT NULL,
    kafka_timestamp TIMESTAMP,
    key STRING,
    op STRING NOT NULL,
    lsn BIGINT NOT NULL,
    tx_id BIGINT,
    source_ts_ms BIGINT,
    ts_ms BIGINT,
    id BIGINT NOT NULL,
    value STRING NOT NULL
"""

QUARANTINE_COLUMNS = """
    batch_id STRING NOT NULL,
    topic STRING NOT NULL,
    `partition` INT NOT NULL,
    `offset` BIGINT NOT NULL,
    kafka_timestamp TIMESTAMP,
    key STRING,
    value BINARY,
    reason STRING NOT NULL,
    detail STRING
"""


def silver_columns(table: str) -> str:
    """Silver: one row per key; deleted keys stay as tombstones (is_deleted, lsn kept)."""
    fields = [f"{f.name} {f.spark_type}" for f in ROW_FIELDS[table] if f.name != "id"]
    return ",\n    ".join(
        [
            "id BIGINT NOT NULL",
            *fields,
            "is_deleted BOOLEAN NOT NULL",
            "lsn BIGINT NOT NULL",
            "op STRING NOT NULL",
            "source_ts_ms BIGINT",
            "batch_id STRING NOT NULL",
        ]
    )


GOLD_DAILY_REVENUE_COLUMNS = """
    date DATE NOT NULL,
    revenue DECIMAL(18,2) NOT NULL,
    orders BIGINT NOT NULL,
    items BIGINT NOT NULL,
    customers BIGINT NOT NULL
"""
