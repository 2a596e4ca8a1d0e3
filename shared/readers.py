"""Reads of another service's records over its HTTP endpoints (never its database)."""

import json
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from multidict import CIMultiDictProxy

from shared import metrics
from shared.bearer import Tokens

log = logging.getLogger(__name__)

Found = Literal["found", "missing", "unavailable"]
# a reader closes a connection idle this long, before the service would (shared/service.py KEEP_ALIVE_SECONDS):
# were it the other way round, a read could be sent on a connection the service is closing
IDLE_CONNECTION_SECONDS = 15.0


_open: "weakref.WeakSet[ServiceReader]" = weakref.WeakSet()  # readers holding connections, for `close_all`


class Unavailable(ConnectionError):
    """The other service did not answer usefully: transient, so a handler's message is retried."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: CIMultiDictProxy[str]


class ServiceReader:
    """GETs JSON from one service; tells a missing record from an unreachable service.

    Over aiohttp: its client parses HTTP in C, and a read costs the desk a quarter of the CPU it cost over httpx
    (0.7 against 2.9 ms, eight reads at a time against a FastAPI service; docs/profile.md, nineteenth session).
    A GET that meets a kept-alive connection closed under it is sent once more on a new one (aiohttp does it for
    idempotent methods: a service that restarts closes its idle connections); a second failure is final."""

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._tokens = Tokens()
        self._session: aiohttp.ClientSession | None = None

    async def get_json(self, path: str) -> tuple[Found, Any]:
        found, body = await self._get_json(path)
        metrics.READS.labels(path.split("?")[0].strip("/").split("/")[0], found).inc()
        return found, body

    async def _get_json(self, path: str) -> tuple[Found, Any]:
        try:
            reply = await self.answer(path)
        except Unavailable:
            return "unavailable", None
        if reply.status in (404, 422):  # 422: not even a valid id
            return "missing", None
        if reply.status != 200:
            return "unavailable", None
        try:
            return "found", json.loads(reply.body)
        except ValueError:
            return "unavailable", None

    async def answer(self, path: str) -> Answer:
        """The service's answer to a GET of `path`, whatever its status; Unavailable when none came."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_SECONDS),
                cookie_jar=aiohttp.DummyCookieJar())  # the desk reads for many workers: nothing kept between reads
            _open.add(self)
        authorization = self._tokens.authorization()
        headers = {"Authorization": authorization} if authorization else {}
        try:
            async with self._session.get(self._base_url + path, headers=headers, allow_redirects=False) as response:
                return Answer(response.status, await response.read(), response.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("read from another service failed",
                        extra={"service_url": self._base_url, "error": type(exc).__name__})
            raise Unavailable(f"{self._base_url} could not be read") from None

    async def require_json(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, None when there is none; Unavailable when it cannot be read now."""
        found, body = await self.get_json(path)
        if found == "missing":
            return None
        if found == "unavailable" or not isinstance(body, dict):
            raise Unavailable(f"{self._base_url} could not be read")
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        _open.discard(self)


async def close_all() -> None:
    """Close every reader's connections: a service's stop (an aiohttp session left open is an error at exit)."""
    for reader in list(_open):
        await reader.close()


class PersonReader(ServiceReader):
    """A person record from the referrals service (`GET /people/{id}`). Never logged."""

    STARTS_PER_READ = 100  # what `GET /referrals/starts` answers at most
    READ_AHEAD_KEPT = 1000

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        super().__init__(base_url, timeout)
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
