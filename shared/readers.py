"""Reads of another service's records over its HTTP endpoints (never its database)."""

import importlib.util
import logging
import sys
from typing import Any, Literal

import httpx

from shared import metrics
from shared.bearer import BearerAuth

log = logging.getLogger(__name__)

# httpcore asks for sniffio on every lock, event and cancel shield it sets up (several for each request), and
# anyio no longer brings sniffio: each ask was a failed import searching sys.path again (~27 µs, a fifth of the
# desk's CPU on the person page; encode/httpcore#1103). Noting its absence once makes the import fail at once;
# httpcore then takes asyncio, the only loop Tessera runs.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]
Found = Literal["found", "missing", "unavailable"]


class Unavailable(ConnectionError):
    """The other service did not answer usefully: transient, so a handler's message is retried."""


class ServiceReader:
    """GETs JSON from one service; tells a missing record from an unreachable service."""

    def __init__(self, base_url: str, timeout: float = 2.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def get_json(self, path: str) -> tuple[Found, Any]:
        found, body = await self._get_json(path)
        metrics.READS.labels(path.split("?")[0].strip("/").split("/")[0], found).inc()
        return found, body

    async def _get_json(self, path: str) -> tuple[Found, Any]:
        if self._client is None:
            self._client = self.client()
        try:
            response = await self._get(path)
        except httpx.HTTPError as exc:
            log.warning("read from another service failed",
                        extra={"service_url": self._base_url, "error": type(exc).__name__})
            return "unavailable", None
        if response.status_code in (404, 422):  # 422: not even a valid id
            return "missing", None
        if response.status_code != 200:
            return "unavailable", None
        try:
            return "found", response.json()
        except ValueError:
            return "unavailable", None

    async def _get(self, path: str) -> httpx.Response:
        """A GET, sent once more on a new connection when a kept-alive one was closed before any answer: a GET is
        safe to repeat, and a service that restarts closes its idle connections."""
        assert self._client is not None
        try:
            return await self._client.get(path)
        except httpx.RemoteProtocolError:
            return await self._client.get(path)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout, transport=self._transport,
                                 auth=BearerAuth())

    async def require_json(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, None when there is none; Unavailable when it cannot be read now."""
        found, body = await self.get_json(path)
        if found == "missing":
            return None
        if found == "unavailable" or not isinstance(body, dict):
            raise Unavailable(f"{self._base_url} could not be read")
        return body

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class PersonReader(ServiceReader):
    """A person record from the referrals service (`GET /people/{id}`). Never logged."""

    STARTS_PER_READ = 100  # what `GET /referrals/starts` answers at most
    READ_AHEAD_KEPT = 1000

    def __init__(self, base_url: str, timeout: float = 2.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, timeout, transport)
        self._read_ahead: dict[str, dict[str, Any]] = {}

    async def get(self, person_id: str) -> tuple[Found, dict[str, Any] | None]:
        found, body = await self.get_json(f"/people/{person_id}")
        if found == "found" and not isinstance(body, dict):
            return "unavailable", None
        return found, body

    async def record(self, person_id: str) -> dict[str, Any] | None:
        """The record, or None when it cannot be read for any reason."""
        return (await self.get(person_id))[1]

    async def require(self, person_id: str) -> dict[str, Any] | None:
        """The record, None when there is no such person; Unavailable when referrals cannot answer."""
        return await self.require_json(f"/people/{person_id}")

    async def start(self, workflow_id: str) -> dict[str, Any] | None:
        """R-W5: the accepted referral that started the workflow and its person's record (`referral`, `person`);
        None when they cannot be read for any reason. Read ahead for a batch (`read_starts_ahead`), once."""
        ahead = self._read_ahead.pop(workflow_id, None)
        return ahead if ahead is not None else (await self.starts([workflow_id])).get(workflow_id)

    async def read_starts_ahead(self, workflow_ids: list[str]) -> None:
        """The starts of a batch's workflows in one read each hundred, for `start` to answer from memory once
        (batches of several partitions are read at once; what no handler asked for is forgotten beyond a
        thousand)."""
        read = await self.starts(workflow_ids)
        if len(self._read_ahead) + len(read) > self.READ_AHEAD_KEPT:
            self._read_ahead = {}
        self._read_ahead.update(read)

    async def starts(self, workflow_ids: list[str]) -> dict[str, dict[str, Any]]:
        """`start` of each workflow by id; one that cannot be read for any reason is left out."""
        read: dict[str, dict[str, Any]] = {}
        for first in range(0, len(workflow_ids), self.STARTS_PER_READ):
            chunk = ",".join(workflow_ids[first:first + self.STARTS_PER_READ])
            found, body = await self.get_json(f"/referrals/starts?workflow_ids={chunk}")
            if found == "found" and isinstance(body, dict):
                read.update((k, v) for k, v in body.items() if isinstance(v, dict))
        return read

    async def latest_referral(self, person_id: str) -> dict[str, Any] | None:
        """The person's latest accepted referral (`referral_id`, `accepted_at`, `referrer`), None when there is
        none; Unavailable when referrals cannot answer."""
        return await self.require_json(f"/people/{person_id}/referrer")
