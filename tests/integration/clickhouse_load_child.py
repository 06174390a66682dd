"""A ClickHouse load in its own process, for test_clickhouse_load_faults (not a test module).

    python clickhouse_load_child.py load CHDB_DIR SPEC.json [--hold-before-switch]
                                     [--hold-after-switch] [--clean]
    python clickhouse_load_child.py dump CHDB_DIR

`load` does what GoldToClickHouseOperator.execute does (ensure_table, drop stale staging
tables older than 6 h, replace_partitions) on chdb files in CHDB_DIR, with the rows and
touched dates of SPEC.json. The statements run unchanged against the real engine; the
client is only watched: a line `BEFORE <verb>` / `AFTER <verb>` is printed around each
statement so the parent can SIGKILL this process at a point it can see, and the holds
block on stdin at the partition switch (the ALTER) so the kill cannot come too late.
Both print `DUMP <json>` last: the dashboard table and the database's tables; `--clean`
first drops every staging table however young (older_than=0).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect

from orders_etl.clickhouse_load import drop_stale_staging_tables, ensure_table, replace_partitions

DATABASE, TABLE = "dashboards", "daily_revenue"


class Watched:
    """The real client; each command() is announced on stdout, the switch can be held."""

    def __init__(self, client: Any, hold_before: bool, hold_after: bool) -> None:
        self._client = client
        self._hold_before = hold_before
        self._hold_after = hold_after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def command(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        verb = sql.split(None, 1)[0].upper()
        switch = sql.startswith("ALTER TABLE") and "PARTITION" in sql
        if switch and self._hold_before:
            print("HOLD before switch", flush=True)
            sys.stdin.readline()
        print(f"BEFORE {verb}", flush=True)
        result = self._client.command(sql, *args, **kwargs)
        print(f"AFTER {verb}", flush=True)
        if switch and self._hold_after:
            print("HOLD after switch", flush=True)
            sys.stdin.readline()
        return result


def dump(client: Any) -> dict[str, Any]:
    rows = client.query(
        f"SELECT date, revenue, orders, items, customers FROM {DATABASE}.{TABLE} ORDER BY date"
    ).result_rows
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = %(db)s ORDER BY name",
        parameters={"db": DATABASE},
    ).result_rows
    return {
        "rows": [[d.isoformat(), f"{r:.2f}", o, i, c] for d, r, o, i, c in rows],
        "tables": [name for (name,) in tables],
    }


def main(argv: list[str]) -> int:
    action, path = argv[0], argv[1]
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    try:
        if action == "load":
            spec = json.loads(Path(argv[2]).read_text())
            rows = [
                {
                    "date": dt.date.fromisoformat(r["date"]),
                    "revenue": Decimal(r["revenue"]),
                    "orders": r["orders"],
                    "items": r["items"],
                    "customers": r["customers"],
                }
                for r in spec["rows"]
            ]
            watched = Watched(client, "--hold-before-switch" in argv, "--hold-after-switch" in argv)
            ensure_table(client, DATABASE, TABLE)
            drop_stale_staging_tables(client, DATABASE, TABLE)
            result = replace_partitions(watched, DATABASE, TABLE, rows, spec["dates"])  # type: ignore[arg-type]
            print("RESULT " + json.dumps(result.as_dict()), flush=True)
            if "--clean" in argv:
                time.sleep(1.1)  # metadata_modification_time has one-second resolution
                drop_stale_staging_tables(client, DATABASE, TABLE, dt.timedelta(0))
        print("DUMP " + json.dumps(dump(client)), flush=True)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
