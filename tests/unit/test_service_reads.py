"""A read of another service survives a kept-alive connection closed under it, and no more than that."""

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from shared import readers, service
from shared.readers import ServiceReader


@asynccontextmanager
async def service_closing_first(failures: int) -> AsyncIterator[tuple[ServiceReader, list[str]]]:
    """A real HTTP server on a local port that closes the connection instead of answering its first `failures`
    requests, then answers every one (keeping the connection alive); and a reader of it."""
    sent: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            sent.append(head.split(b" ")[1].decode())
            if len(sent) <= failures:
                break
            body = json.dumps({"person_id": "p-1"}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = ServiceReader(f"http://127.0.0.1:{port}")
    try:
        yield reader, sent
    finally:
        await reader.close()
        server.close()


@pytest.mark.asyncio
async def test_a_read_on_a_connection_the_service_closed_is_sent_once_more_and_answered() -> None:
    async with service_closing_first(failures=1) as (reader, sent):
        assert await reader.get_json("/people/p-1") == ("found", {"person_id": "p-1"})
        assert sent == ["/people/p-1", "/people/p-1"]


@pytest.mark.asyncio
async def test_a_service_that_closes_twice_is_unavailable_not_retried_for_good() -> None:
    async with service_closing_first(failures=2) as (reader, sent):
        assert await reader.get_json("/people/p-1") == ("unavailable", None)
        assert len(sent) == 2


def test_a_service_keeps_an_idle_connection_open_longer_than_a_reader_does() -> None:
    """If both gave up at the same moment, a reader could send on a connection the service is closing."""
    assert readers.IDLE_CONNECTION_SECONDS < service.KEEP_ALIVE_SECONDS


EXIT_AFTER_A_READ = """
import asyncio, logging, sys
logging.basicConfig(level=logging.INFO)
from shared import readers

async def main():
    async def serve(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
        await writer.drain()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    global used
    used = [readers.ServiceReader(f"http://127.0.0.1:{port}"), readers.PersonReader(f"http://127.0.0.1:{port}")]
    for reader in used:
        assert await reader.get_json("/x") == ("found", {})
    if sys.argv[1] == "close":
        await readers.close_all()  # what shared/service.py does at a service's stop

asyncio.run(main())
"""


@pytest.mark.parametrize("stop", ["close", "leave"])
def test_a_service_that_stops_leaves_no_reader_connection_open(stop: str) -> None:
    """aiohttp logs an unclosed session as an ERROR at exit; a stopping service closes every reader it made."""
    run = subprocess.run([sys.executable, "-c", EXIT_AFTER_A_READ, stop], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert ("Unclosed client session" in run.stderr) == (stop == "leave")  # the check sees one when there is one
