"""An S3-compatible server: versitygw's posix backend, built from its Go module."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config

from localplatform import paths, procs
from localplatform.services.base import Credentials, ServicesConfig

ACCESS_KEY = "orders-etl-local"
REGION = "us-east-1"


class S3:
    name = "s3"

    def __init__(self, config: ServicesConfig, credentials: Credentials) -> None:
        self.port = config.ports.s3
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key = ACCESS_KEY
        self.secret_key = credentials["s3_secret"]
        self.root = config.run_dir / "s3" / "data"
        self.proc = procs.Proc(
            self.name,
            [
                paths.TOOLS_BIN / "versitygw",
                "--port",
                f"127.0.0.1:{self.port}",
                "--quiet",
                "posix",
                "--sidecar",
                config.run_dir / "s3" / "meta",
                self.root,
            ],
            config.run_dir,
            ports=(self.port,),
            # Root credentials through the environment, never on the command line.
            env={"ROOT_ACCESS_KEY_ID": self.access_key, "ROOT_SECRET_ACCESS_KEY": self.secret_key},
        )

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style addressing)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def running(self) -> bool:
        return self.proc.running()

    def start(self, timeout: float = 30) -> None:
        paths.tool("versitygw")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root.parent / "meta").mkdir(parents=True, exist_ok=True)
        self.proc.start()
        self.proc.wait_healthy(lambda: self.client().list_buckets() is not None, timeout)

    def stop(self) -> None:
        self.proc.stop()

    def ensure_buckets(self, names: Iterable[str]) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for name in names:
            if name not in existing:
                client.create_bucket(Bucket=name)


class ListingCounter:
    """An S3 client that counts the keys its ListObjectsV2 pages return (how much of a
    prefix a piece of code lists); everything else goes to the client unchanged."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.listed = 0

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        counter = self

        class Counting:
            def paginate(self, **kwargs: Any) -> Any:
                for page in paginator.paginate(**kwargs):
                    counter.listed += len(page.get("Contents", []))
                    yield page

        return Counting()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
