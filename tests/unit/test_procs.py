"""Stopping a process stops its whole group: nothing it spawned outlives it."""

from __future__ import annotations

import os
import signal
import sys
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


SPAWN_CHILD = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
    "open('child.pid', 'w').write(str(c.pid)); time.sleep(300)"
)


def killed_leader_and_its_child(tmp_path: Path) -> tuple[procs.Proc, int]:
    """A Proc whose process started a child and was then killed -9 (and reaped, so it is
    gone, not a zombie): the child is left in its group. Returns the Proc and the child."""
    leader = procs.Proc("py", [sys.executable, "-c", SPAWN_CHILD], tmp_path, cwd=tmp_path)
    pid = leader.start()
    child_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 10
    while not child_file.exists() or not child_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(child_file.read_text())
    child_file.unlink()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return leader, child


def test_stop_ends_the_children_a_dead_leader_left_behind(tmp_path: Path) -> None:
    """A leader killed -9 (as a worker is in the reliability tests) leaves its children in
    its group; stop() still finds them by the recorded pid's group and ends them."""
    leader, child = killed_leader_and_its_child(tmp_path)
    assert not leader.running()
    assert procs.pids_under(tmp_path) == [child], "the orphan must still be accounted for"
    leader.stop()
    assert procs._exe(child) is None, "the dead leader's child outlived stop()"
    assert procs.pids_under(tmp_path) == []
    assert not leader.pid_file.exists()


def test_start_ends_the_children_a_dead_predecessor_left_behind(tmp_path: Path) -> None:
    """A component killed -9 and started again (the reliability tests' scheduler) must not
    leave its predecessor's children running untracked."""
    leader, child = killed_leader_and_its_child(tmp_path)
    leader.start()
    try:
        assert procs._exe(child) is None, "the predecessor's child outlived the restart"
    finally:
        leader.stop()
    assert procs.pids_under(tmp_path) == []
