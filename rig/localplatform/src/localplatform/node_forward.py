"""A TCP forwarder: the host side of the pod network reaching servers bound to 127.0.0.1.

    python -m localplatform.node_forward MAPPINGS_FILE

MAPPINGS_FILE holds LISTEN_HOST:PORT=TARGET_HOST:PORT entries, e.g.
10.213.0.1:18443=127.0.0.1:18443; SIGHUP adds the entries added since (existing
listeners and their connections stay).

The API server and the data services listen on loopback only. Pods reach them the way
they reach anything in a cluster, through a Service whose EndpointSlice points at the
gateway address of the node's bridge; this process listens there and relays each
connection, bytes unchanged (TLS stays end to end), to the loopback server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


def _handler(target_host: str, target_port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(target_host, target_port), timeout=10
            )
        except (OSError, TimeoutError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    return handle


def parse(mapping: str) -> tuple[str, int, str, int]:
    """LISTEN_HOST:PORT=TARGET_HOST:PORT -> its four parts."""
    listen, _, target = mapping.partition("=")
    lhost, _, lport = listen.rpartition(":")
    thost, _, tport = target.rpartition(":")
    if not (lhost and lport.isdigit() and thost and tport.isdigit()):
        raise ValueError(f"expected LISTEN_HOST:PORT=TARGET_HOST:PORT, got {mapping!r}")
    return lhost, int(lport), thost, int(tport)


async def serve(mappings_file: Path) -> None:
    """Listen for every mapping in the file (one LISTEN=TARGET a line); SIGHUP reads it
    again and adds the new ones, leaving open connections alone."""
    servers: dict[str, asyncio.Server] = {}

    async def load() -> None:
        for mapping in mappings_file.read_text().split():
            if mapping in servers:
                continue
            lhost, lport, thost, tport = parse(mapping)
            servers[mapping] = await asyncio.start_server(
                _handler(thost, tport), lhost, lport, reuse_address=True
            )
            print(f"forwarding {lhost}:{lport} -> {thost}:{tport}", flush=True)

    await load()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(load()))
    await stop.wait()
    for server in servers.values():
        server.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(serve(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
