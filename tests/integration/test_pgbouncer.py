"""The chart's generated PgBouncer config, run by a real PgBouncer against the real Postgres.

The pgbouncer Deployment's init container runs `files/pgbouncer_config.py` over the
database Secret's upstream URL; here the same script writes the files from the local
Postgres's URL (bound to loopback instead of the pod's 0.0.0.0), and Debian's pgbouncer
serves them: SCRAM logins with the userlist, a wrong password refused, transaction
pooling, Airflow's SQLAlchemy engine through it, and the admin console for `stats_users`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from localplatform import paths, procs
from localplatform.services import LocalServices

pytestmark = pytest.mark.integration

SCRIPT = paths.REPO_ROOT / "charts" / "orders-etl" / "files" / "pgbouncer_config.py"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
RUN_AS = "postgres"  # pgbouncer refuses to run as root, like Postgres


def connect(url: URL, **overrides: Any) -> Any:
    """psycopg2 connection from a URL (the URL object keeps the password out of reprs)."""
    params = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        "connect_timeout": 10,
        **overrides,
    }
    return psycopg2.connect(**params)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def pgbouncer(
    data_services: LocalServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of the airflow database through PgBouncer."""
    if not Path(PGBOUNCER).exists():
        pytest.fail(
            "pgbouncer is missing: make setup installs it (hack/install-debian-packages.sh)"
        )
    # Under the run directory: pytest's tmp dirs are root-only (0700), pgbouncer runs as RUN_AS.
    out = paths.RUN_DIR / "pgbouncer-test"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    upstream = data_services.postgres.url("airflow")
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "UPSTREAM_URL": upstream,
        "OUT_DIR": str(out),
        "POOL_MODE": "transaction",
        "MAX_CLIENT_CONN": "50",
        "DEFAULT_POOL_SIZE": "2",
        "LISTEN_ADDR": "127.0.0.1",
        "LISTEN_PORT": str(port),
        "AUTH_FILE": str(out / "userlist.txt"),
    }
    subprocess.run([sys.executable, str(SCRIPT)], env=env, check=True, timeout=60)
    shutil.chown(out, RUN_AS, RUN_AS)
    for name in ("pgbouncer.ini", "userlist.txt"):
        shutil.chown(out / name, RUN_AS, RUN_AS)
    proc = procs.Proc(
        "pgbouncer",
        ["setpriv", f"--reuid={RUN_AS}", f"--regid={RUN_AS}", "--init-groups", PGBOUNCER,
         out / "pgbouncer.ini"],
        out,
        ports=(port,),
        identity=PGBOUNCER,
    )  # fmt: skip
    proc.start()
    try:
        proc.wait_healthy(lambda: procs.port_in_use(port), 30)
        yield make_url(upstream).set(port=port)
    finally:
        proc.stop()
    assert not proc.running()
    shutil.rmtree(out, ignore_errors=True)


def test_logins_and_queries_go_through_the_generated_config(pgbouncer: URL) -> None:
    with connect(pgbouncer) as conn, conn.cursor() as cur:
        cur.execute("select current_user, current_database(), inet_server_port()")
        user, database, server_port = cur.fetchone()
    assert (user, database) == (pgbouncer.username, "airflow")
    assert server_port != pgbouncer.port, "answered by Postgres behind PgBouncer"


def test_a_wrong_password_is_refused(pgbouncer: URL) -> None:
    with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
        connect(pgbouncer, password="not-it")


def test_transaction_pooling_serves_more_clients_than_server_connections(pgbouncer: URL) -> None:
    """default_pool_size 2: six clients, each with a transaction, share two server
    connections (pool_mode transaction), and each transaction sees its own writes."""
    clients = [connect(pgbouncer) for _ in range(6)]
    try:
        for n, conn in enumerate(clients):
            with conn, conn.cursor() as cur:
                cur.execute("create temporary table if not exists t (n int) on commit drop")
                cur.execute("insert into t values (%s)", (n,))
                cur.execute("select n from t")
                assert cur.fetchall() == [(n,)]
        backends = set()
        for conn in clients:
            with conn, conn.cursor() as cur:
                cur.execute("select pg_backend_pid()")
                backends.add(cur.fetchone()[0])
        assert 1 <= len(backends) <= 2, f"{len(backends)} server connections for 6 clients"
    finally:
        for conn in clients:
            conn.close()


def test_airflow_sqlalchemy_engine_and_the_admin_console(pgbouncer: URL) -> None:
    engine = sqlalchemy.create_engine(pgbouncer.set(drivername="postgresql+psycopg2"))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select 41 + 1")).scalar() == 42
    finally:
        engine.dispose()
    admin = connect(pgbouncer, dbname="pgbouncer")
    admin.autocommit = True  # the console has no transactions
    try:
        with admin.cursor() as cur:
            cur.execute("show pools")
            columns = [c.name for c in cur.description]
            pools = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        admin.close()
    assert {(p["database"], p["user"]) for p in pools} >= {("airflow", pgbouncer.username)}
    assert {p["pool_mode"] for p in pools if p["database"] == "airflow"} == {"transaction"}
