"""Stopping a process stops its whole group: nothing it spawned outlives it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from localplatform import procs

pytestmark = pytest.mark.unit


def test_stop_takes_the_children_with_it(tmp_path: Path) -> None:
    parent = procs.Proc(
        "sh", ["/bin/sh", "-c", "sleep 300 & echo $! > child.pid; wait"], tmp_path, cwd=tmp_path
    )
    parent.start()
    child_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 10
    while not child_file.exists() or not child_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(child_file.read_text())
    started = time.monotonic()
    parent.stop()
    assert time.monotonic() - started < 10
    assert not parent.running()
    assert procs.pids_under(tmp_path) == []
    # Gone, or at most a zombie waiting for init to reap it: no executable any more.
    assert procs._exe(child) is None, "the child outlived its parent's stop"
