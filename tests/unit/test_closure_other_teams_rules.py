"""R-K1: a closure step names other teams' open involvement (relationships from allocation) as a warning; the
closing team's own involvement and the closing worker's are not named; a non-closure step names nothing."""

from dataclasses import replace

from services.workflow import domain
from tests.workflow_harness import Engine, actor

PROPOSED = "Adult Proposed Case Closure"
GSO = actor("gso-1", "gso", teams=("wellbeing-service-hub",))


def warned(e: Engine, step: domain.Step, *relationships: domain.Involvement, who: dict = GSO,
           unread: bool = False) -> list[str]:
    ctx = domain.Context(now=e.now, actor=domain.Actor(who["worker_id"], frozenset(who["roles"]),
                                                        frozenset(who["team_ids"])),
                         ids=iter(()), packs=e.packs, relationships=None if unread else relationships)
    return [w.message for w in domain.closure_warnings(ctx, step, e.packs.step(step.step_type))]


def test_R_K1_only_other_teams_involvement_is_named() -> None:
    e = Engine()
    e.given_step(PROPOSED, GSO)
    step = e.only(PROPOSED)
    [team, worker] = warned(e, step,
                            domain.Involvement("team", "wellbeing-service-hub"),
                            domain.Involvement("worker", "gso-1"),
                            domain.Involvement("worker", "sw-9", team_id="wellbeing-service-hub"),
                            domain.Involvement("team", "locality-north"),
                            domain.Involvement("worker", "ot-2", team_id="adult-day-service"))
    assert team.startswith("North Locality Team (Charnwood) (an open") and "R-K1" in team  # §9: by its name
    assert "'ot-2' for LBS Adult Day Service" in worker
    # a worker relationship made for no team names the worker unless it is the closer's own
    assert len(warned(e, step, domain.Involvement("worker", "sw-9"))) == 1


def test_R_K1_a_team_held_closure_step_is_the_teams_and_other_steps_name_nothing() -> None:
    e = Engine()
    e.given_step(PROPOSED, GSO)
    held = replace(e.only(PROPOSED), assignee_kind="team", assignee_id="adult-admin")
    business_support = actor("bs-1", "business_support")
    assert warned(e, held, domain.Involvement("team", "adult-admin"), who=business_support) == []
    assert len(warned(e, held, domain.Involvement("team", "wellbeing-service-hub"), who=business_support)) == 1
    e.given_step("WB Case Monitoring", GSO)
    assert warned(e, e.only("WB Case Monitoring"), domain.Involvement("team", "elsewhere")) == []


def test_R_K1_when_allocation_cannot_answer_the_closure_warning_says_involvement_was_not_checked() -> None:
    e = Engine()
    e.given_step(PROPOSED, GSO)
    [unknown] = warned(e, e.only(PROPOSED), unread=True)
    assert "could not be read just now" in unknown and "R-K1" in unknown
