"""Start, health-check and stop local server processes by PID.

Each process gets a pid file and a log file under its run directory. A process is
"ours" only if the pid in its pid file is alive AND its command line still starts with
the binary we launched (guards against PID reuse); it is never looked up by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StartupError(RuntimeError):
    """A server did not start; the message names it and carries the tail of its log."""


@dataclass
class Proc:
    """A server process the platform starts and stops.

    A pid is ours when /proc/<pid>/exe is the binary we launched (or `identity`): servers
    such as redis rewrite their command line, but not their executable.
    """

    name: str
    argv: Sequence[str | Path]
    run_dir: Path
    ports: Sequence[int] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    #: The executable the process ends up running when argv[0] is a launcher that
    #: execs it (setpriv -> postgres); either one identifies the process as ours.
    identity: str | Path | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def _owners(self) -> set[str]:
        return {_resolve(self.argv[0]), _resolve(self.identity or self.argv[0])}

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _orphans(self, pgid: int) -> list[int]:
        """Live members of the group our process led, after the leader itself exited
        (a worker's serve-logs child). Only those running our executable count: pid_max
        is small here, so a recorded pid may have been reused by someone else."""
        owners = self._owners()
        return [pid for pid in _group_members(pgid) if _exe(pid) in owners]

    def pid(self) -> int | None:
        """The pid of our running process, or None. A stale pid file is removed unless
        processes of the group it names are still alive (stop() needs it to end them)."""
        pid = self._recorded_pid()
        if pid is None:
            return None
        if _exe(pid) in self._owners():
            return pid
        if not self._orphans(pid):
            self.pid_file.unlink(missing_ok=True)
        return None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        """Start the process detached from our session; returns its pid."""
        if (pid := self.pid()) is not None:
            return pid
        # A predecessor killed -9 may have left children in its group (a scheduler's
        # serve-logs): end them before the pid file that finds them is overwritten.
        self.stop()
        for port in self.ports:
            if port_in_use(port):
                raise StartupError(
                    f"{self.name}: port {port} on 127.0.0.1 is already in use by another "
                    f"process; free it or choose another port (see README, 'Ports')"
                )
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n==== {time.strftime('%F %T')} start {self.name} ====\n".encode())
            log.flush()
            child = subprocess.Popen(
                [str(a) for a in self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{child.pid}\n")
        return child.pid

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process's whole group (it leads its own session, so this includes
        children such as Airflow's serve-logs), wait up to `timeout`, then SIGKILL what is
        left; if the process itself is gone, ends what is left of its group. No-op when
        nothing of it runs."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            if not (_wait_gone(pid, timeout) and _wait_group_gone(pid, 5.0)):
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
                _wait_group_gone(pid, 5.0)
        elif (recorded := self._recorded_pid()) is not None:
            # The leader died on its own (kill -9, crash) but left children behind.
            _stop_each(self._orphans(recorded), timeout)
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def wait_healthy(self, check: Callable[[], bool], timeout: float) -> None:
        """Poll `check` until true; fail with the log tail if the process dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise StartupError(
                    f"{self.name} exited during start-up. Last lines of {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise StartupError(
            f"{self.name} was not healthy after {timeout:.0f} s. Last lines of "
            f"{self.log_file}:\n{self.log_tail()}"
        )


def run_checked(
    name: str,
    argv: Sequence[str],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a one-shot setup command; on failure raise with its output."""
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
    )
    if result.returncode != 0:
        raise StartupError(
            f"{name} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    return port_in_use(port, host)


def http_ok(url: str) -> bool:
    """True when a GET of url answers 200 (errors raise: wait_healthy treats them as not yet)."""
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
        return bool(response.status == 200)


def pids_under(run_dir: Path) -> list[int]:
    """Live pids recorded in run_dir/pids (used by tests to assert nothing is left)."""
    alive = []
    for pid_file in sorted((run_dir / "pids").glob("*.pid")):
        with contextlib.suppress(ValueError):
            pid = int(pid_file.read_text().strip())
            if _exe(pid):
                alive.append(pid)
            else:  # a dead leader's children still count
                alive += [m for m in _group_members(pid) if _exe(m)]
    return alive


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock so two `up`/`down` invocations never interleave."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resolve(program: str | Path) -> str:
    found = shutil.which(str(program))
    return str(Path(found or program).resolve())


def _exe(pid: int) -> str | None:
    """The executable of a live process; None when gone or a zombie."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    # A binary replaced on disk (a tool upgrade) while its process runs: still that process.
    return str(Path(exe.removesuffix(" (deleted)")).resolve())


def _group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (read from /proc/<pid>/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                members.append(int(stat.parent.name))
    return members


def _stop_each(pids: list[int], timeout: float) -> None:
    """SIGTERM each pid, wait up to `timeout` for all, then SIGKILL the rest."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        if not _wait_gone(pid, max(0.0, deadline - time.monotonic())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)


def _signal_group(pgid: int, signum: int) -> None:
    """Signal the process group `pgid` (our processes lead their own); fall back to the
    process alone if it is not a group leader."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, signum)
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, signum)


def _reap(pgid: int) -> None:
    """Collect exited children of ours in group `pgid` (zombies still count as members)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:  # none of them is our child
            return
        if pid == 0:
            return


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pgid)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.1)
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _exe(pid):
            return True
        time.sleep(0.1)
    return not _exe(pid)
