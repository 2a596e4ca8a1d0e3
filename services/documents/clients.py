"""HTTP read of a step from the workflow service, as docs/contracts.md fixes it."""

from typing import Any

from shared.readers import ServiceReader


class StepReader(ServiceReader):
    """`GET /steps/{id}` of the workflow service."""

    async def get(self, step_id: str) -> dict[str, Any] | None:
        return await self.require_json(f"/steps/{step_id}")
