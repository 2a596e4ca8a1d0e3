"""Service areas: which teams make up each area of the service, and its Strategic Service Managers' team."""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FILE = Path(__file__).with_name("service_areas.yaml")


@dataclass(frozen=True)
class ServiceArea:
    area_id: str
    name: str
    strategic_service_manager_team: str
    teams: tuple[str, ...]


def parse(data: Mapping[str, Any]) -> dict[str, ServiceArea]:
    return {str(area_id): ServiceArea(str(area_id), str(area.get("name") or area_id),
                                      str(area["strategic_service_manager_team"]),
                                      tuple(str(t) for t in area.get("teams") or ()))
            for area_id, area in (data.get("service_areas") or {}).items()}


@cache
def raw() -> dict[str, Any]:
    """shared/service_areas.yaml as read, once."""
    return yaml.safe_load(FILE.read_text()) or {}


def areas() -> dict[str, ServiceArea]:
    """The council's service areas."""
    return parse(raw())
