"""What staging forces on every Kafka consumer it reads with, whatever the connection says.

Kept apart from the hook (orders_etl.hooks.kafka_staging, which imports Airflow) so that
code outside Airflow, such as the benchmarks' consumers, builds the same consumer without
importing Airflow (about 2 s of CPU per process here).
"""

from __future__ import annotations

from typing import Any

#: Offsets are committed by the stager after the manifest is in place, never
#: automatically, and only committed transactions are read.
STAGING_CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
}
