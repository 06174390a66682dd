"""Creates this run's SparkApplication and defers until the spark-operator finishes it.

The Kubernetes clients (kubernetes, kubernetes_asyncio via the trigger) and S3 are imported where
they are used: every DAG parse imports this module, and they were most of its parse time
(bench/parse.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from orders_contract.catalog import load_catalog_file, spark_conf
from orders_contract.metrics import JobMetrics
from orders_contract.sparkapplication import GROUP, PLURAL, VERSION
from orders_etl.sparkapp import (
    COMPLETED,
    FAILED,
    LABEL_DAG,
    LABEL_RUN,
    LABEL_TRY,
    application_name,
    application_state,
    render_application,
    run_hash,
)

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook


class SparkApplicationOperator(BaseOperator):
    """Submit a SparkApplication built from a template, wait in the triggerer, return metrics.

    - The name is deterministic per run and try. If it already exists (the worker died
      after creating it) it is adopted in whatever state the spark-operator left it
      (SUBMISSION_FAILED and FAILING too: the operator retries or fails them), a
      COMPLETED one is taken as done, a FAILED one is replaced.
    - A retry creates a fresh application (new try number) and deletes the applications of
      earlier tries of the same run, so nothing stale keeps running or piles up.
    - The wait happens in the triggerer (`SparkApplicationTrigger`); the task fails with
      the spark-operator's errorMessage when the application fails, and after
      `stall_timeout` seconds in UNKNOWN / SUSPENDING / SUSPENDED in a row.
    - The job's metrics JSON (written by the job to `metrics_uri`) is read and returned:
      the numbers downstream tasks report are the job's own.

    :param template_path: YAML file with a SparkApplication (the chart's ConfigMap).
    :param arguments: appended to `spec.arguments` (templated).
    :param metrics_uri: s3:// URI of the job's metrics JSON (templated).
    :param catalog_file: the Iceberg catalog as data (orders_contract.catalog, the chart's
        iceberg-catalog.json): its Spark settings are added under the template's sparkConf.
        None: the template's sparkConf as it is.
    :param watch: wait through the namespace's shared watch (triggers.sparkapplication_watch)
        instead of a GET every `poll_interval`.
    """

    template_fields: Sequence[str] = ("arguments", "metrics_uri", "namespace")

    def __init__(
        self,
        *,
        template_path: str | Path,
        namespace: str,
        arguments: list[str],
        metrics_uri: str,
        catalog_file: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        aws_conn_id: str | None = "aws_default",
        poll_interval: float = 10.0,
        watch: bool = False,
        wait_timeout: float = 3600.0,
        stall_timeout: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template_path = str(template_path)
        self.namespace = namespace
        self.arguments = arguments
        self.metrics_uri = metrics_uri
        self.catalog_file = catalog_file
        self.kubernetes_conn_id = kubernetes_conn_id
        self.aws_conn_id = aws_conn_id
        self.poll_interval = poll_interval
        self.watch = watch
        self.wait_timeout = wait_timeout
        self.stall_timeout = stall_timeout

    # -- helpers --------------------------------------------------------------------------
    @cached_property
    def hook(self) -> KubernetesHook:
        """One hook (and its API client) per task attempt, as the providers' operators do."""
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(conn_id=self.kubernetes_conn_id)

    def _labels(self, context: Any) -> dict[str, str]:
        ti = context["ti"]
        return {
            "app.kubernetes.io/managed-by": "airflow",
            LABEL_DAG: ti.dag_id[:63],
            LABEL_RUN: run_hash(ti.dag_id, ti.run_id),
            LABEL_TRY: str(ti.try_number),
        }

    def _get(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.hook.get_custom_object(
                group=GROUP, version=VERSION, plural=PLURAL, name=name, namespace=self.namespace
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj

    def _delete(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.hook.delete_custom_object(
                group=GROUP, version=VERSION, plural=PLURAL, name=name, namespace=self.namespace
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def _delete_earlier_tries(self, labels: dict[str, str]) -> None:
        listed = self.hook.custom_object_client.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            label_selector=f"{LABEL_RUN}={labels[LABEL_RUN]}",
        )
        for item in listed.get("items", []):
            item_try = int(item["metadata"].get("labels", {}).get(LABEL_TRY, "0"))
            if item_try < int(labels[LABEL_TRY]):
                self.log.info("Deleting %s from try %d", item["metadata"]["name"], item_try)
                self._delete(item["metadata"]["name"])

    # -- execution ------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        from orders_etl.triggers.sparkapplication import SparkApplicationTrigger

        ti = context["ti"]
        labels = self._labels(context)
        name = application_name(ti.dag_id, ti.run_id, ti.try_number)
        template = yaml.safe_load(Path(self.template_path).read_text())
        catalog_conf = None
        if self.catalog_file:  # no credential in it: the driver reads its login from env
            catalog_conf = spark_conf(load_catalog_file(self.catalog_file))
        body = render_application(
            template,
            name=name,
            namespace=self.namespace,
            arguments=[str(a) for a in self.arguments],
            labels=labels,
            spark_conf=catalog_conf,
        )
        self._delete_earlier_tries(labels)
        ti.xcom_push(key="application_name", value=name)
        self._application_name = name
        try:
            self.hook.create_custom_object(
                group=GROUP, version=VERSION, plural=PLURAL, body=body, namespace=self.namespace
            )
            self.log.info("Created SparkApplication %s/%s", self.namespace, name)
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self._get(name) or {}
            state, _ = application_state(existing)
            if state == COMPLETED:
                self.log.info("SparkApplication %s already COMPLETED; adopting it", name)
                return self.execute_complete(
                    context,
                    {
                        "status": "success",
                        "name": name,
                        "namespace": self.namespace,
                        "state": state,
                        "message": "",
                    },
                )
            if state == FAILED:
                self.log.info("SparkApplication %s is %s; replacing it", name, state)
                self._delete(name)
                self._wait_deleted(name)
                self.hook.create_custom_object(
                    group=GROUP, version=VERSION, plural=PLURAL, body=body, namespace=self.namespace
                )
            else:
                self.log.info(
                    "SparkApplication %s exists (%s); adopting it", name, state or "no status yet"
                )
        self.defer(
            trigger=SparkApplicationTrigger(
                name=name,
                namespace=self.namespace,
                kubernetes_conn_id=self.kubernetes_conn_id,
                poll_interval=self.poll_interval,
                watch=self.watch,
                timeout_at=time.time() + self.wait_timeout,
                stall_timeout=self.stall_timeout,
            ),
            method_name="execute_complete",
        )
        return None  # not reached: defer() raises

    def _wait_deleted(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self._get(name) is not None:
            if time.monotonic() > deadline:
                raise AirflowException(f"SparkApplication {name} was not deleted in {timeout} s")
            time.sleep(1)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        name = event["name"]
        if event["status"] != "success":
            raise AirflowException(
                f"SparkApplication {event['namespace']}/{name} {event['status']}"
                f" ({event.get('state') or 'no state'}): {event.get('message') or 'no message'}"
            )
        self.log.info("SparkApplication %s COMPLETED; reading metrics %s", name, self.metrics_uri)
        bucket, key = S3Hook.parse_s3_url(self.metrics_uri)
        metrics = JobMetrics.from_json(
            S3Hook(aws_conn_id=self.aws_conn_id).read_key(key=key, bucket_name=bucket)
        )
        if not metrics.ok:
            raise AirflowException(
                f"SparkApplication {name} completed but its metrics say {metrics.status}: "
                + "; ".join(metrics.violations)
            )
        context["ti"].xcom_push(key="application_name", value=name)
        # Downstream tasks pull the touched dates by key (`op.output["touched_dates"]`).
        context["ti"].xcom_push(key="touched_dates", value=list(metrics.touched_dates))
        return metrics.to_dict()

    def on_kill(self) -> None:
        """Delete the application this task created (a killed task must not leave it running)."""
        name = getattr(self, "_application_name", None)
        if name:
            self._delete(name)
