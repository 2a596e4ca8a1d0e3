"""HTTP read of a person's steps from the workflow service."""

from services.allocation.domain import Step
from shared.readers import ServiceReader


class WorkReader(ServiceReader):
    """A person's steps from the workflow service (`GET /people/{id}/steps`)."""

    async def steps(self, person_id: str) -> list[Step] | None:
        found, body = await self.get_json(f"/people/{person_id}/steps")
        if found == "missing":
            return []
        if found != "found" or not isinstance(body, list):
            return None
        return [Step.from_json(item) for item in body if isinstance(item, dict) and "step_id" in item]
