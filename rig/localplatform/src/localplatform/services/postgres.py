"""PostgreSQL from Debian's package: Airflow's metadata DB and the Iceberg JDBC catalog."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
from pathlib import Path

import psycopg2

from localplatform import procs
from localplatform.services.base import Credentials, ServicesConfig

#: database -> (role, credentials key); each role owns only its own database.
DATABASES = {"airflow": ("airflow", "airflow_db"), "iceberg": ("iceberg", "iceberg_db")}


def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin (Debian's layout)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3])
    )
    if not candidates:
        raise FileNotFoundError(
            "PostgreSQL server binaries are missing: run `make services-install` "
            "(hack/install-debian-packages.sh installs Debian's postgresql)"
        )
    return Path(candidates[-1]).parent


class Postgres:
    """One cluster under run_dir/postgres, run as the `postgres` OS user (it refuses root)."""

    name = "postgres"
    user = "postgres"

    def __init__(self, config: ServicesConfig, credentials: Credentials) -> None:
        self.config = config
        self.credentials = credentials
        self.port = config.ports.postgres
        self.data_dir = config.run_dir / "postgres" / "data"
        self.socket_dir = config.run_dir / "postgres" / "socket"
        bindir = postgres_bindir()
        self._bindir = bindir
        self.proc = procs.Proc(
            self.name,
            [
                "setpriv",
                f"--reuid={self.user}",
                f"--regid={self.user}",
                "--init-groups",
                bindir / "postgres",
                "-D",
                self.data_dir,
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                # Test data only: durability traded for speed.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            config.run_dir,
            ports=(self.port,),
            identity=bindir / "postgres",
        )

    def url(self, database: str, driver: str = "postgresql") -> str:
        """SQLAlchemy-style URL for one of DATABASES, with its role's password."""
        role, key = DATABASES[database]
        return f"{driver}://{role}:{self.credentials[key]}@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        return self.proc.running()

    def start(self, timeout: float = 60) -> None:
        self._initdb()
        self.proc.start()
        self.proc.wait_healthy(self._ready, timeout)
        self._ensure_databases()

    def stop(self) -> None:
        self.proc.stop(timeout=20)

    def _connect(self, database: str = "postgres") -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=database,
            user="postgres",
            password=self.credentials["postgres"],
            connect_timeout=3,
        )

    def _ready(self) -> bool:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("select 1")
            return bool(cur.fetchone() == (1,))

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        owner = pwd.getpwnam(self.user)
        for directory in (self.data_dir.parent, self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        self.data_dir.chmod(0o700)
        pwfile = self.data_dir.parent / "superuser-password"
        pwfile.write_text(self.credentials["postgres"])
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        pwfile.chmod(0o600)
        try:
            procs.run_checked(
                "initdb",
                [
                    "setpriv",
                    f"--reuid={self.user}",
                    f"--regid={self.user}",
                    "--init-groups",
                    str(self._bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
            )
        except procs.StartupError:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)

    def _ensure_databases(self) -> None:
        conn = self._connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for database, (role, key) in DATABASES.items():
                    cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                    verb = "alter" if cur.fetchone() else "create"
                    # Identifiers come from the DATABASES constant, never from input.
                    cur.execute(
                        f"{verb} role {role} login password %s",
                        (self.credentials[key],),
                    )
                    cur.execute("select 1 from pg_database where datname = %s", (database,))
                    if not cur.fetchone():
                        cur.execute(f"create database {database} owner {role}")
        finally:
            conn.close()
