"""Apache Kafka 4.x in KRaft mode, one combined broker/controller, from the Maven jars."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Iterable

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from localplatform import paths, procs
from localplatform.services.base import ServicesConfig

KAFKA_LIBS = paths.TOOLS_DIR / "kafka" / "libs"

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka.server.KafkaServer
logger.kafka.level = info
"""


class Kafka:
    name = "kafka"

    def __init__(self, config: ServicesConfig) -> None:
        self.port = config.ports.kafka
        self.controller_port = config.ports.kafka_controller
        self.dir = config.run_dir / "kafka"
        self.bootstrap = f"127.0.0.1:{self.port}"
        # Optional second listener for the real node's pods (ServicesConfig).
        self.pod_advertised = config.kafka_pod_advertised
        self.pod_port = paths.port("kafka_pod", 19094)
        java = shutil.which("java") or "java"
        self.proc = procs.Proc(
            self.name,
            [
                java,
                "-Xms256m",
                "-Xmx1g",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                "-cp",
                f"{KAFKA_LIBS}/*",
                "kafka.Kafka",
                self.dir / "server.properties",
            ],
            config.run_dir,
            ports=(self.port, self.controller_port)
            + ((self.pod_port,) if self.pod_advertised else ()),
        )

    def running(self) -> bool:
        return self.proc.running()

    def start(self, timeout: float = 90) -> None:
        if not KAFKA_LIBS.is_dir():
            raise FileNotFoundError(f"{KAFKA_LIBS} is missing: run `make tools`")
        self.format_storage()
        self.proc.start()
        self.proc.wait_healthy(self._ready, timeout)

    def stop(self) -> None:
        self.proc.stop(timeout=30)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topics(self, names: Iterable[str], partitions: int = 3) -> None:
        """Create topics through the admin API; existing ones are left as they are."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=10).topics)
        wanted = [
            NewTopic(n, num_partitions=partitions, replication_factor=1)
            for n in names
            if n not in existing
        ]
        if not wanted:
            return
        for future in admin.create_topics(wanted, operation_timeout=30).values():
            future.result()

    def _ready(self) -> bool:
        if not procs.tcp_open(self.port):  # before librdkafka logs refused connections
            return False
        metadata = self.admin().list_topics(timeout=2)
        return bool(metadata.brokers)

    def _pod_listener(self) -> dict[str, str]:
        if not self.pod_advertised:
            return {}
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port},POD://127.0.0.1:{self.pod_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"POD://{self.pod_advertised}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "POD:PLAINTEXT",
        }

    def format_storage(self, cluster_id: str | None = None) -> None:
        """Write server.properties and, on a new log dir, format it (KRaft needs an id)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.dir / "data"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(log_dir),
            **self._pod_listener(),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        (self.dir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.dir / "log4j2.properties").write_text(_LOG4J2)
        if (log_dir / "meta.properties").exists():
            return
        if cluster_id is None:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        procs.run_checked(
            "kafka storage format",
            [
                str(self.proc.argv[0]),
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                "-cp",
                f"{KAFKA_LIBS}/*",
                "kafka.tools.StorageTool",
                "format",
                # One argument: a random id may begin with "-", which the tool's argument
                # parser would read as an option ("--cluster-id: expected one argument").
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.dir / "server.properties"),
            ],
        )
