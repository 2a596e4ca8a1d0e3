"""Reads of the other services over their HTTP endpoints; the web keeps no case data of its own."""

import asyncio
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from services.web.listing import WorkListing
from shared import bearer, readers
from shared.readers import ServiceReader

NAMES_BATCH = 200  # referrals' bound on one names read (GET /people/names)


class Unavailable(Exception):
    """A service that should answer did not; the page says which."""

    def __init__(self, service: str) -> None:
        super().__init__(f"the {service} service could not be read")
        self.service = service


class _Reader(ServiceReader):
    name = "a"

    async def get(self, path: str, default: Any = None, *, required: bool = False) -> Any:
        found, body = await self.get_json(path)
        if found == "found":
            return body
        if found == "unavailable" and required:
            raise Unavailable(self.name)
        return default


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class _KeepsAccessReasons(_Reader):
    async def access_reasons(self, person_id: str) -> list[dict[str, Any]] | None:
        """The break-glass reasons commands on the person were allowed on (who, when, which command, why), oldest
        first; None when the service does not answer (issue #21)."""
        return await self.get(f"/people/{q(person_id)}/access-reasons")


class Referrals(_KeepsAccessReasons):
    name = "referrals"

    async def person(self, person_id: str) -> dict[str, Any] | None:
        return await self.get(f"/people/{q(person_id)}", required=True)

    async def file(self, person_id: str) -> dict[str, Any] | None:
        """What the person page shows of referrals' in one read: `person` (the record), `notes`, `history` (who
        changed which fields, when), `referrals` (accepted, newest first) and `related_names`; None when the
        person is unknown."""
        return await self.get(f"/people/{q(person_id)}/file", required=True)

    async def by_nhs_number(self, nhs_number: str) -> list[dict[str, Any]]:
        return await self.get(f"/people?nhs_number={q(nhs_number)}", [])

    async def search(self, **criteria: str) -> dict[str, Any]:
        """People by name, date of birth and postcode: {"people": [...], "more": bool} (issue #22 §9)."""
        query = urllib.parse.urlencode({k: v for k, v in criteria.items() if v})
        return await self.get(f"/people/search?{query}", {"people": [], "more": False}, required=True)


class Workflow(_KeepsAccessReasons):
    name = "workflow"

    async def step(self, step_id: str) -> dict[str, Any] | None:
        return await self.get(f"/steps/{q(step_id)}", required=True)

    async def blockers(self, step_id: str, actor: dict[str, Any]) -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"worker_id": actor["worker_id"], "roles": ",".join(actor["roles"]),
                                        "team_ids": ",".join(actor["team_ids"])})
        return await self.get(f"/steps/{q(step_id)}/blockers?{query}")

    async def worker_work(self, worker_id: str, listing: WorkListing) -> dict[str, Any]:
        """A page of each bucket of the worker's work, sorted by workflow, with each bucket's total."""
        return await self.get(f"/workers/{q(worker_id)}/work?{listing.query()}", required=True)

    async def team_work(self, team_id: str, listing: WorkListing) -> dict[str, Any]:
        return await self.get(f"/teams/{q(team_id)}/work?{listing.query()}", required=True)

    async def awaiting_authorisation(self, kind: str, target_id: str) -> list[dict[str, Any]] | None:
        """Steps awaiting authorisation by the worker or team, with their open REQUIRED request."""
        return await self.get(f"/{kind}s/{q(target_id)}/awaiting-authorisation")

    async def person_steps(self, person_id: str, *, history: bool = False) -> list[dict[str, Any]]:
        """The person's steps; with `history`, each with its history, field labels and requests (a chronology)."""
        return await self.get(f"/people/{q(person_id)}/steps" + ("?history=true" if history else ""), [],
                              required=True)

    async def step_types(self) -> list[dict[str, Any]]:
        """The packs' step types; they change only when workflow is redeployed, so kept once read."""
        if not getattr(self, "_step_types", None):
            self._step_types: list[dict[str, Any]] = await self.get("/step-types", [], required=True)
        return self._step_types


class Allocation(_KeepsAccessReasons):
    name = "allocation"

    async def allocations(self, worker_id: str) -> list[dict[str, Any]]:
        return await self.get(f"/workers/{q(worker_id)}/allocations", [])

    async def relationships(self, person_id: str, include_ended: bool = False) -> dict[str, Any]:
        return await self.get(f"/people/{q(person_id)}/relationships"
                              + ("?include_ended=true" if include_ended else ""),
                              {"worker_relationships": [], "organisational_relationships": []})

    async def tray(self, team_id: str, **query: Any) -> dict[str, Any] | None:
        params = urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        return await self.get(f"/teams/{q(team_id)}/tray?{params}")

    async def tray_report(self, team_id: str) -> dict[str, Any] | None:
        return await self.get(f"/teams/{q(team_id)}/tray/report")

    async def entry(self, entry_id: str) -> dict[str, Any] | None:
        return await self.get(f"/tray/entries/{q(entry_id)}")

    async def trays_of_person(self, person_id: str) -> list[dict[str, Any]]:
        """The trays the person waits on now, each with its team: one person's entries, never a whole tray."""
        return await self.get(f"/people/{q(person_id)}/trays", [])

    async def waiting(self, person_id: str) -> dict[str, Any]:
        """R-T2: the referral's urgency and whether Duty has recorded the urgent actions done (`urgency`: None
        when allocation does not answer); R-T1: the person's open Planned Work Tray entries on the reader's teams
        (`planned_work`)."""
        return await self.get(f"/people/{q(person_id)}/waiting", {"urgency": None, "planned_work": []})


    async def review_tray(self, team_id: str) -> dict[str, Any] | None:
        """R-T8: the team's Review tray, soonest review first, each entry marked `due` and `overdue`."""
        return await self.get(f"/teams/{q(team_id)}/review-tray?limit=1000")

    async def review_entry(self, entry_id: str) -> dict[str, Any] | None:
        return await self.get(f"/review-tray/entries/{q(entry_id)}")


class Notifications(_Reader):
    name = "notifications"

    async def worker_inbox(self, worker_id: str, state: str | None = "open") -> list[dict[str, Any]] | None:
        return await self.get(f"/workers/{q(worker_id)}/inbox" + (f"?state={state}" if state else ""))

    async def team_inbox(self, team_id: str, state: str | None = "open") -> list[dict[str, Any]] | None:
        return await self.get(f"/teams/{q(team_id)}/inbox" + (f"?state={state}" if state else ""))

    async def about_person(self, person_id: str, worker_id: str, team_ids: list[str]) -> list[dict[str, Any]]:
        """The newest item about the person sent to the worker or their teams, in any state (or none)."""
        query = urllib.parse.urlencode({"worker_id": worker_id, "team_ids": ",".join(team_ids)})
        return await self.get(f"/people/{q(person_id)}/inbox?{query}", [])

    async def team_tasks(self, team_id: str) -> list[dict[str, Any]] | None:
        """The team's open tasks (issue #22 §1)."""
        return await self.get(f"/teams/{q(team_id)}/inbox?state=open&kind=task")


class Documents(_Reader):
    name = "documents"

    async def of_person(self, person_id: str) -> list[dict[str, Any]] | None:
        """Finished forms and uploads of the person, newest first; None when documents does not answer."""
        return await self.get(f"/people/{q(person_id)}/documents")

    async def pdf(self, document_id: str) -> tuple[int, bytes, str]:
        """The PDF's status, bytes and file name (from Content-Disposition) as the documents service sends it."""
        try:
            reply = await self.answer(f"/documents/{q(document_id)}.pdf")
        except readers.Unavailable:
            raise Unavailable(self.name) from None
        if reply.status >= 500:
            raise Unavailable(self.name)
        return reply.status, reply.body, reply.headers.get("content-disposition", "")


class Clocks(_Reader):
    name = "clocks"

    async def team_dashboard(self, team_id: str, days: int) -> dict[str, Any] | None:
        """The team's dashboard figures (R-CL7); None when the worker may not read them."""
        return await self.get(f"/teams/{q(team_id)}/dashboard?days={days}", required=True)

    async def service_dashboard(self, area_id: str, days: int) -> dict[str, Any] | None:
        return await self.get(f"/service-areas/{q(area_id)}/dashboard?days={days}", required=True)

    async def of_person(self, person_id: str) -> list[dict[str, Any]] | None:
        """The person's statutory clocks, newest first (R-CL5, R-CL6); None when the clocks service does not answer."""
        return await self.get(f"/people/{q(person_id)}/clocks")


@dataclass
class Readers:
    """One reader per service the web reads."""

    referrals: Referrals
    workflow: Workflow
    allocation: Allocation
    notifications: Notifications
    documents: Documents
    clocks: Clocks

    async def names(self, person_ids: set[str]) -> dict[str, str]:
        """person id → "First Last" for a page of work, read in batches of NAMES_BATCH (one read for a page);
        an id referrals does not know (or cannot answer for) maps to itself."""
        ids = sorted(p for p in person_ids if _is_uuid(p))
        batches = [ids[i:i + NAMES_BATCH] for i in range(0, len(ids), NAMES_BATCH)]
        with bearer.as_component():  # names beside items of work the worker already sees
            found = await asyncio.gather(*(self.referrals.get(f"/people/names?ids={','.join(b)}", {})
                                           for b in batches))
        names = {pid: pid for pid in person_ids}
        for batch in found:
            names.update({pid: name for pid, name in batch.items() if name})
        return names
