"""Write pgbouncer.ini and userlist.txt from a PostgreSQL URL (the pgbouncer Deployment's
init container, when pgbouncer.existingSecret is empty).

The URL comes from the environment (UPSTREAM_URL, a secretKeyRef to the database
Secret), the files go to OUT_DIR (a memory-backed emptyDir): the credentials are never
rendered by helm. Standard library only (runs in the Airflow image).
Environment: UPSTREAM_URL, OUT_DIR, POOL_MODE, MAX_CLIENT_CONN, DEFAULT_POOL_SIZE; and
LISTEN_ADDR, LISTEN_PORT, AUTH_FILE (defaults: the Deployment's 0.0.0.0, 6543 and the
mounted /etc/pgbouncer/userlist.txt).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def render(
    url: str,
    pool_mode: str,
    max_client_conn: int,
    default_pool_size: int,
    listen: tuple[str, int] = ("0.0.0.0", 6543),
    auth_file: str = "/etc/pgbouncer/userlist.txt",
) -> tuple[str, str]:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL (scheme {parts.scheme!r})")
    if not parts.hostname or not parts.username or parts.password is None:
        raise ValueError("the URL needs a host, a user and a password")
    database = parts.path.lstrip("/") or "postgres"
    user, password = unquote(parts.username), unquote(parts.password)
    for value in (user, password, database, parts.hostname):
        if any(c in value for c in '"\n\r'):
            raise ValueError("user, password, database and host may not hold quotes or newlines")
    sslmode = parse_qs(parts.query).get("sslmode", ["prefer"])[0]
    ini = f"""[databases]
{database} = host={parts.hostname} port={parts.port or 5432} dbname={database}

[pgbouncer]
listen_addr = {listen[0]}
listen_port = {listen[1]}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {auth_file}
pool_mode = {pool_mode}
max_client_conn = {max_client_conn}
default_pool_size = {default_pool_size}
server_tls_sslmode = {sslmode}
ignore_startup_parameters = extra_float_digits
stats_users = {user}
"""
    userlist = f'"{user}" "{password}"\n'
    return ini, userlist


def main() -> int:
    try:
        ini, userlist = render(
            os.environ["UPSTREAM_URL"],
            os.environ.get("POOL_MODE", "transaction"),
            int(os.environ.get("MAX_CLIENT_CONN", "500")),
            int(os.environ.get("DEFAULT_POOL_SIZE", "20")),
            (os.environ.get("LISTEN_ADDR", "0.0.0.0"), int(os.environ.get("LISTEN_PORT", "6543"))),
            os.environ.get("AUTH_FILE", "/etc/pgbouncer/userlist.txt"),
        )
    except (KeyError, ValueError) as err:
        print(f"pgbouncer config: {err}", file=sys.stderr)
        return 1
    out = Path(os.environ.get("OUT_DIR", "/etc/pgbouncer"))
    (out / "pgbouncer.ini").write_text(ini)
    (out / "userlist.txt").write_text(userlist)
    (out / "userlist.txt").chmod(0o600)
    print(f"pgbouncer config written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
