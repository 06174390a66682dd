"""The GitOps repository the local Argo CD reads: a bare repository the Git server
(localplatform.gitserver) serves, with a working clone the tests commit from. Argo CD
itself (its processes, its install, its sync API, the Application manifests) is
localplatform.argocd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import ClassVar

from localplatform import paths, procs


class GitOpsRepo:
    """A bare repository the Git server serves, and a working clone to commit from.

    `create` lays it out the way a user's GitOps repository holds this bundle: the chart
    under charts/orders-etl and the per-environment values under values/."""

    #: What the repository holds: repository path -> source in this checkout.
    LAYOUT: ClassVar[dict[str, Path]] = {
        "charts/orders-etl": paths.REPO_ROOT / "charts" / "orders-etl",
        "values": paths.REPO_ROOT / "values",
    }

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = bare
        self.work = work

    @classmethod
    def create(cls, git_root: Path, name: str) -> GitOpsRepo:
        bare = git_root / f"{name}.git"
        work = git_root.parent / "work" / name
        for path in (bare, work):
            shutil.rmtree(path, ignore_errors=True)
        work.mkdir(parents=True)
        repo = cls(bare, work)
        _git(git_root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        repo.git("init", "--quiet", "--initial-branch=main")
        for dest, source in cls.LAYOUT.items():
            shutil.copytree(
                source,
                work / dest,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        repo.commit("orders-etl chart and values")
        repo.git("remote", "add", "origin", str(bare))
        repo.git("push", "--quiet", "origin", "main")
        return repo

    def git(self, *args: str) -> str:
        return _git(self.work, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def read(self, path: str) -> str:
        return (self.work / path).read_text()

    def write(self, path: str, text: str) -> None:
        (self.work / path).write_text(text)

    def commit(self, message: str) -> str:
        """Commit every change in the working clone and push it; returns the new HEAD."""
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        if self.git("remote").strip():
            self.git("push", "--quiet", "origin", "main")
        return self.head()

    def revert(self, revision: str) -> str:
        self.git("revert", "--no-edit", revision)
        self.git("push", "--quiet", "origin", "main")
        return self.head()


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "orders-etl gitops",
        "GIT_AUTHOR_EMAIL": "gitops@localhost",
        "GIT_COMMITTER_NAME": "orders-etl gitops",
        "GIT_COMMITTER_EMAIL": "gitops@localhost",
    }
    return procs.run_checked(f"git {args[0]}", ["git", *args], env=env, cwd=cwd)
