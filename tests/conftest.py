"""Session fixtures shared by every suite: the real local control plane, the data
services, Argo CD, and the local platform of `make demo` (the e2e and reliability suites)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from localplatform import paths, procs
from localplatform.argocd import ArgoCD
from localplatform.cluster import Cluster
from localplatform.services import LocalServices

if TYPE_CHECKING:
    from localplatform.demo import Demo

# Subprocesses started by tests and plugins (pytest-helm-charts runs `kubectl` from PATH)
# use the pinned tools, never whatever the machine happens to have.
os.environ["PATH"] = f"{paths.TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
# Airflow imported by tests gets a throwaway home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(paths.RUN_DIR / "airflow-tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Cluster]:
    """The local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok).

    Reuses a cluster started by `make cluster-up` (and leaves it running); otherwise
    starts one for the session and stops it afterwards, unless LOCALPLATFORM_KEEP=1.
    """
    cluster = Cluster()
    already_up = cluster.is_up()
    if not already_up:
        seconds = cluster.up()
        print(f"\nlocal cluster up in {seconds:.1f} s")
    yield cluster
    if not already_up and os.environ.get("LOCALPLATFORM_KEEP") != "1":
        cluster.down()
        assert procs.pids_under(cluster.run_dir) == [], "a cluster process outlived its fixture"


@pytest.fixture(scope="session")
def data_services() -> Iterator[LocalServices]:
    """Postgres, Redis, Kafka and the S3 server on 127.0.0.1 (chdb needs no server).

    Reuses services started by `make services-up`; otherwise starts them for the session,
    stops them afterwards and asserts that no process is left behind.
    """
    services = LocalServices()
    already_up = services.is_up()
    timings = services.up()
    if not already_up:
        print("\ndata services up: " + ", ".join(f"{t.name} {t.seconds:.1f} s" for t in timings))
    yield services
    if not already_up and os.environ.get("LOCALPLATFORM_KEEP") != "1":
        services.down()
        assert procs.pids_under(services.run_dir) == [], "a data service outlived its fixture"


@pytest.fixture(scope="module")
def argocd(local_cluster: Cluster, data_services: LocalServices) -> Iterator[ArgoCD]:
    """Argo CD (application controller + repo-server, with the data services' Redis) and
    its Git server, as local processes against the local cluster.

    Reuses an Argo CD started by `make argocd-up`; otherwise starts one for the module
    (only tests/gitops uses it: its controller kept reconciling, about 6 % of a core, for
    the rest of a session), stops it afterwards and asserts that no process is left behind.
    """
    argo = ArgoCD(cluster=local_cluster, services=data_services)
    already_up = argo.is_up()
    if not already_up:
        seconds = argo.up()
        print(f"\nArgo CD up in {seconds:.1f} s")
    yield argo
    if not already_up and os.environ.get("LOCALPLATFORM_KEEP") != "1":
        argo.down()
        assert procs.pids_under(argo.run_dir) == [], "an Argo CD process outlived its fixture"


#: The fixture of the tests that need the platform's default mode, runs started by the
#: backlog watcher. They run first in a session, on the platform as installed.
EVENT_DRIVEN_FIXTURE = "event_driven_demo"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Event-driven tests first (stable otherwise): they need the platform as installed,
    before any test has triggered or unpaused anything; one restart then switches the
    session to triggered runs."""
    items.sort(key=lambda item: EVENT_DRIVEN_FIXTURE not in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def local_platform(request: pytest.FixtureRequest) -> Iterator[Demo]:
    """The local platform of `make demo` (control plane, data services, the chart's Airflow,
    the spark-operator stand-in), one for the whole session: bringing it up is the slow part
    of the e2e and reliability suites, which share it (`make test` runs them in one session).

    Starts from a wiped platform (it stops a running `make demo`), in event-driven mode if
    the session has an event-driven test, and stops it at the end, asserting that no process
    it started is left. Tests that share it compare the dashboard with the independent
    computation over every batch published in the session (`published`).
    """
    from localplatform.demo import Demo

    event_driven = any(EVENT_DRIVEN_FIXTURE in item.fixturenames for item in request.session.items)
    platform = Demo(trigger="events" if event_driven else "api")
    platform.down()
    started = time.monotonic()
    timings = platform.up()
    seconds = time.monotonic() - started
    print(f"\nplatform up ({platform.trigger_mode}) in {seconds:.1f} s: {timings}")
    yield platform
    left = platform.down()
    assert left == [], f"processes left behind: {left}"
    assert procs.pids_under(platform.services.run_dir) == []
    assert procs.pids_under(platform.cluster.run_dir) == []


@pytest.fixture
def demo(local_platform: Demo) -> Demo:
    """The shared platform with runs triggered through the CLI (the watcher off): tests
    that publish exact batches and run each one."""
    local_platform.use_trigger("api")
    return local_platform


@pytest.fixture
def event_driven_demo(local_platform: Demo) -> Demo:
    """The shared platform as installed: runs started by the backlog watcher."""
    local_platform.use_trigger("events")
    return local_platform


@pytest.fixture(scope="session")
def published() -> list[Path]:
    """Every directory of CDC events published on the shared platform in this session."""
    return []
