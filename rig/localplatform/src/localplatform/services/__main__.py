"""CLI: python -m localplatform.services up | down | status."""

from __future__ import annotations

import argparse
import sys
import time

from localplatform import cli, procs
from localplatform.services import LocalServices


def _up(_: argparse.Namespace) -> tuple[str, bool]:
    services = LocalServices()
    started = time.monotonic()
    timings = services.up()
    detail = ", ".join(f"{t.name} {t.seconds:.1f} s" for t in timings)
    return (
        f"data services healthy in {time.monotonic() - started:.1f} s ({detail})\n"
        f"{services.status()}\nendpoints: {services.run_dir / 'endpoints.json'}"
    ), True


def _down(args: argparse.Namespace) -> tuple[str, bool]:
    services = LocalServices()
    services.down(wipe=not args.keep_data)
    left = procs.pids_under(services.run_dir)
    return "data services are down" + (f"; STILL RUNNING: {left}" if left else ""), not left


main = cli.ComponentCli(
    prog="python -m localplatform.services",
    doc=None,
    up=_up,
    down=_down,
    status=lambda _: (LocalServices().status(), True),
    options=[cli.Option("--keep-data", "down: keep data directories")],
).main


if __name__ == "__main__":
    sys.exit(main())
