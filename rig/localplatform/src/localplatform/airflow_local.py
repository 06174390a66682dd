"""Airflow 3 as local processes, with the airflow.cfg the chart renders.

The chart's airflow.cfg is used as it is; what a cluster supplies through Secrets and
Services (DB and broker URLs, fernet and JWT keys, connections) is supplied here through
the same AIRFLOW__* / AIRFLOW_CONN_* environment variables, pointing at the local
servers. Components, as the chart runs them: api-server, 2 schedulers, dag-processor,
2 triggerers, a Celery worker. Stopped by PID like every local server.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localplatform import paths, procs


@dataclass(frozen=True)
class AirflowLocalConfig:
    run_dir: Path
    airflow_cfg: str
    env: dict[str, str]
    api_port: int = paths.port_field("airflow_api", 28080)
    schedulers: int = 2
    triggerers: int = 2


class LocalAirflow:
    def __init__(self, config: AirflowLocalConfig) -> None:
        self.config = config
        self.run_dir = config.run_dir
        self.home = self.run_dir / "home"
        self.api_url = f"http://127.0.0.1:{config.api_port}"

    def environment(self) -> dict[str, str]:
        keys_file = self.run_dir / "keys.json"
        if keys_file.exists():
            keys = json.loads(keys_file.read_text())
        else:
            from cryptography.fernet import Fernet

            keys = {
                "fernet": Fernet.generate_key().decode(),
                "jwt": secrets.token_urlsafe(32),
                "api": secrets.token_urlsafe(32),
            }
            self.run_dir.mkdir(parents=True, exist_ok=True)
            keys_file.touch(mode=0o600)
            keys_file.write_text(json.dumps(keys))
        venv_bin = str(Path(sys.executable).parent)
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(self.home / "airflow.cfg"),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__API__SECRET_KEY": keys["api"],
            "AIRFLOW__API__PORT": str(self.config.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(paths.REPO_ROOT / "dags"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.run_dir / "logs"),
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.config.env,
        }

    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def processes(self) -> list[procs.Proc]:
        env = self.environment()
        exe = self.airflow()

        def proc(name: str, *args: str, ports: tuple[int, ...] = ()) -> procs.Proc:
            return procs.Proc(
                name,
                [sys.executable, exe, *args],
                self.run_dir,
                ports=ports,
                env=env,
                cwd=self.home,
            )

        result = [
            proc("api-server", "api-server", ports=(self.config.api_port,)),
            proc("dag-processor", "dag-processor"),
        ]
        result += [proc(f"scheduler-{i}", "scheduler") for i in range(self.config.schedulers)]
        result += [proc(f"triggerer-{i}", "triggerer") for i in range(self.config.triggerers)]
        # Its task slots are the chart's (`[celery] worker_concurrency` in airflow_cfg,
        # workers.concurrency: 4 in values/local.yaml): a run's three consume tasks start
        # at once, as on the chart's workers (the rig's own 2 made the third wait for a slot).
        result.append(proc("celery-worker", "celery", "worker"))
        return result

    def cli(self, *args: str, timeout: float = 300) -> str:
        """Run an `airflow` CLI command with this deployment's environment."""
        return procs.run_checked(
            f"airflow {' '.join(args[:2])}",
            [sys.executable, self.airflow(), *args],
            timeout=timeout,
            env={**os.environ, **self.environment()},
            cwd=self.home,
        )

    def up(self, timeout: float = 180) -> float:
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "airflow.cfg").write_text(self.config.airflow_cfg)
        with procs.file_lock(self.run_dir / "lock"):
            self.cli("db", "migrate")  # what the chart's migration Job does
            for proc in self.processes():
                proc.start()
            api = self.processes()[0]
            api.wait_healthy(self._healthy, timeout)
        return time.monotonic() - started

    def down(self) -> None:
        with procs.file_lock(self.run_dir / "lock"):
            for proc in reversed(self.processes()):
                proc.stop(timeout=30)

    def health(self) -> dict[str, object]:
        url = f"{self.api_url}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (http only)
            body: dict[str, object] = json.loads(response.read())
        return body

    def _healthy(self) -> bool:
        health = self.health()
        scheduler = health.get("scheduler", {})
        triggerer = health.get("triggerer", {})
        return (
            isinstance(scheduler, dict)
            and scheduler.get("status") == "healthy"
            and isinstance(triggerer, dict)
            and triggerer.get("status") == "healthy"
        )
