"""One catalogue names every team (shared/teams.yaml): the packs, allocation's team finder, notifications' numbers
and the desk's accounts name only teams it knows, and the desk shows its names (issue #22 §9)."""

from pathlib import Path

import yaml

from services.allocation.localities import load as load_localities
from services.workflow.pack.loader import load_packs
from shared.teams import team_name, teams

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalogue_names_the_wellbeing_teams_the_guide_names():
    assert team_name("wellbeing-service-south") == "Wellbeing Service South"
    assert team_name("wellbeing-service-hub") == "Wellbeing Service Hub Team"
    assert team_name("nowhere") == "nowhere"  # an id the catalogue does not know is shown as it is


def test_every_team_a_shipped_file_names_is_in_the_catalogue():
    packs = load_packs(ROOT / "services/workflow/definitions")
    localities = load_localities(ROOT / "services/allocation/localities.yaml")
    numbers = yaml.safe_load((ROOT / "services/notifications/teams.yaml").read_text())
    users = yaml.safe_load((ROOT / "services/web/users.yaml").read_text())
    named = (set(packs.teams) | localities.teams | set(numbers["teams"])
             | {t for u in users for t in u["teams"]})
    assert named - set(teams()) == set()
    assert packs.teams["wellbeing-service-south"] == "Wellbeing Service South"
    assert localities.names["locality-city"] == "City Locality Team"


def test_roles_are_said_as_people_say_them():
    from shared.actor import role_name, roles_in_words
    assert roles_in_words(["senior_officer"]) == "Senior Officer"
    assert roles_in_words(["team_manager", "head_of_service"]) == "Team Manager or Head of Service"
    assert role_name("response_social_worker") == "Response Social Worker"  # a pack's own role
