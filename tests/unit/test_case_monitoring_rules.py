"""R-W13 WB Case Monitoring (seed 000): opened on creation; every involved worker adds activity rows; a row
keeps its author and nobody else changes or deletes it; other fields stay the step's assignee's."""

from __future__ import annotations

import pytest

from tests.workflow_harness import MONITORING, TA, Engine, Personas, actor, codes

P = Personas()
SOUTH = actor("gso-south", "gso", teams=("wellbeing-service-south",))
HUB_TEAM = {"kind": "team", "id": "wellbeing-service-hub"}


@pytest.fixture
def e() -> Engine:
    engine = Engine()
    engine.given_step(TA, P.hub, assignee={"kind": "team", "id": "wellbeing-service-north"})
    return engine


def monitoring(e: Engine) -> str:
    return e.given_step(MONITORING, P.hub, assignee=HUB_TEAM).created[0].step_id


def row(what: str, by: str | None = None) -> dict:
    return {"activity_datetime": "2024-06-04T10:00:00", "activity": what, **({"recorded_by": by} if by else {})}


def test_R_W13_case_monitoring_is_incomplete_from_creation_not_incoming(e: Engine) -> None:
    sid = monitoring(e)
    assert (e.steps[sid].state, e.steps[sid].assignee_id) == ("incomplete", "wellbeing-service-hub")


def test_R_W13_a_worker_involved_by_team_work_relationship_or_above_teams_adds_rows_as_themselves(
        e: Engine) -> None:
    sid = monitoring(e)
    e.send("step.save", P.ta, step_id=sid, values={"activity_log": [row("Call")]})  # the North team's TA step
    assert e.steps[sid].values["activity_log"] == [row("Call", "ta")]
    assert codes(e.refused("step.save", SOUTH, step_id=sid,
                           values={"activity_log": [row("Call", "ta"), row("Visit")]})) == ["not_assignee"]
    e.relationships.add("worker:gso-south")  # an involved worker recorded in allocation
    e.send("step.save", SOUTH, step_id=sid, values={"activity_log": [row("Call", "ta"), row("Visit")]})
    e.send("step.save", P.so, step_id=sid, values={"activity_log": [row("Call", "ta"), row("Visit", "gso-south"),
                                                                    row("Reviewed")]})
    assert [r["recorded_by"] for r in e.steps[sid].values["activity_log"]] == ["ta", "gso-south", "so"]


def test_R_W13_another_workers_row_is_neither_changed_nor_deleted_nor_forged_but_may_be_moved(e: Engine) -> None:
    sid = monitoring(e)
    e.send("step.save", P.ta, step_id=sid, values={"activity_log": [row("Call")]})
    ta_row = row("Call", "ta")
    for rows in ([row("No call", "ta")], [], [ta_row, row("Letter", "ta")]):
        assert set(codes(e.refused("step.save", P.hub, step_id=sid, values={"activity_log": rows}))) == {"not_your_row"}
    e.send("step.save", P.hub, step_id=sid, values={"activity_log": [row("Letter"), ta_row]})
    assert e.steps[sid].values["activity_log"] == [row("Letter", "hub"), ta_row]
    e.send("step.save", P.ta, step_id=sid, values={"activity_log": [row("Letter", "hub"), row("Call back", "ta")]})


def test_R_W13_an_involved_worker_writes_only_the_log(e: Engine) -> None:
    sid = monitoring(e)
    assert codes(e.refused("step.save", P.ta, step_id=sid, values={
        "activity_log": [row("Call")], "reason_involvement_ending": "Other"})) == ["not_assignee"]
