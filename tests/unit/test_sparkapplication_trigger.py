"""The SparkApplication trigger, driven through the real kubernetes_asyncio/aiohttp client
against a FAKE API server (a raw asyncio HTTP server below) that answers with a scripted
series of SparkApplication states or breaks the connection the ways aiohttp reports
(ServerDisconnectedError, ClientPayloadError). The same sequences run against the real
API server in tests/integration/test_sparkapplication.py."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1]))
from orders_etl.triggers.sparkapplication import SparkApplicationTrigger
from sparkapp_sequences import SEQUENCES

pytestmark = pytest.mark.unit

CONN_ID = "kubernetes_fake_api"
DISCONNECT, TRUNCATED, ERROR_503 = "disconnect", "truncated", "503"


def application(state: str, message: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "app", "namespace": "jobs"},
        "spec": {"type": "Python"},
        "status": {"applicationState": {"state": state, "errorMessage": message}},
    }


class FakeApiServer:
    """Answers each request with the next scripted reply (the last one repeats)."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            reply = self.replies[min(self.requests, len(self.replies) - 1)]
            self.requests += 1
            if reply == DISCONNECT:  # the server goes away before answering
                writer.close()
                return
            if reply == ERROR_503:
                body = b'{"kind":"Status","code":503}'
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                continue
            body = json.dumps(reply if isinstance(reply, dict) else application(*reply)).encode()
            length = len(body) + (500 if reply == TRUNCATED else 0)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {length}\r\n\r\n".encode()
                + (body[:20] if reply == TRUNCATED else body)
            )
            await writer.drain()
            if reply == TRUNCATED:  # the body is cut short
                writer.close()
                return


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(path)}}),
    )
    return path


def write_kubeconfig(path: Path, port: int) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )


def run(
    kubeconfig: Path, replies: list[Any], timeout: float = 30, **kwargs: Any
) -> tuple[dict[str, Any], FakeApiServer]:
    fake = FakeApiServer(replies)

    async def drive() -> dict[str, Any]:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        write_kubeconfig(kubeconfig, server.sockets[0].getsockname()[1])
        trigger = SparkApplicationTrigger(
            name="app",
            namespace="jobs",
            kubernetes_conn_id=CONN_ID,
            poll_interval=0.01,
            timeout_at=time.time() + timeout,
            **kwargs,
        )
        events: AsyncIterator[Any] = trigger.run()
        try:
            event = await asyncio.wait_for(anext(events), timeout=60)
        finally:
            server.close()
        return dict(event.payload)

    return asyncio.run(drive()), fake


@pytest.mark.parametrize("fault", [DISCONNECT, TRUNCATED, ERROR_503])
def test_a_broken_connection_is_retried_like_an_api_error(kubeconfig: Path, fault: str) -> None:
    event, fake = run(kubeconfig, [("RUNNING",), fault, fault, ("COMPLETED",)])
    assert event["status"] == "success", event
    assert fake.requests == 4


def test_a_connection_that_keeps_breaking_is_an_error_event(kubeconfig: Path) -> None:
    event, fake = run(kubeconfig, [DISCONNECT], max_api_errors=2)
    assert event["status"] == "error", event
    assert "Kubernetes API" in event["message"]
    assert fake.requests >= 3  # three tries (aiohttp may retry a GET once by itself)


@pytest.mark.parametrize("name", SEQUENCES)
def test_every_sequence_the_operator_writes(kubeconfig: Path, name: str) -> None:
    """Replays the sequence (each state seen on three polls) and checks what the task
    concludes: success, failed with the operator's message, or stalled (UNKNOWN,
    SUSPENDED: bounded by their own timeout, far shorter than the task's)."""
    sequence = SEQUENCES[name]
    replies = [state for state in sequence.states for _ in range(3)]
    event, _ = run(kubeconfig, replies, stall_timeout=0.5, timeout=60)
    assert event["status"] == sequence.outcome, event
    last_state, last_message = sequence.states[-1]
    assert event["state"] == last_state
    if sequence.outcome == "failed":
        assert event["message"] == last_message
    if sequence.outcome == "stalled":
        assert last_state in event["message"]
