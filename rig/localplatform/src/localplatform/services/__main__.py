"""CLI: python -m localplatform.services up | down | status."""

from __future__ import annotations

import argparse
import sys
import time

from localplatform import procs
from localplatform.services import LocalServices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplatform.services")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--keep-data", action="store_true", help="down: keep data directories")
    args = parser.parse_args(argv)
    services = LocalServices()
    try:
        if args.action == "up":
            started = time.monotonic()
            timings = services.up()
            detail = ", ".join(f"{t.name} {t.seconds:.1f} s" for t in timings)
            print(f"data services healthy in {time.monotonic() - started:.1f} s ({detail})")
            print(services.status())
            print(f"endpoints: {services.run_dir / 'endpoints.json'}")
        elif args.action == "down":
            services.down(wipe=not args.keep_data)
            left = procs.pids_under(services.run_dir)
            print("data services are down" + (f"; STILL RUNNING: {left}" if left else ""))
            return 1 if left else 0
        else:
            print(services.status())
    except (procs.StartupError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
