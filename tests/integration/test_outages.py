"""Kafka, the S3 server or the Kubernetes API server goes away for a while (issue: reliability).

The real servers are stopped and started again by PID through their own Proc objects
(localplatform.services / localplatform.cluster), in the middle of what the pipeline's
code is doing:

- Kafka down when consume starts: a stager whose budget the outage outlasts fails once,
  clearly, having claimed nothing; one whose budget covers the outage rides it out
  (librdkafka reconnects with backoff) and stages the exact range.
- S3 down in the middle of a staging write (after the ledger claim, before the Parquet
  upload): the attempt fails; the retry, once S3 is back, stages the very same offsets
  once.
- The API server restarted while a SparkApplication wait is deferred: the trigger backs
  off and resumes when the API answers again; a trigger whose error budget is smaller
  than the outage ends with one clear "error" event instead of hanging.

Each test restarts what it stopped, even when it fails, so later tests find the servers up.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer

from localplatform.cluster import Cluster
from localplatform.services import LocalServices
from orders_contract.sparkapplication import GROUP, VERSION
from orders_contract.staging import Manifest, StagingError, StagingLocation
from orders_etl.staging.stager import TopicStager
from orders_etl.triggers.sparkapplication import SparkApplicationTrigger

sys.path.insert(0, str(Path(__file__).parent))
from sparkapp_status import set_state

pytestmark = pytest.mark.integration

GROUP_ID = "orders-etl-outage-test"


# -- Kafka and S3 ------------------------------------------------------------------------
@pytest.fixture
def topic(data_services: LocalServices) -> str:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    data_services.kafka.create_topics([name], partitions=3)
    producer = Producer({"bootstrap.servers": data_services.kafka.bootstrap, "linger.ms": 5})
    for i in range(300):
        producer.produce(name, key=f'{{"id": {i}}}'.encode(), value=f'{{"n": {i}}}'.encode())
    assert producer.flush(30) == 0
    return name


@pytest.fixture
def location() -> StagingLocation:
    return StagingLocation(bucket="staging", prefix=f"outage-{uuid.uuid4().hex[:8]}")


def consumer_for(services: LocalServices) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": services.kafka.bootstrap,
            "group.id": GROUP_ID,
            "enable.auto.commit": False,
        }
    )


def stager(
    services: LocalServices,
    location: StagingLocation,
    timeout: float,
    consumer: Any = None,
) -> TopicStager:
    return TopicStager(
        consumer or (lambda: consumer_for(services)),
        services.s3.client(),
        location,
        group_id=GROUP_ID,
        timeout=timeout,
    )


def ledger_claims(services: LocalServices, location: StagingLocation, topic: str) -> list[Any]:
    s3 = services.s3.client()
    prefix = f"{location.prefix}/_ledger/topic={topic}/"
    listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=prefix).get("Contents", [])
    return [
        json.loads(s3.get_object(Bucket=location.bucket, Key=o["Key"])["Body"].read())
        for o in listed
    ]


def staged_offsets(services: LocalServices, manifest: Manifest) -> dict[int, list[int]]:
    s3 = services.s3.client()
    offsets: dict[int, list[int]] = {}
    for part in manifest.partitions:
        if part.object is None:
            continue
        bucket, key = part.object.removeprefix("s3://").split("/", 1)
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        offsets[part.partition] = table["offset"].to_pylist()
    return offsets


def assert_exact(services: LocalServices, manifest: Manifest, rows: int) -> None:
    assert manifest.rows == rows
    for partition, offsets in staged_offsets(services, manifest).items():
        part = manifest.partitions[partition]
        assert offsets == list(range(part.start_offset, part.end_offset)), partition


@pytest.fixture
def kafka_restarted(data_services: LocalServices) -> Iterator[None]:
    yield
    if not data_services.kafka.running():
        data_services.kafka.start()


def test_consume_fails_clearly_or_rides_out_a_kafka_outage(
    data_services: LocalServices, topic: str, location: StagingLocation, kafka_restarted: None
) -> None:
    kafka = data_services.kafka
    kafka.stop()

    started = time.monotonic()
    with pytest.raises(StagingError, match=r"Kafka .* not reachable"):
        stager(data_services, location, timeout=5).stage("run-short-budget", topic)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"one failure after the 5 s budget, not a hang ({elapsed:.0f} s)"
    assert ledger_claims(data_services, location, topic) == [], "nothing may be claimed"

    result: dict[str, Manifest | Exception] = {}

    def stage() -> None:
        try:
            result["manifest"] = stager(data_services, location, timeout=180).stage("run-1", topic)
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=stage)
    thread.start()
    time.sleep(3)  # the stager is waiting on the dead broker...
    assert thread.is_alive()
    kafka.start()  # ...which comes back within its budget
    thread.join(240)
    assert "error" not in result, f"the stager did not ride out the outage: {result}"
    manifest = result["manifest"]
    assert isinstance(manifest, Manifest)
    assert_exact(data_services, manifest, 300)
    assert [c["batch_id"] for c in ledger_claims(data_services, location, topic)] == ["run-1"]


class StopsS3OnAssign:
    """A real Consumer; the first time staging assigns a partition to read (the claim is
    in the ledger, no Parquet object is written yet) the real S3 server is stopped."""

    def __init__(self, consumer: Consumer, services: LocalServices) -> None:
        self._consumer = consumer
        self._services = services

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    def assign(self, partitions: Any) -> None:
        if self._services.s3.running():
            self._services.s3.stop()
        self._consumer.assign(partitions)


def test_s3_down_mid_write_then_back_stages_the_same_offsets_once(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    s3_server = data_services.s3
    try:
        with pytest.raises(Exception, match=r"(?i)connect") as failure:
            stager(
                data_services,
                location,
                timeout=30,
                consumer=lambda: StopsS3OnAssign(consumer_for(data_services), data_services),
            ).stage("run-1", topic)
        assert not s3_server.running()
        print(f"\nwith S3 down: {type(failure.value).__name__}: {failure.value}")
    finally:
        if not s3_server.running():
            s3_server.start()

    claims = ledger_claims(data_services, location, topic)
    assert [c["batch_id"] for c in claims] == ["run-1"], "the claim precedes the outage"
    s3 = data_services.s3.client()
    manifest_key = location.manifest_key("run-1", topic)
    assert "Contents" not in s3.list_objects_v2(Bucket="staging", Prefix=manifest_key)

    producer = Producer({"bootstrap.servers": data_services.kafka.bootstrap})
    producer.produce(topic, key=b'{"id": 999}', value=b'{"n": 999}')  # after the claim:
    assert producer.flush(30) == 0  # not this batch's

    retried = stager(data_services, location, timeout=30).stage("run-1", topic)
    assert {str(p.partition): [p.start_offset, p.end_offset] for p in retried.partitions} == (
        claims[0]["ranges"]
    )
    assert_exact(data_services, retried, 300)
    listed = s3.list_objects_v2(Bucket="staging", Prefix=location.topic_prefix("run-1", topic))
    parquet = [o["Key"] for o in listed["Contents"] if o["Key"].endswith(".parquet")]
    assert len(parquet) == len([p for p in retried.partitions if p.object])


# -- the Kubernetes API server -----------------------------------------------------------
@pytest.fixture
def spark_namespace(local_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    local_cluster.apply_spark_crds()
    namespace = f"outage-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", namespace)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_OUTAGE_TEST",
        json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(local_cluster.kubeconfig)},
            }
        ),
    )
    yield namespace
    local_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_spark_wait_rides_out_an_apiserver_restart_or_fails_clearly(
    local_cluster: Cluster, spark_namespace: str
) -> None:
    name = "app-outage"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": spark_namespace},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "image": "orders-etl/spark:3.5.9",
            "sparkVersion": "3.5.9",
            "mainApplicationFile": "local:///opt/orders-etl/spark-jobs/main.py",
            "driver": {"cores": 1, "memory": "512m"},
            "executor": {"cores": 1, "instances": 1, "memory": "512m"},
        },
    }
    local_cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    set_state(local_cluster, spark_namespace, name, "RUNNING")
    apiserver = next(p for p in local_cluster.processes() if p.name == "kube-apiserver")

    def trigger(poll: float, max_api_errors: int) -> SparkApplicationTrigger:
        return SparkApplicationTrigger(
            name=name,
            namespace=spark_namespace,
            kubernetes_conn_id="kubernetes_outage_test",
            poll_interval=poll,
            timeout_at=time.time() + 600,
            max_api_errors=max_api_errors,
        )

    def restart() -> None:
        apiserver.start()
        apiserver.wait_healthy(lambda: local_cluster._get("/readyz") == "ok", 180)

    async def drive() -> tuple[dict[str, Any], dict[str, Any], float]:
        async def first(t: SparkApplicationTrigger) -> dict[str, Any]:
            return dict((await anext(t.run())).payload)

        # Budget of the patient one: 0.5 s x (2 + 4 + ... + 2**8) capped, ~4 min of errors.
        patient = asyncio.create_task(first(trigger(0.5, 8)))
        impatient = asyncio.create_task(first(trigger(0.2, 2)))  # ~1.2 s of errors
        await asyncio.sleep(2)
        assert not patient.done()  # both saw RUNNING
        assert not impatient.done()
        await asyncio.to_thread(apiserver.stop)
        down = time.monotonic()
        failed = await asyncio.wait_for(impatient, 60)
        await asyncio.to_thread(restart)
        outage = time.monotonic() - down
        await asyncio.to_thread(set_state, local_cluster, spark_namespace, name, "COMPLETED")
        succeeded = await asyncio.wait_for(patient, 300)
        return failed, succeeded, outage

    try:
        failed, succeeded, outage = asyncio.run(drive())
    finally:
        if not apiserver.running():
            restart()
    print(f"\nAPI server down for {outage:.1f} s")
    assert failed["status"] == "error"
    assert failed["state"] == "RUNNING"
    assert "Kubernetes API" in failed["message"]
    assert succeeded["status"] == "success", succeeded
    assert succeeded["state"] == "COMPLETED"
