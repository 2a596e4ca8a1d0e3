"""A read of another service survives a kept-alive connection closed under it, and no more than that."""

import httpx
import pytest

from shared import service
from shared.readers import ServiceReader


def _reader(failures: int) -> tuple[ServiceReader, list[str]]:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if len(sent) <= failures:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"person_id": "p-1"})

    return ServiceReader("http://referrals", transport=httpx.MockTransport(answer)), sent


@pytest.mark.asyncio
async def test_a_read_on_a_connection_the_service_closed_is_sent_once_more_and_answered() -> None:
    reader, sent = _reader(failures=1)
    assert await reader.get_json("/people/p-1") == ("found", {"person_id": "p-1"})
    assert sent == ["/people/p-1", "/people/p-1"]
    await reader.close()


@pytest.mark.asyncio
async def test_a_service_that_closes_twice_is_unavailable_not_retried_for_good() -> None:
    reader, sent = _reader(failures=2)
    assert await reader.get_json("/people/p-1") == ("unavailable", None)
    assert len(sent) == 2
    await reader.close()


def test_a_service_keeps_an_idle_connection_open_longer_than_a_reader_does() -> None:
    """If both gave up at the same moment, a reader could send on a connection the service is closing."""
    assert httpx.Limits().keepalive_expiry < service.KEEP_ALIVE_SECONDS
