"""R-A3 locality team finder: the locality team of a postcode, from the table in `localities.yaml`.

Pure apart from `load`: a postcode is matched on its whole postcode, then its sector, then its
district (never a bare string prefix: "LE1" does not cover "LE11").
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.teams import team_name

DISTRICT = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
KEY = re.compile(rf"^(?P<district>{DISTRICT})(?: (?P<sector>[0-9])(?P<unit>[A-Z]{{2}})?)?$")
POSTCODE = re.compile(r"^[A-Z0-9]{2,7}$")


def canonical(postcode: str) -> str | None:
    """Upper case with one space before the inward code ("le11aa" → "LE1 1AA"); None if not a postcode."""
    compact = re.sub(r"\s+", "", postcode or "").upper()
    if not POSTCODE.match(compact):
        return None
    if len(compact) >= 5 and compact[-3].isdigit():  # outward + inward (digit, two letters)
        return f"{compact[:-3]} {compact[-3:]}"
    return compact  # an outward code alone, e.g. "LE1"


def candidates(postcode: str) -> list[str]:
    """The keys a postcode can match, most precise first: whole postcode, sector, district."""
    found = canonical(postcode)
    if found is None:
        return []
    outward, _, inward = found.partition(" ")
    if not inward:
        return [outward]
    return [found, f"{outward} {inward[0]}", outward]


@dataclass(frozen=True)
class Match:
    """The locality team of a postcode and the key of the table that matched it."""

    team_id: str
    matched: str


@dataclass(frozen=True)
class Localities:
    """The team finder table: area key → locality team id, and each team's name."""

    areas: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def teams(self) -> frozenset[str]:
        """Every locality team; a team not among them is not checked by the finder."""
        return frozenset(self.names) | frozenset(self.areas.values())

    def find(self, postcode: str | None) -> Match | None:
        """The locality team whose area holds this postcode; None when no area does."""
        for key in candidates(postcode or ""):
            if key in self.areas:
                return Match(self.areas[key], key)
        return None

    def team_for(self, postcode: str | None) -> str | None:
        found = self.find(postcode)
        return found.team_id if found else None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Localities":
        """From `{teams: {team_id: {areas: [...]}}}` (names: shared/teams.yaml);
        a malformed key or one area in two teams is an error."""
        areas: dict[str, str] = {}
        names: dict[str, str] = {}
        for team_id, team in (data.get("teams") or {}).items():
            team = team or {}
            names[str(team_id)] = team_name(str(team_id))
            for raw in team.get("areas") or []:
                key = " ".join(str(raw).upper().split())
                if not KEY.match(key):
                    raise ValueError(f"locality area {raw!r} of team {team_id!r} is not a postcode district,"
                                     " sector or postcode")
                if areas.get(key, team_id) != team_id:
                    raise ValueError(f"locality area {key!r} is in two teams: {areas[key]!r} and {team_id!r}")
                areas[key] = str(team_id)
        return cls(areas, names)


def load(path: Path) -> Localities:
    return Localities.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
