"""The data contract's tables and the Debezium topics that feed them.

Debezium names a table's topic `<topic.prefix>.<schema>.<table>` (DESIGN.md, "The data
contract"). The prefix and schema are the deployment's (`kafka.topics` in the pipeline
config); the table, the last dot-separated part, is the contract's. Both runtimes map a
topic to its table here: the Airflow side when it validates its config, the Spark job when
it reads a manifest, so renaming the topics in the config is all a deployment does.
"""

from __future__ import annotations

#: The source tables, in the order the Spark job processes them.
TABLES: tuple[str, ...] = ("orders", "line_items", "customers")

#: The topics of the reference deployment (Debezium prefix `orders`, schema `public`).
DEFAULT_TOPICS: dict[str, str] = {table: f"orders.public.{table}" for table in TABLES}


class UnknownTopicError(ValueError):
    """A topic whose last dot-separated part is not one of the contract's tables."""


def table_for_topic(topic: str) -> str:
    """The contract table a Debezium topic carries (`<prefix>.<schema>.<table>`)."""
    table = topic.rsplit(".", 1)[-1]
    if table not in TABLES:
        raise UnknownTopicError(
            f"topic {topic!r} does not carry a table of the data contract: its last "
            f"dot-separated part must be one of {', '.join(TABLES)}"
        )
    return table


def tables_for_topics(topics: list[str] | tuple[str, ...]) -> dict[str, str]:
    """table -> topic for a deployment's topic list: exactly one topic per table."""
    by_table: dict[str, str] = {}
    for topic in topics:
        table = table_for_topic(topic)
        if table in by_table:
            raise UnknownTopicError(
                f"topics {by_table[table]!r} and {topic!r} both carry table {table!r}"
            )
        by_table[table] = topic
    missing = [t for t in TABLES if t not in by_table]
    if missing:
        raise UnknownTopicError(f"no topic carries table(s) {', '.join(missing)}")
    return {table: by_table[table] for table in TABLES}
