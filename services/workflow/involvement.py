"""The person's open relationships, read from allocation (GET /people/{id}/relationships) where a workflow rule
needs them: R-W13 (who may log Case Monitoring activity) and R-K1 (other teams' involvement named at closure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from services.workflow import domain
from shared.readers import ServiceReader


async def open_relationships(allocation: ServiceReader, person_id: object) -> tuple[domain.Involvement, ...] | None:
    """The open worker and organisational relationships; None when allocation cannot answer."""
    found, body = await allocation.get_json(f"/people/{person_id}/relationships")
    if found != "found" or not isinstance(body, dict):
        return None
    workers = [domain.Involvement("worker", str(r.get("worker_id")), r.get("team_id"))
               for r in body.get("worker_relationships", []) if r.get("open", r.get("end_date") is None)]
    teams = [domain.Involvement("team", str(r.get("team_id")))
             for r in body.get("organisational_relationships", []) if _org_open(r)]
    return tuple(workers + teams)


def _org_open(relationship: dict[str, Any]) -> bool:
    """An organisational relationship runs until its end date (allocation still shows it a while after)."""
    end = relationship.get("end_date")
    return end is None or str(end) > domain.london_date(datetime.now(UTC)).isoformat()


async def locality_team(allocation: ServiceReader, person: dict[str, Any] | None) -> str | None:
    """R-C5: the person's locality team by allocation's team finder (R-A3); None when unknown. Only the postcode
    district is sent (the finder's areas are districts), never the whole postcode."""
    postcode = ((person or {}).get("address") or {}).get("postcode")
    district = str(postcode).split()[0].upper() if postcode and str(postcode).split() else None
    if district is None:
        return None
    found, body = await allocation.get_json(f"/localities/team?postcode={quote(district)}")
    team = body.get("team_id") if found == "found" and isinstance(body, dict) else None
    return team if isinstance(team, str) else None
