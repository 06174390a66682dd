"""A stand-in for Slack's incoming-webhook endpoint: an HTTP server on 127.0.0.1 that
records each post and answers like Slack ("ok", 200, or the status a test sets)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeSlack:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    #: The status the next posts get; Slack answers 400 "invalid_payload" to a bad one.
    status: int = 200

    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]

    def connection_json(self) -> str:
        """An Airflow connection (for an AIRFLOW_CONN_* variable) pointing at this server."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})


@contextmanager
def serve_fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            slack.posts.append(json.loads(self.rfile.read(length)))
            self.send_response(slack.status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if slack.status == 200 else b"invalid_payload")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slack.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/test"
    try:
        yield slack
    finally:
        server.shutdown()
        server.server_close()
