"""Benchmark DAGs (bench.triggerer): concurrent SparkApplication waits in the triggerer.

Two families of 1,000 one-task DAGs, one per way the trigger waits: `bench_wait_<i>`
polls (a GET every 10 s, `spark.watch: false`) and `bench_watch_<i>` reads the shared
watch (`spark.watch: true`, the default). A run of each of the first N DAGs of a family
is N concurrent waits, as N runs of a pipeline each waiting on its own Spark job would
be. The task starts directly in the triggerer (start_from_trigger: the scheduler defers
it without a worker) with this project's real trigger,
orders_etl.triggers.sparkapplication.SparkApplicationTrigger, waiting on SparkApplication
`bench-wait-<i>` in namespace `bench-triggerer`. Nothing reconciles those applications:
the benchmark writes their status itself. Resumed tasks are held in a 0-slot pool, so a
thousand resumptions do not flood the worker.

One DAG per wait, not one DAG of 1,000 tasks: a start_from_trigger workload carries its
whole serialized DAG to the triggerer, so 1,000 tasks of one DAG would make the
triggerer decode that DAG 1,000 times (quadratic; measured: start-up stalled for minutes).

Not part of the product: loaded only by the benchmark platform's second DAG bundle.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import StartTriggerArgs

WAITS = 1000
NAMESPACE = "bench-triggerer"
POLL_INTERVAL = 10.0  # orders_etl/defaults/pipeline.yaml spark.poll_interval_seconds
TIMEOUT_AT = 4102444800.0  # 2100-01-01: the benchmark ends every run itself
TRIGGER = "orders_etl.triggers.sparkapplication.SparkApplicationTrigger"


class SparkApplicationWait(BaseOperator):
    """Waits on one SparkApplication from the start, in the triggerer."""

    start_from_trigger = True

    def __init__(self, *, application: str, watch: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER,
            trigger_kwargs={
                "name": application,
                "namespace": NAMESPACE,
                "kubernetes_conn_id": "kubernetes_default",
                "poll_interval": POLL_INTERVAL,
                "timeout_at": TIMEOUT_AT,
                "watch": watch,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context: Any) -> None:  # never called: the task starts deferred
        raise RuntimeError("starts from the triggerer")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        return event


#: DAG id prefix -> the trigger's `watch` kwarg (bench.triggerer.MODES names the same).
FAMILIES = {"bench_wait": False, "bench_watch": True}

for prefix, watch in FAMILIES.items():
    for index in range(WAITS):
        with DAG(
            f"{prefix}_{index:04d}",
            schedule=None,
            catchup=False,
            is_paused_upon_creation=False,
            tags=["benchmark"],
            default_args={"pool": "bench_hold", "retries": 0},
        ) as dag:
            SparkApplicationWait(task_id="wait", application=f"bench-wait-{index:04d}", watch=watch)
        globals()[dag.dag_id] = dag
