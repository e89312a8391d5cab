"""The API benchmark's load generator spreads its connections evenly over the server's worker
processes (two forked acceptors on one listening socket stand in for uvicorn's workers)."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from benchmarks.bench_api import connect_balanced, drive, serving_processes

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _serve(sock: socket.socket) -> None:
    """Accept on the shared socket and answer every request on a connection with RESPONSE."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


@pytest.fixture
def two_workers() -> Iterator[tuple[int, list[psutil.Process]]]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_serve, args=(sock,), daemon=True) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        yield int(sock.getsockname()[1]), [psutil.Process(p.pid) for p in procs if p.pid is not None]
    finally:
        for p in procs:
            p.terminate()
            p.join(5)
        sock.close()


def test_connections_are_spread_evenly(two_workers: tuple[int, list[psutil.Process]]) -> None:
    port, workers = two_workers

    async def run() -> tuple[list[int], dict[str, Any]]:
        conns, spread = await connect_balanced(port, 4, workers)
        try:
            result = await drive(conns, [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], 0.2)
        finally:
            for _, w in conns:
                w.close()
        return spread, result

    spread, result = asyncio.run(run())
    assert spread == [2, 2]
    assert result["concurrency"] == 4 and result["errors"] == 0 and result["requests"] > 0


def test_a_single_process_server_serves_itself() -> None:
    me = psutil.Process()
    assert serving_processes(me, 1) == [me]
