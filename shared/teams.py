"""The council's teams by id and the name people know each by, from `teams.yaml` (the one catalogue)."""

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).parent / "teams.yaml"


@cache
def teams() -> Mapping[str, str]:
    """Every known team: id → display name, in the catalogue's order."""
    loaded = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8")) or {}
    return {str(team_id): str(name) for team_id, name in loaded.items()}


def team_name(team_id: str | None) -> str:
    """The name of a team; an id the catalogue does not know is shown as it is."""
    return teams().get(team_id or "", team_id or "")


def team_named(name: str) -> str | None:
    """The id of the team people know by this name; None when no team has it."""
    return next((team_id for team_id, known in teams().items() if known == name), None)


def is_known(team_id: str) -> bool:
    return team_id in teams()
