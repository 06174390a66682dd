"""Host-side plumbing of the real node: its bridge, its isolation chain, its cgroup root,
and the sweeps that find what the node left behind (mounts, shims, cgroup members).

Everything here is named after the node (bridge, chain, cgroup) and is found again by
that name or by the node's run directory, never by a process name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from localplatform import procs

CGROUP_MOUNT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class NodeNetwork:
    """The pod network: one Linux bridge holding the gateway, pods behind it."""

    bridge: str
    pod_cidr: str
    #: Our own chain in the filter table: pods talk to each other and to this host, and
    #: nothing they send is forwarded anywhere else (no route out, no masquerade).
    chain: str

    @property
    def gateway(self) -> str:
        """The host side of the pod network (first address of the pod CIDR)."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def prefix_len(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen

    # -- bridge -----------------------------------------------------------------------
    def bridge_exists(self) -> bool:
        return Path(f"/sys/class/net/{self.bridge}").exists()

    def ensure_bridge(self) -> None:
        """Create the bridge with the gateway address (the CNI bridge plugin reuses it)."""
        if not self.bridge_exists():
            _ip("link", "add", "name", self.bridge, "type", "bridge")
        addresses = _ip("-4", "-o", "addr", "show", "dev", self.bridge)
        if f" {self.gateway}/{self.prefix_len} " not in addresses:
            _ip("addr", "add", f"{self.gateway}/{self.prefix_len}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        # Hairpin traffic (a pod reaching itself through a Service) and Service replies
        # between pods on this bridge must traverse iptables (kube-proxy's conntrack).
        _sysctl_at_least("net/bridge/bridge-nf-call-iptables", 1)
        _sysctl_at_least("net/ipv4/ip_forward", 1)

    def delete_bridge(self) -> None:
        if self.bridge_exists():
            _ip("link", "delete", self.bridge)

    # -- isolation --------------------------------------------------------------------
    def ensure_isolation(self) -> None:
        """FORWARD jumps first to our chain: bridge-to-bridge is accepted, anything else
        from or to the pod network is dropped, so no pod packet ever leaves this host."""
        if not _iptables_ok("-n", "-L", self.chain):
            _iptables("-N", self.chain)
        _iptables("-F", self.chain)
        for rule in (
            ["-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"],
            ["-i", self.bridge, "-j", "DROP"],
            ["-o", self.bridge, "-j", "DROP"],
        ):
            _iptables("-A", self.chain, *rule, "-m", "comment", "--comment", self.chain)
        if not _iptables_ok("-C", "FORWARD", "-j", self.chain):
            _iptables("-I", "FORWARD", "1", "-j", self.chain)

    def remove_isolation(self) -> None:
        while _iptables_ok("-C", "FORWARD", "-j", self.chain):
            _iptables("-D", "FORWARD", "-j", self.chain)
        if _iptables_ok("-n", "-L", self.chain):
            _iptables("-F", self.chain)
            _iptables("-X", self.chain)

    def isolation_present(self) -> bool:
        return _iptables_ok("-n", "-L", self.chain)


# -- cgroups ------------------------------------------------------------------------------
def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, named and the v2 unified one)."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            before, _, after = line.partition(" - ")
            fstype = after.split()[0] if after else ""
            if fstype in ("cgroup", "cgroup2"):
                found.append(Path(before.split()[4]))
    return found


def ensure_cgroup_root(name: str) -> None:
    """kubelet's cgroupRoot must exist in every hierarchy before it starts."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":  # a new cpuset starts empty: inherit the parent's
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((hierarchy / knob).read_text())


def cgroup_pids(name: str) -> set[int]:
    """Pids in any cgroup under `name` (all of them were started for the node's pods)."""
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        for procs_file in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs_file.read_text().split())
    return pids


def remove_cgroup_root(name: str, timeout: float = 15) -> list[str]:
    """SIGKILL whatever is still in the node's cgroups, then remove them deepest first.
    Returns the cgroups that could not be removed."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(name)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    left = []
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        for directory in sorted(
            (p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        try:
            root.rmdir()
        except OSError:
            left.append(str(root))
    return left


# -- mounts and shims ---------------------------------------------------------------------
def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest first."""
    prefix = str(directory.resolve())
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(set(found), key=lambda p: -len(p.parts))


def unmount_under(directory: Path) -> list[Path]:
    """Unmount everything below `directory` (lazily if busy); returns what is still there."""
    for _ in range(3):
        points = mounts_under(directory)
        if not points:
            return []
        for point in points:
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    return mounts_under(directory)


def shims_of(socket: Path) -> list[int]:
    """containerd-shim processes whose command line names this containerd's socket."""
    wanted = str(socket)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"containerd-shim" in argv[0] and wanted.encode() in argv:
            found.append(int(entry.name))
    return found


def kill_pids(pids: list[int], timeout: float = 10) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- kubelet's and kube-proxy's iptables chains --------------------------------------------
_FAMILIES = ("iptables", "ip6tables")
_TABLES = ("filter", "nat", "mangle")
#: kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and kube-proxy
#: (KUBE-SERVICES, KUBE-SVC-..., ...) name their chains themselves; no other Kubernetes
#: node runs on this machine, so every chain with this prefix is the real node's.
KUBE_CHAIN_PREFIX = "KUBE-"


def kube_chains() -> list[str]:
    """family:table:chain for every KUBE-* chain present."""
    found = []
    for family in _FAMILIES:
        for table in _TABLES:
            for line in _rules(family, table):
                if line.startswith(f"-N {KUBE_CHAIN_PREFIX}"):
                    found.append(f"{family}:{table}:{line.split()[1]}")
    return found


def remove_kube_chains() -> None:
    """Delete the jumps from the built-in chains into KUBE-* chains, then those chains."""
    for family in _FAMILIES:
        for table in _TABLES:
            rules = _rules(family, table)
            for line in rules:
                words = shlex.split(line)
                if (
                    words[:1] == ["-A"]
                    and not words[1].startswith(KUBE_CHAIN_PREFIX)
                    and any(w.startswith(KUBE_CHAIN_PREFIX) for w in words[2:])
                ):
                    _table_cmd(family, table, "-D", *words[1:])
            chains = [
                line.split()[1] for line in rules if line.startswith(f"-N {KUBE_CHAIN_PREFIX}")
            ]
            for chain in chains:
                _table_cmd(family, table, "-F", chain)
            for chain in chains:
                _table_cmd(family, table, "-X", chain)


def _rules(family: str, table: str) -> list[str]:
    if not shutil.which(family):
        return []
    result = subprocess.run(
        [family, "-w", "5", "-t", table, "-S"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.stdout.splitlines() if result.returncode == 0 else []


def _table_cmd(family: str, table: str, *args: str) -> None:
    subprocess.run(
        [family, "-w", "5", "-t", table, *args], capture_output=True, check=False, timeout=30
    )


# -- paths kubelet and containerd hard-code -------------------------------------------------
#: Directories kubelet/containerd create outside any configurable root. They are removed
#: only when empty (rmdir), never recursively: anything of anyone else's stays.
HARD_CODED_DIRS = (
    Path("/var/log/containers"),
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/lib/kubelet"),
    Path("/run/containerd/s"),
    Path("/run/containerd"),
)


def container_log_links(run_dir: Path) -> list[Path]:
    """kubelet's /var/log/containers/*.log symlinks that point into `run_dir`."""
    links_dir = HARD_CODED_DIRS[0]
    if not links_dir.is_dir():
        return []
    prefix = str(run_dir.resolve()) + "/"
    return [
        link
        for link in links_dir.iterdir()
        if link.is_symlink() and os.readlink(link).startswith(prefix)
    ]


#: The device-plugin registration socket kubelet always creates (pluginapi.KubeletSocket).
KUBELET_DEVICE_PLUGIN_SOCKET = Path("/var/lib/kubelet/device-plugins/kubelet.sock")


def sweep_hard_coded_paths(run_dir: Path) -> None:
    """After kubelet stopped: its log links into run_dir, its device-plugin socket, then
    the directories above them if that left them empty."""
    for link in container_log_links(run_dir):
        link.unlink(missing_ok=True)
    if KUBELET_DEVICE_PLUGIN_SOCKET.is_socket():
        KUBELET_DEVICE_PLUGIN_SOCKET.unlink()
    for directory in HARD_CODED_DIRS:
        with contextlib.suppress(OSError):
            directory.rmdir()


# -- helpers ------------------------------------------------------------------------------
def _ip(*args: str) -> str:
    return procs.run_checked("ip " + " ".join(args), ["ip", *args], timeout=30)


def _iptables(*args: str) -> str:
    return procs.run_checked(
        "iptables " + " ".join(args), ["iptables", "-w", "5", *args], timeout=30
    )


def _iptables_ok(*args: str) -> bool:
    result = subprocess.run(
        ["iptables", "-w", "5", *args], capture_output=True, check=False, timeout=30
    )
    return result.returncode == 0


def _sysctl_at_least(key: str, value: int) -> None:
    path = Path("/proc/sys") / key
    if not path.exists():
        raise procs.StartupError(f"{path} is missing: the kernel lacks what the node needs")
    if int(path.read_text().strip()) < value:
        path.write_text(f"{value}\n")
