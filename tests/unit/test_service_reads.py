"""A read of another service survives a kept-alive connection closed under it, and no more than that."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
