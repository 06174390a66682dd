"""What every local data service shares: its run directory, ports and credentials."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from localplatform import paths


@dataclass(frozen=True)
class ServicePorts:
    """Loopback ports (see paths.port: LOCALPLATFORM_PORT_<NAME> / _OFFSET)."""

    postgres: int = paths.port_field("postgres", 15432)
    redis: int = paths.port_field("redis", 16379)
    kafka: int = paths.port_field("kafka", 19092)
    kafka_controller: int = paths.port_field("kafka_controller", 19093)
    s3: int = paths.port_field("s3", 19000)


@dataclass(frozen=True)
class ServicesConfig:
    run_dir: Path = paths.RUN_DIR / "services"
    ports: ServicePorts = field(default_factory=ServicePorts)
    #: host:port under which Kafka advertises a second listener for clients in the real
    #: node's pods (make e2e-node), e.g. kafka.data-services.svc.cluster.local:9092; the
    #: listener binds loopback (the node's forwarder relays to it). Empty: no such listener.
    kafka_pod_advertised: str = ""


class Credentials:
    """Passwords generated once per run directory, kept in a 0600 JSON file.

    Local servers still get real passwords: the pipeline reads them from its config the
    way it reads Kubernetes Secrets in a cluster, so no code path assumes "no auth".
    """

    NAMES = ("postgres", "airflow_db", "iceberg_db", "redis", "s3_secret")

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "credentials.json"
        run_dir.mkdir(parents=True, exist_ok=True)
        values: dict[str, str] = {}
        if self.path.exists():
            values = json.loads(self.path.read_text())
        missing = [n for n in self.NAMES if n not in values]
        if missing:
            values.update({n: secrets.token_urlsafe(18) for n in missing})
            self.path.touch(mode=0o600)
            self.path.write_text(json.dumps(values, indent=2))
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name]


class Service(Protocol):
    """A local server: started and stopped by PID, healthy before `start` returns."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def running(self) -> bool: ...
