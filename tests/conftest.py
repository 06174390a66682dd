"""Session fixtures shared by every suite: the real local control plane."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localplatform import paths, procs
from localplatform.argocd import ArgoCD
from localplatform.cluster import Cluster
from localplatform.services import LocalServices

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


@pytest.fixture(scope="session")
def argocd(local_cluster: Cluster, data_services: LocalServices) -> Iterator[ArgoCD]:
    """Argo CD (application controller + repo-server, with the data services' Redis) and
    its Git server, as local processes against the local cluster.

    Reuses an Argo CD started by `make argocd-up`; otherwise starts one for the session,
    stops it afterwards and asserts that no process is left behind.
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
