"""The one command line of every local component: `python -m <module> up | down | status`.

The control plane, the data services, the real node, Argo CD and the chart targets
(node_e2e, kind_e2e) each give their actions as callables; parsing, the error handling
(a start-up failure or a missing tool is one `error:` line and exit status 1, not a
traceback) and the exit status live here once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from localplatform import procs


@dataclass(frozen=True)
class Option:
    """An extra flag of one component's command line (argparse's add_argument)."""

    flag: str
    help: str
    action: str = "store_true"
    default: str | None = None


#: An action: the parsed arguments in; what to print and whether it went cleanly out.
Action = Callable[[argparse.Namespace], tuple[str, bool]]


@dataclass
class ComponentCli:
    prog: str
    doc: str | None
    up: Action
    down: Action
    status: Action
    #: More actions besides up / down / status (e.g. Argo CD's `application`).
    extra: dict[str, Action] = field(default_factory=dict)
    options: Sequence[Option] = ()

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(
            prog=self.prog,
            description=self.doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        actions: dict[str, Action] = {
            "up": self.up,
            "down": self.down,
            "status": self.status,
            **self.extra,
        }
        parser.add_argument("action", choices=list(actions))
        for option in self.options:
            if option.action == "store_true":
                parser.add_argument(option.flag, action="store_true", help=option.help)
            else:
                parser.add_argument(option.flag, default=option.default, help=option.help)
        args = parser.parse_args(argv)
        try:
            text, ok = actions[args.action](args)
        except (procs.StartupError, FileNotFoundError, subprocess.CalledProcessError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if text:
            print(text)
        return 0 if ok else 1
