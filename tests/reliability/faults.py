"""Helpers of the reliability tests: the platform's processes, task states, staging checks."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from localplatform import procs
from localplatform.demo import Demo
from orders_contract.staging import Manifest, StagingLocation
from orders_etl.staging.ledger import Claim


def component(demo: Demo, name: str) -> procs.Proc:
    """One Airflow component of the demo (api-server, scheduler-0, celery-worker, ...)."""
    return next(p for p in demo._airflow_from_disk().processes() if p.name == name)


def task_state(demo: Demo, run_id: str, task_id: str) -> str | None:
    with demo._db() as conn, conn.cursor() as cur:
        cur.execute(
            "select state from task_instance where dag_id='orders_etl' and run_id=%s "
            "and task_id=%s",
            (run_id, task_id),
        )
        row = cur.fetchone()
    return row[0] if row else None


def task_tries(demo: Demo, run_id: str, task_id: str) -> list[tuple[int, str | None, int]]:
    """(map_index, state, try_number) of every instance of a task in a run."""
    with demo._db() as conn, conn.cursor() as cur:
        cur.execute(
            "select map_index, state, try_number from task_instance where dag_id='orders_etl' "
            "and run_id=%s and task_id=%s order by map_index",
            (run_id, task_id),
        )
        return [(int(m), s, int(t)) for m, s, t in cur.fetchall()]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, every: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`: a Proc leads its own session, so this
    is the process and everything it started (Celery's pool, task supervisors and task
    processes, which put themselves in process groups of their own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            state, session = fields[0], int(fields[3])
            if session == sid and state != "Z":
                members.append(int(entry.name))
    return members


def kill_session(proc: procs.Proc) -> list[int]:
    """SIGKILL a platform process and everything in its session, as a pod's death (OOM
    kill, lost node) takes every process of the container at once. Returns the pids."""
    pid = proc.pid()
    assert pid is not None, f"{proc.name} is not running"
    victims = session_members(pid)
    assert pid in victims
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not session_members(pid), 30, f"{proc.name}'s processes to die", 0.2)
    with contextlib.suppress(ChildProcessError):  # the demo was started by this process
        os.waitpid(pid, os.WNOHANG)
    return victims


# -- staging: the ledger and manifests on the real S3 ------------------------------------
def staged_topics(s3: Any, location: StagingLocation, batch_id: str) -> dict[str, set[str]]:
    """Per topic of a batch, which of `_claim.json` and `_manifest.json` exist."""
    found: dict[str, set[str]] = {}
    prefix = location.batch_prefix(batch_id) + "/"
    listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=prefix)
    for obj in listed.get("Contents", []):
        rest = obj["Key"].removeprefix(prefix)
        if rest.startswith("topic=") and rest.count("/") == 1:
            topic, name = rest.removeprefix("topic=").split("/")
            found.setdefault(topic, set()).add(name)
    return found


def ledger(s3: Any, location: StagingLocation, topic: str) -> list[Claim]:
    prefix = f"{location.prefix}/_ledger/topic={topic}/"
    keys = sorted(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=location.bucket, Prefix=prefix).get("Contents", [])
    )
    return [
        Claim.from_json(s3.get_object(Bucket=location.bucket, Key=k)["Body"].read().decode())
        for k in keys
    ]


def assert_exactly_once(
    s3: Any, location: StagingLocation, batch_id: str, expected_rows: dict[str, int]
) -> None:
    """Each topic's ledger is gapless and non-overlapping, the batch holds exactly one
    claim per topic, its manifest covers exactly that claim, and its Parquet objects hold
    every offset of the claimed ranges once: no duplicate, no missing offset."""
    for topic, rows in expected_rows.items():
        claims = ledger(s3, location, topic)
        assert [c.seq for c in claims] == list(range(len(claims))), f"{topic}: ledger has gaps"
        for before, after in itertools.pairwise(claims):
            for partition, (start, _) in after.ranges.items():
                assert start == before.ranges[partition][1], (
                    f"{topic}[{partition}]: claim {after.seq} starts at {start}, the previous "
                    f"one ended at {before.ranges[partition][1]}"
                )
        mine = [c for c in claims if c.batch_id == batch_id]
        assert len(mine) == 1, f"{topic}: batch {batch_id} claimed {len(mine)} times"
        key = location.manifest_key(batch_id, topic)
        manifest = Manifest.from_json(
            s3.get_object(Bucket=location.bucket, Key=key)["Body"].read().decode()
        )
        assert {p.partition: (p.start_offset, p.end_offset) for p in manifest.partitions} == (
            mine[0].ranges
        )
        staged = 0
        for part in manifest.partitions:
            if part.object is None:  # an empty range (or only transaction markers)
                continue
            object_key = part.object.removeprefix(f"s3://{location.bucket}/")
            body = s3.get_object(Bucket=location.bucket, Key=object_key)["Body"].read()
            offsets = pq.read_table(io.BytesIO(body), columns=["offset"])["offset"].to_pylist()
            assert offsets == list(range(part.start_offset, part.end_offset)), (
                f"{topic}[{part.partition}]: staged offsets are not exactly "
                f"{part.start_offset}..{part.end_offset - 1}"
            )
            staged += len(offsets)
        assert staged == manifest.rows == rows, f"{topic}: staged {staged}, published {rows}"
