"""The local data services: Postgres, Redis, Kafka (KRaft), an S3 server; ClickHouse via chdb.

    python -m localplatform.services up | down | status

Everything listens on 127.0.0.1 (ports in base.ServicePorts), keeps data and logs under
.run/services, and is stopped by PID. `up` is idempotent and serialised by a lock.
Spark and chdb are libraries, not servers: see orders_contract.catalog for the Spark conf.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localplatform import procs
from localplatform.services.base import Credentials, ServicesConfig
from localplatform.services.kafka import Kafka
from localplatform.services.postgres import Postgres
from localplatform.services.redis import Redis
from localplatform.services.s3 import S3
from orders_contract.catalog import CatalogConfig, S3Config
from orders_contract.topics import DEFAULT_TOPICS

#: The data contract's Debezium topics (DESIGN.md), created at start-up.
CDC_TOPICS = tuple(DEFAULT_TOPICS.values())
#: Buckets: the Iceberg warehouse, consume staging, Airflow's XCom objects and logs.
BUCKETS = ("warehouse", "staging", "airflow")
#: The Iceberg catalog name Spark and pyiceberg share (rows in the JDBC catalog carry it).
ICEBERG_CATALOG = "lakehouse"


@dataclass
class ServiceTiming:
    name: str
    seconds: float


class LocalServices:
    """The data services of the local platform, with their endpoints."""

    def __init__(self, config: ServicesConfig | None = None) -> None:
        self.config = config or ServicesConfig()
        self.run_dir = self.config.run_dir
        self.credentials = Credentials(self.run_dir)
        self.postgres = Postgres(self.config, self.credentials)
        self.redis = Redis(self.config, self.credentials)
        self.kafka = Kafka(self.config)
        self.s3 = S3(self.config, self.credentials)
        self.chdb_path = self.run_dir / "clickhouse"

    @property
    def all(self) -> list[Postgres | Redis | Kafka | S3]:
        return [self.postgres, self.redis, self.kafka, self.s3]

    def up(self) -> list[ServiceTiming]:
        """Start every service that is not running; returns the time each took."""
        timings = []
        with procs.file_lock(self.run_dir / "lock"):
            steps: list[tuple[str, Callable[[], None]]] = [
                ("postgres", self.postgres.start),
                ("redis", self.redis.start),
                ("s3", self._start_s3),
                ("kafka", self._start_kafka),
            ]
            for name, step in steps:
                started = time.monotonic()
                step()
                timings.append(ServiceTiming(name, time.monotonic() - started))
            self.chdb_path.mkdir(parents=True, exist_ok=True)
            self._write_endpoints()
        return timings

    def down(self, wipe: bool = True) -> None:
        """Stop every service by PID (reverse order); wipe their data unless asked not to."""
        with procs.file_lock(self.run_dir / "lock"):
            for service in reversed(self.all):
                service.stop()
            if wipe:
                for sub in ("postgres", "redis", "kafka", "s3", "clickhouse"):
                    shutil.rmtree(self.run_dir / sub, ignore_errors=True)

    def is_up(self) -> bool:
        return all(service.running() for service in self.all)

    def endpoints(self) -> dict[str, Any]:
        """How clients reach each service (contains passwords: the file is 0600)."""
        return {
            "postgres": {
                "airflow_url": self.postgres.url("airflow"),
                "iceberg_url": self.postgres.url("iceberg"),
            },
            "redis": {"url": self.redis.url()},
            "kafka": {"bootstrap_servers": self.kafka.bootstrap, "topics": list(CDC_TOPICS)},
            "s3": {
                "endpoint": self.s3.endpoint,
                "access_key": self.s3.access_key,
                "secret_key": self.s3.secret_key,
                "buckets": list(BUCKETS),
            },
            "iceberg": {
                "catalog": ICEBERG_CATALOG,
                "warehouse": "s3://warehouse/",
                "jdbc_url": f"jdbc:postgresql://127.0.0.1:{self.postgres.port}/iceberg",
            },
            "clickhouse": {"dsn": f"chdb://{self.chdb_path}"},
        }

    def catalog_config(self) -> CatalogConfig:
        """The Iceberg JDBC catalog on this Postgres, warehouse on this S3 server."""
        return CatalogConfig(
            name=ICEBERG_CATALOG,
            type="jdbc",
            uri=f"jdbc:postgresql://127.0.0.1:{self.postgres.port}/iceberg",
            warehouse="s3://warehouse/",
            jdbc_user="iceberg",
            jdbc_password=self.credentials["iceberg_db"],
            s3=S3Config(
                endpoint=self.s3.endpoint,
                path_style=True,
                access_key_id=self.s3.access_key,
                secret_access_key=self.s3.secret_key,
            ),
        )

    def status(self) -> str:
        lines = [f"state: {self.run_dir}"]
        for service in self.all:
            pid = service.proc.pid()
            ports = ",".join(str(p) for p in service.proc.ports)
            lines.append(
                f"  {service.name:<10} 127.0.0.1:{ports:<12} "
                f"{'pid ' + str(pid) if pid else 'stopped'}"
            )
        lines.append(f"  {'clickhouse':<10} chdb (in-process) at {self.chdb_path}")
        return "\n".join(lines)

    def _start_s3(self) -> None:
        self.s3.start()
        self.s3.ensure_buckets(BUCKETS)

    def _start_kafka(self) -> None:
        self.kafka.start()
        self.kafka.create_topics(CDC_TOPICS, partitions=3)

    def _write_endpoints(self) -> None:
        path: Path = self.run_dir / "endpoints.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(self.endpoints(), indent=2))
