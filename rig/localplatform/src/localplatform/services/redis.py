"""Redis from Debian's package: the Celery broker."""

from __future__ import annotations

import shutil
import socket

from localplatform import procs
from localplatform.services.base import Credentials, ServicesConfig


class Redis:
    name = "redis"

    def __init__(self, config: ServicesConfig, credentials: Credentials) -> None:
        self.port = config.ports.redis
        self.password = credentials["redis"]
        self.dir = config.run_dir / "redis"
        self.conf = self.dir / "redis.conf"
        self._server = shutil.which("redis-server")
        server = self._server or "redis-server"
        self.proc = procs.Proc(self.name, [server, self.conf], config.run_dir, ports=(self.port,))

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def running(self) -> bool:
        return self.proc.running()

    def start(self, timeout: float = 30) -> None:
        if self._server is None:
            raise FileNotFoundError("redis-server is missing: run `make services-install`")
        self.dir.mkdir(parents=True, exist_ok=True)
        # The password lives in a 0600 config file, not on the command line.
        self.conf.touch(mode=0o600)
        self.conf.write_text(
            f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\ndaemonize no\n"
            f'dir {self.dir}\nsave ""\nappendonly no\nrequirepass {self.password}\n'
        )
        self.proc.start()
        self.proc.wait_healthy(self.ping, timeout)

    def stop(self) -> None:
        self.proc.stop()

    def ping(self) -> bool:
        """AUTH + PING over RESP; true on +PONG."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
        return reply.endswith(b"+PONG\r\n")
