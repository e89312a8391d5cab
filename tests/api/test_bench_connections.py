"""The API benchmark's load generator spreads its connections evenly over the server's worker
processes (two processes accepting on one inherited listening socket stand in for uvicorn's workers)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from benchmarks.bench_api import connect_balanced, drive, serving_processes

# A stand-in worker: accepts on the inherited listening socket, answers every request with 200 "ok".
WORKER = """
import asyncio, socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))

async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, sock=sock)
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


@pytest.fixture
def two_workers() -> Iterator[tuple[int, list[psutil.Process]]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    fd = sock.fileno()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(fd)], pass_fds=[fd], stdout=subprocess.PIPE)
             for _ in range(2)]
    try:
        for p in procs:  # both accept before the first connection, or the first one up takes all
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        yield int(sock.getsockname()[1]), [psutil.Process(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)
            if p.stdout is not None:
                p.stdout.close()
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
