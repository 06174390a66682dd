"""The failure-alert listener plugin, end to end: real task failures -> one alert each -> "Slack".

Slack is a tiny HTTP server on 127.0.0.1 recording the webhook posts; the Slack webhook
connection points at it through AIRFLOW_CONN_SLACK_WEBHOOK_DEFAULT (JSON), resolved by
Airflow's secrets backend. Airflow runs in subprocesses with a throwaway AIRFLOW_HOME and
its own sqlite metadata DB, so the plugin is loaded the way deployments load it: from the
`airflow.plugins` entry point of the installed package.

Paths covered (see orders_etl.alerting.listener): the task runner's finalize (dag.test()
runs tasks through it, in process) for a retried task and a finally failed one; and the
scheduler's TaskInstance.handle_failure (an executor reporting a task process that died).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from fake_slack import FakeSlack, serve_fake_slack

pytestmark = pytest.mark.integration

DAG_FILE = textwrap.dedent(
    '''
    """DAGs whose tasks fail on purpose, for the alerting tests."""
    import datetime as dt
    import os
    import sys
    from pathlib import Path

    from airflow.sdk import DAG, task

    STATE = Path(os.environ["ALERT_TEST_STATE"])
    FAST_RETRY = {"retries": 1, "retry_delay": dt.timedelta(seconds=1)}

    with DAG("alert_retry", schedule=None, catchup=False, default_args=FAST_RETRY) as retry_dag:

        @task
        def flaky():
            marker = STATE / "flaky-failed-once"
            if not marker.exists():
                marker.touch()
                raise RuntimeError("transient: broker not reachable")
            return "recovered"

        flaky()

    with DAG("alert_final", schedule=None, catchup=False) as final_dag:

        @task(retries=0)
        def broken():
            raise ValueError("bad input <script>&")

        broken()

    with DAG("alert_exhausted", schedule=None, catchup=False, default_args=FAST_RETRY) as exhausted:

        @task
        def always_fails():
            raise RuntimeError("still down")

        always_fails()

    with DAG("alert_killed", schedule=None, catchup=False) as killed:

        @task(retries=0)
        def victim():
            return "finished; the scheduler test then replays an executor failure event"

        victim()

    if __name__ == "__main__":
        dags = {
            "alert_retry": retry_dag,
            "alert_final": final_dag,
            "alert_exhausted": exhausted,
            "alert_killed": killed,
        }
        run = dags[sys.argv[1]].test()
        print("DAG_RUN_STATE=" + str(run.state))
    '''
)

# The scheduler's path: process_executor_events -> TaskInstance.handle_failure for a TI
# still RUNNING whose process the executor reports dead.
SCHEDULER_SCRIPT = textwrap.dedent(
    """
    import sys
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    dag_id, task_id = sys.argv[1], sys.argv[2]
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())
        ).first()
        ti = run.get_task_instance(task_id, session=session)
        dag = DBDagBag().get_dag_for_run(dag_run=run, session=session)
        ti.task = dag.get_task(task_id)
        ti.state = TaskInstanceState.RUNNING
        ti.try_number += 1
        session.flush()
        ti.handle_failure(
            error="Executor reported that the task instance finished with state failed "
            "(process killed externally)",
            session=session,
        )
        print("TI_STATE=" + str(ti.state))
    """
)


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with serve_fake_slack() as fake:
        yield fake


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    (home / "dags" / "alert_dags.py").write_text(DAG_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ORDERS_ETL"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            # The connection id the config names (alerting.slack_connection_id), via the
            # env-var secrets backend.
            "AIRFLOW_CONN_SLACK_WEBHOOK_DEFAULT": slack.connection_json(),
        }
    )
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def run_airflow(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    state.mkdir(exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, *args],
        env={**env, "ALERT_TEST_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(f"{args[-1]}: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def dag_test(env: dict[str, str], state: Path, dag_id: str) -> str:
    dag_file = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "alert_dags.py"
    result = run_airflow(env, state, str(dag_file), dag_id)
    return result.stdout


def alerts_for(slack: FakeSlack, dag_id: str) -> list[str]:
    return [text for text in slack.texts() if f"*{dag_id}." in text]


def test_the_plugin_is_registered_by_entry_point(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_airflow(
        airflow_env,
        tmp_path,
        "-c",
        "from airflow.sdk.listener import get_listener_manager as sdk; "
        "from airflow.listeners.listener import get_listener_manager as core; "
        "from orders_etl.alerting.listener import failure_alert_listener as l; "
        "print('SDK', sdk().pm.is_registered(l)); print('CORE', core().pm.is_registered(l))",
    )
    assert "SDK True" in result.stdout
    assert "CORE True" in result.stdout


def test_a_retried_task_sends_exactly_one_warning(
    airflow_env: dict[str, str], slack: FakeSlack, tmp_path: Path
) -> None:
    out = dag_test(airflow_env, tmp_path, "alert_retry")
    assert "DAG_RUN_STATE=success" in out, out[-2000:]
    alerts = alerts_for(slack, "alert_retry")
    assert len(alerts) == 1, alerts
    assert alerts[0].startswith(":warning: [WARNING] *alert_retry.flaky* failed, will be retried")
    assert "try 1 of 2" in alerts[0]
    assert "RuntimeError: transient: broker not reachable" in alerts[0]


def test_a_final_failure_sends_exactly_one_page(
    airflow_env: dict[str, str], slack: FakeSlack, tmp_path: Path
) -> None:
    out = dag_test(airflow_env, tmp_path, "alert_final")
    assert "DAG_RUN_STATE=failed" in out, out[-2000:]
    alerts = alerts_for(slack, "alert_final")
    assert len(alerts) == 1, alerts
    assert alerts[0].startswith(
        ":rotating_light: [PAGE] *alert_final.broken* failed, no retries left"
    )
    # Slack's control characters in the error are escaped, not interpreted.
    assert "ValueError: bad input &lt;script&gt;&amp;" in alerts[0]


def test_retries_then_final_failure_warn_once_then_page_once(
    airflow_env: dict[str, str], slack: FakeSlack, tmp_path: Path
) -> None:
    out = dag_test(airflow_env, tmp_path, "alert_exhausted")
    assert "DAG_RUN_STATE=failed" in out, out[-2000:]
    alerts = alerts_for(slack, "alert_exhausted")
    assert [a.split("*")[0].strip() for a in alerts] == [
        ":warning: [WARNING]",
        ":rotating_light: [PAGE]",
    ]
    assert "try 1 of 2" in alerts[0]
    assert "try 2 of 2" in alerts[1]


def test_a_task_process_that_died_is_alerted_by_the_scheduler_path(
    airflow_env: dict[str, str], slack: FakeSlack, tmp_path: Path
) -> None:
    # A real run to attach to (its task succeeds: no alert), then the scheduler's handling
    # of an executor event for a TI whose process died while RUNNING (no retries left).
    dag_test(airflow_env, tmp_path, "alert_killed")
    assert alerts_for(slack, "alert_killed") == []
    result = run_airflow(airflow_env, tmp_path, "-c", SCHEDULER_SCRIPT, "alert_killed", "victim")
    assert "TI_STATE=failed" in result.stdout
    alerts = alerts_for(slack, "alert_killed")
    assert len(alerts) == 1, alerts
    assert alerts[0].startswith(":rotating_light: [PAGE] *alert_killed.victim*")
    assert "process killed externally" in alerts[0]
