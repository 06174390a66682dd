"""A read-only Git smart-HTTP server on 127.0.0.1: `git http-backend` behind a small
CGI bridge, serving every repository under --root (http://127.0.0.1:PORT/<name>.git).

This is how the local Argo CD repo-server reaches the GitOps repository, exactly as it
would reach a Git host over HTTP(S). Pushing over HTTP is refused (http-backend's
default for anonymous users); the tests commit into the bare repository through a
local clone.

    python -m localplatform.gitserver --port 18418 --root .run/argocd/git
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def git_binary() -> str:
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError("git is missing: install Debian's git package")
    return git


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()  # the CRLF after the last chunk
                return body
            body += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def serve(port: int, root: Path) -> None:
    git = git_binary()
    root = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _cgi(self, method: str) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")
                return
            body = _read_body(self) if method == "POST" else b""
            env = {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "PATH": "/usr/bin:/bin",
                "REQUEST_METHOD": method,
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                # The body is handed over de-chunked, so its length is always known.
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0],
                "SERVER_PROTOCOL": "HTTP/1.0",
            }
            if encoding := self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = encoding
            if protocol := self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = protocol
            result = subprocess.run(
                [git, "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, separator, payload = result.stdout.partition(b"\r\n\r\n")
            if not separator:
                self.send_error(500, "git http-backend failed", result.stderr.decode()[-500:])
                return
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._cgi("GET")

        def do_POST(self) -> None:
            self._cgi("POST")

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplatform.gitserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.port, args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
