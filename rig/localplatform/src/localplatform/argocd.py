"""A real Argo CD (its core install) syncing into the local control plane.

Argo CD v2 (the pinned argo-cd/v2 module, built by hack/install-tools.sh into
.tools/bin/argocd, a multicall binary: ARGOCD_BINARY_NAME picks the component) runs the
way its `manifests/core-install` runs it, minus the containers:

- from the module's core-install.yaml (.tools/share/argocd/core-install.yaml) the CRDs,
  ConfigMaps, the argocd-secret, and the ServiceAccounts/RBAC of the application
  controller and repo-server are applied to the local API server (namespace `argocd`);
  the Deployments, StatefulSet, Services, NetworkPolicies, the bundled Redis and the
  ApplicationSet controller are not;
- the **application controller** and the **repo-server** run as local processes on
  127.0.0.1. The controller authenticates as its ServiceAccount (a token kubeconfig), so
  core-install's RBAC is what it gets; the in-cluster destination
  (https://kubernetes.default.svc) is the local API server (ARGOCD_FAKE_IN_CLUSTER, as in
  Argo CD's own Procfile). The repo-server has only the pinned helm and Debian's git on
  its PATH;
- their cache is the data services' Redis (password from .run/services), database
  `redis_db`;
- a read-only Git smart-HTTP server (localplatform.gitserver) serves the GitOps
  repositories under .run/argocd/git at http://127.0.0.1:<git port>/<name>.git.

    python -m localplatform.argocd up | down | status
    python -m localplatform.argocd application   # the overlaid orders-etl Application

Everything is stopped by PID; `down` also removes what `up` put into the cluster (the
`argocd` namespace, the cluster-scoped RBAC; the Argo CD CRDs stay, as the chart tests
leave them) and flushes Argo CD's Redis database.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localplatform import cli, paths, procs
from localplatform.cluster import Cluster
from localplatform.gitops import GitOpsRepo
from localplatform.services import LocalServices

NAMESPACE = "argocd"
CORE_INSTALL = paths.TOOLS_SHARE / "argocd" / "core-install.yaml"
#: Kinds applied from core-install.yaml; workloads, Services and NetworkPolicies are not
#: (the components run as local processes).
APPLIED_KINDS = frozenset(
    {
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
    }
)
#: core-install components that do not run here: the data services' Redis replaces
#: argocd-redis, and no ApplicationSet is used.
SKIPPED_COMPONENTS = frozenset({"redis", "applicationset-controller"})
CONTROLLER = "argocd-application-controller"
REPO_SERVER = "argocd-repo-server"
#: The legacy ServiceAccount token Secret the local controller authenticates with.
CONTROLLER_TOKEN_SECRET = f"{CONTROLLER}-local-token"
FIELD_MANAGER = "localplatform-argocd"
#: The project's Application manifests.
APPLICATIONS_DIR = paths.REPO_ROOT / "argocd"


@dataclass(frozen=True)
class ArgoCDPorts:
    """Loopback ports (see paths.port: LOCALPLATFORM_PORT_<NAME> / _OFFSET)."""

    repo_server: int = paths.port_field("argocd_repo_server", 18081)
    repo_server_metrics: int = paths.port_field("argocd_repo_server_metrics", 18084)
    #: Argo CD 2.14 binds the controller's metrics/health port on 0.0.0.0 (hard-coded).
    controller_metrics: int = paths.port_field("argocd_controller_metrics", 18082)
    git: int = paths.port_field("git_http", 18418)


@dataclass(frozen=True)
class ArgoCDConfig:
    run_dir: Path = paths.RUN_DIR / "argocd"
    ports: ArgoCDPorts = field(default_factory=ArgoCDPorts)
    #: Redis database of Argo CD's cache (Celery and the demo use others).
    redis_db: int = 3
    #: --app-resync (Argo CD's default): how often Applications are compared without an
    #: event. Tests and `refresh()` do what a Git webhook does instead of waiting.
    app_resync_seconds: int = 180


class ArgoCD:
    """The local Argo CD: its processes, the objects it needs in the cluster, its Git server."""

    def __init__(
        self,
        config: ArgoCDConfig | None = None,
        cluster: Cluster | None = None,
        services: LocalServices | None = None,
    ) -> None:
        self.config = config or ArgoCDConfig()
        self.cluster = cluster or Cluster()
        self.services = services or LocalServices()
        self.run_dir = self.config.run_dir
        self.git_root = self.run_dir / "git"
        self.bin_dir = self.run_dir / "bin"
        self.kubeconfig = self.run_dir / "controller.kubeconfig"

    # -- endpoints --------------------------------------------------------------------
    def repo_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.config.ports.git}/{name}.git"

    # -- processes --------------------------------------------------------------------
    def _env(self, component: str) -> dict[str, str]:
        run = self.run_dir
        return {
            "ARGOCD_BINARY_NAME": component,
            "REDIS_PASSWORD": self.services.redis.password,
            # Only what the components may run: the pinned helm, git (and argocd itself,
            # the GIT_ASKPASS helper for repositories with credentials).
            "PATH": str(self.bin_dir),
            "HOME": str(run / "home"),
            "TMPDIR": str(run / "tmp"),
            "ARGOCD_TLS_DATA_PATH": str(run / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(run / "ssh"),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_GNUPGHOME": str(run / "gnupg"),
            "ARGOCD_ASK_PASS_SOCK": str(run / "askpass.sock"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def processes(self) -> list[procs.Proc]:
        p, run = self.config.ports, self.run_dir
        redis = ["--redis", f"127.0.0.1:{self.services.redis.port}"]
        redis += ["--redisdb", str(self.config.redis_db)]
        git_server = procs.Proc(
            "git-http",
            [
                sys.executable,
                "-m",
                "localplatform.gitserver",
                "--port",
                str(p.git),
                "--root",
                str(self.git_root),
            ],
            run,
            ports=(p.git,),
        )
        repo_server = procs.Proc(
            REPO_SERVER,
            [
                paths.TOOLS_BIN / "argocd",
                "--address=127.0.0.1",
                f"--port={p.repo_server}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={p.repo_server_metrics}",
                "--disable-tls",
                *redis,
                "--loglevel=info",
            ],
            run,
            ports=(p.repo_server, p.repo_server_metrics),
            env=self._env(REPO_SERVER),
        )
        controller = procs.Proc(
            CONTROLLER,
            [
                paths.TOOLS_BIN / "argocd",
                f"--kubeconfig={self.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--repo-server=127.0.0.1:{p.repo_server}",
                "--repo-server-plaintext",
                f"--metrics-port={p.controller_metrics}",
                f"--app-resync={self.config.app_resync_seconds}",
                *redis,
                "--loglevel=info",
            ],
            run,
            ports=(p.controller_metrics,),
            env={
                **self._env(CONTROLLER),
                "ARGOCD_FAKE_IN_CLUSTER": "true",
                "KUBECONFIG": str(self.kubeconfig),
            },
        )
        return [git_server, repo_server, controller]

    # -- lifecycle --------------------------------------------------------------------
    def up(self, timeout: float = 120) -> float:
        """Apply Argo CD's objects and start its processes; returns the seconds it took.

        Needs the local cluster and the data services' Redis running. Idempotent."""
        started = time.monotonic()
        paths.tool("argocd")
        if not CORE_INSTALL.exists():
            raise FileNotFoundError(f"{CORE_INSTALL} is missing: run `make tools`")
        if not self.cluster.is_up():
            raise procs.StartupError("the local cluster is not running: run `make cluster-up`")
        if not self.services.redis.running():
            raise procs.StartupError("Redis is not running: run `make services-up`")
        with procs.file_lock(self.run_dir / "lock"):
            for sub in ("home", "tmp", "tls", "ssh", "gnupg", "git", "bin"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            (self.run_dir / "gnupg").chmod(0o700)
            self._link_tools()
            self._apply_core_install()
            self._write_controller_kubeconfig(timeout)
            git_server, repo_server, controller = self.processes()
            p = self.config.ports
            git_server.start()
            repo_server.start()
            controller.start()
            git_server.wait_healthy(
                lambda: procs.http_ok(f"http://127.0.0.1:{p.git}/healthz"), timeout
            )
            repo_server.wait_healthy(
                lambda: procs.http_ok(
                    f"http://127.0.0.1:{p.repo_server_metrics}/healthz?full=true"
                ),
                timeout,
            )
            controller.wait_healthy(
                lambda: procs.http_ok(f"http://127.0.0.1:{p.controller_metrics}/healthz"), timeout
            )
        return time.monotonic() - started

    def down(self) -> None:
        """Delete the Applications (their resources with them), stop every process by PID,
        remove the argocd namespace and cluster RBAC, flush Argo CD's Redis database."""
        with procs.file_lock(self.run_dir / "lock"):
            cluster_up = self.cluster.is_up()
            if cluster_up and self.running():
                self._delete_applications(timeout=90)
            for proc in reversed(self.processes()):
                proc.stop()
            if cluster_up:
                self._remove_from_cluster()
            if self.services.redis.running():
                self._flush_redis()
            for sub in ("git", "work", "tmp", "home", "bin", "tls", "ssh", "gnupg"):
                shutil.rmtree(self.run_dir / sub, ignore_errors=True)
            self.kubeconfig.unlink(missing_ok=True)
            (self.run_dir / "askpass.sock").unlink(missing_ok=True)

    def running(self) -> bool:
        return all(proc.running() for proc in self.processes())

    def is_up(self) -> bool:
        if not self.running():
            return False
        p = self.config.ports
        try:
            return all(
                procs.http_ok(f"http://127.0.0.1:{port}/healthz")
                for port in (p.controller_metrics, p.repo_server_metrics)
            )
        except OSError:
            return False

    def status(self) -> str:
        lines = [f"git:        http://127.0.0.1:{self.config.ports.git}/<name>.git"]
        for proc in self.processes():
            pid = proc.pid()
            lines.append(f"  {proc.name:<32} {'pid ' + str(pid) if pid else 'stopped'}")
        if self.cluster.is_up():
            apps = self.cluster.kubectl(
                "get", "applications.argoproj.io", "-n", NAMESPACE, check=False
            )
            lines.append(apps.stdout or apps.stderr)
        return "\n".join(lines)

    # -- Applications -----------------------------------------------------------------
    def get_application(self, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl(
            "get", "applications.argoproj.io", name, "-n", NAMESPACE, "-o", "json"
        ).stdout
        app: dict[str, Any] = json.loads(out)
        return app

    def refresh(self, name: str, hard: bool = False) -> None:
        """What a Git webhook (or `argocd app get --refresh`) does: ask the controller to
        compare the Application with the repository now."""
        self.cluster.kubectl(
            "annotate",
            "applications.argoproj.io",
            name,
            "-n",
            NAMESPACE,
            f"argocd.argoproj.io/refresh={'hard' if hard else 'normal'}",
            "--overwrite",
        )

    def sync(self, name: str, revision: str) -> None:
        """What `argocd app sync` does: set the Application's operation."""
        operation = {
            "operation": {
                "initiatedBy": {"username": "localplatform"},
                "sync": {"revision": revision},
            }
        }
        self.cluster.kubectl(
            "patch",
            "applications.argoproj.io",
            name,
            "-n",
            NAMESPACE,
            "--type=merge",
            "-p",
            json.dumps(operation),
        )

    def controller_log_tail(self, lines: int = 40) -> str:
        return self.processes()[2].log_tail(lines)

    # -- internals --------------------------------------------------------------------
    def core_install_objects(self) -> list[dict[str, Any]]:
        """The objects of core-install.yaml the local install applies (see APPLIED_KINDS)."""
        selected = []
        for obj in yaml.safe_load_all(CORE_INSTALL.read_text()):
            if not obj or obj["kind"] not in APPLIED_KINDS:
                continue
            component = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            if component in SKIPPED_COMPONENTS:
                continue
            selected.append(obj)
        return selected

    def _link_tools(self) -> None:
        git = shutil.which("git")
        if git is None:
            raise FileNotFoundError("git is missing: install Debian's git package")
        for name, target in (
            ("helm", paths.tool("helm")),
            ("git", Path(git)),
            ("argocd", paths.tool("argocd")),
        ):
            link = self.bin_dir / name
            link.unlink(missing_ok=True)
            link.symlink_to(target)

    def _apply(self, objects: list[dict[str, Any]], namespace: str | None = None) -> None:
        args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        if namespace:
            args += ["-n", namespace]
        self.cluster.kubectl(*args, "-f", "-", input=yaml.safe_dump_all(objects))

    def _apply_core_install(self) -> None:
        objects = self.core_install_objects()
        crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
        self._apply(crds)
        self.cluster.wait_crds_established(*(c["metadata"]["name"] for c in crds), timeout=60)
        self._apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
        rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
        # The `default` AppProject is created by argocd-server, which the core install does
        # not run; this is the object it creates.
        rest.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            }
        )
        rest.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": CONTROLLER_TOKEN_SECRET,
                    "annotations": {"kubernetes.io/service-account.name": CONTROLLER},
                },
            }
        )
        self._apply(rest, NAMESPACE)
        # argocd-server also initialises the server signature key in argocd-secret; the
        # controller reads the secret's settings (cluster list) and warns without it.
        secret = json.loads(
            self.cluster.kubectl(
                "get", "secret", "argocd-secret", "-n", NAMESPACE, "-o", "json"
            ).stdout
        )
        if "server.secretkey" not in (secret.get("data") or {}):
            key = base64.b64encode(base64.b64encode(secrets.token_bytes(32))).decode()
            self.cluster.kubectl(
                "patch",
                "secret",
                "argocd-secret",
                "-n",
                NAMESPACE,
                "--type=merge",
                "-p",
                json.dumps({"data": {"server.secretkey": key}}),
            )

    def _write_controller_kubeconfig(self, timeout: float) -> None:
        """A kubeconfig with the application controller's ServiceAccount token."""
        deadline = time.monotonic() + timeout
        token = ""
        while not token:
            out = self.cluster.kubectl(
                "get", "secret", CONTROLLER_TOKEN_SECRET, "-n", NAMESPACE, "-o", "json"
            ).stdout
            token = json.loads(out).get("data", {}).get("token", "")
            if not token:
                if time.monotonic() > deadline:
                    raise procs.StartupError(
                        f"the token of {NAMESPACE}/{CONTROLLER_TOKEN_SECRET} was never issued "
                        "(kube-controller-manager's token controller)"
                    )
                time.sleep(0.2)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.cluster.server,
                        "certificate-authority": str(self.cluster.pki_dir / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": CONTROLLER, "user": {"token": base64.b64decode(token).decode()}}],
            "contexts": [
                {
                    "name": CONTROLLER,
                    "context": {"cluster": "local", "user": CONTROLLER, "namespace": NAMESPACE},
                }
            ],
            "current-context": CONTROLLER,
        }
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def _delete_applications(self, timeout: float) -> None:
        self.cluster.kubectl(
            "delete",
            "applications.argoproj.io",
            "--all",
            "-n",
            NAMESPACE,
            f"--timeout={int(timeout)}s",
            check=False,
            timeout=timeout + 30,
        )

    def _remove_from_cluster(self) -> None:
        # Applications left with the resources finalizer would block the namespace now that
        # no controller runs: drop the finalizer (their resources stay, as with
        # `kubectl delete --cascade=orphan`).
        out = self.cluster.kubectl(
            "get", "applications.argoproj.io", "-n", NAMESPACE, "-o", "name", check=False
        ).stdout
        for name in out.split():
            self.cluster.kubectl(
                "patch",
                name,
                "-n",
                NAMESPACE,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        self.cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
        for obj in self.core_install_objects() if CORE_INSTALL.exists() else []:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                self.cluster.kubectl(
                    "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found"
                )

    def _flush_redis(self) -> None:
        redis = self.services.redis
        with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
            sock.sendall(
                f"AUTH {redis.password}\r\nSELECT {self.config.redis_db}\r\nFLUSHDB\r\n".encode()
            )
            reply = b""
            while reply.count(b"\r\n") < 3:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
        if reply.count(b"+OK") < 3:
            raise RuntimeError(f"flushing Argo CD's Redis database failed: {reply!r}")


# ---- the Application overlay ---------------------------------------------------------


def application(
    manifest: Path,
    *,
    repo_url: str,
    revision: str = "main",
    namespace: str | None = None,
    value_files: list[str] | None = None,
) -> dict[str, Any]:
    """One of the project's Application manifests pointed at another repository: the
    overlay patches only the source (repoURL, targetRevision and, if given, the values
    files) and the destination namespace; sync policy, options, waves, finalizers and
    namespace metadata stay exactly as shipped."""
    app: dict[str, Any] = yaml.safe_load(manifest.read_text())
    source = app["spec"]["source"]
    source["repoURL"] = repo_url
    source["targetRevision"] = revision
    if value_files is not None:
        source["helm"]["valueFiles"] = value_files
    if namespace is not None:
        app["spec"]["destination"]["namespace"] = namespace
    app["metadata"]["namespace"] = NAMESPACE
    return app


def _up(args: argparse.Namespace) -> tuple[str, bool]:
    argocd = ArgoCD()
    was_up = argocd.is_up()
    seconds = argocd.up()
    if not (argocd.git_root / f"{args.repo}.git").exists():
        GitOpsRepo.create(argocd.git_root, args.repo)
    verb = "was already up" if was_up else "is up"
    return (
        f"Argo CD {verb} ({seconds:.1f} s); GitOps repository: {argocd.repo_url(args.repo)}\n"
        f"{argocd.status()}"
    ), True


def _down(_: argparse.Namespace) -> tuple[str, bool]:
    argocd = ArgoCD()
    argocd.down()
    left = procs.pids_under(argocd.run_dir)
    return f"Argo CD is down; no process left: {not left}", True


def _application(args: argparse.Namespace) -> tuple[str, bool]:
    app = application(
        APPLICATIONS_DIR / "orders-etl.yaml",
        repo_url=ArgoCD().repo_url(args.repo),
        namespace=args.namespace,
        value_files=["../../values/local.yaml"],
    )
    return yaml.safe_dump(app, sort_keys=False).rstrip("\n"), True


main = cli.ComponentCli(
    prog="python -m localplatform.argocd",
    doc=__doc__,
    up=_up,
    down=_down,
    status=lambda _: (ArgoCD().status(), True),
    extra={"application": _application},
    options=[
        cli.Option("--repo", "GitOps repository name", action="store", default="orders-etl"),
        cli.Option("--namespace", "destination namespace", action="store", default="orders-etl"),
    ],
).main


if __name__ == "__main__":
    sys.exit(main())
