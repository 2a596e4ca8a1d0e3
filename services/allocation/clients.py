"""HTTP reads of other services' records: a person (referrals) and a person's steps (workflow)."""

import logging
from typing import Any, Literal

import httpx

from services.allocation.domain import Step

log = logging.getLogger(__name__)
Found = Literal["found", "missing", "unavailable"]


class _Reader:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def _get(self, path: str) -> tuple[Found, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout)
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as exc:
            log.warning("read from another service failed",
                        extra={"service_url": self._base_url, "error": type(exc).__name__})
            return "unavailable", None
        if response.status_code == 404:
            return "missing", None
        if response.status_code != 200:
            return "unavailable", None
        return "found", response.json()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class PersonReader(_Reader):
    """The person record from the referrals service: preferred contact, ordinary residence."""

    async def get(self, person_id: str) -> tuple[Found, dict[str, Any] | None]:
        found, body = await self._get(f"/people/{person_id}")
        return (found, body) if found != "found" or isinstance(body, dict) else ("unavailable", None)


class WorkReader(_Reader):
    """A person's steps from the workflow service (`GET /people/{id}/steps`)."""

    async def steps(self, person_id: str) -> list[Step] | None:
        found, body = await self._get(f"/people/{person_id}/steps")
        if found == "missing":
            return []
        if found != "found" or not isinstance(body, list):
            return None
        return [Step.from_json(item) for item in body if isinstance(item, dict) and "step_id" in item]
