"""R-C5: Adult Case Closure in Progress goes to the Adult Admin Team for the person's locality (seed 000 "Full
Case Closures": "based on where the person lives"), the pack's default admin team when the locality is unknown or
has none; a worker may still name another team; the pack's locality map names only known teams."""

from pathlib import Path

import pytest

from services.workflow.pack import PackError, load_packs
from tests.workflow_harness import Engine, actor

PROPOSED = "Adult Proposed Case Closure"
IN_PROGRESS = "Adult Case Closure in Progress"
GSO = actor("gso-1", "gso", teams=("wellbeing-service-hub",))


def sent_to(locality: str | None, **chosen: object) -> str:
    e = Engine(locality_team=locality)
    e.given_step(PROPOSED, GSO)
    step = e.only(PROPOSED)
    e.send("step.add_next_action", GSO, step_id=step.step_id, action=IN_PROGRESS, **chosen)
    [added] = e.steps[step.step_id].next_actions
    return added.assignee_id


def test_R_C5_closure_in_progress_goes_to_the_admin_team_of_the_persons_locality() -> None:
    assert sent_to("locality-north") == "adult-admin-north"
    assert sent_to("locality-west") == "adult-admin-west"
    assert sent_to(None) == "adult-admin"
    assert sent_to("a-specialist-team") == "adult-admin"
    assert sent_to("locality-north", assignee={"kind": "team", "id": "adult-admin-south"}) == "adult-admin-south"


def test_R_C5_a_locality_map_naming_an_unknown_team_is_refused(tmp_path: Path) -> None:
    shipped = Path("services/workflow/definitions")
    for pack in shipped.glob("*.yaml"):
        text = pack.read_text()
        if pack.name == "adult_closure.yaml":
            text = text.replace("locality-north: adult-admin-north", "locality-north: adult-admin-nowhere")
        (tmp_path / pack.name).write_text(text)
    with pytest.raises(PackError, match="team_by_locality"):
        load_packs(tmp_path)
