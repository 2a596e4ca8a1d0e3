"""Review trays (R-T8) and the locality team finder (R-A3): pure rules, in microseconds."""

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from services.allocation import domain
from services.allocation.domain import Case
from services.allocation.localities import Localities, candidates, canonical, load
from shared.commands.base import RuleBroken
from shared.events.allocation import CaseAllocated, ReviewTrayEntryAdded, ReviewTrayEntryDue, ReviewTrayEntryRemoved
from tests.unit.test_allocation_domain import NOW, PERSON, SW, TL, TM, command, ctx, placed, refused, tray_add

ATM = {"worker_id": "atm1", "roles": ["assistant_team_manager"], "team_ids": ["locality-north"]}
IN_A_YEAR = date(2025, 6, 3)
TABLE = Localities.from_mapping({"teams": {
    "locality-city": {"name": "City", "areas": ["LE1", "le2", "LE11 9ZZ"]},
    "locality-north": {"name": "North", "areas": ["LE11", "LE12 7"]},
}})


def review_add(actor: dict = TM, **overrides) -> object:
    data = {"person_id": PERSON, "team_id": "locality-north", "review_due": IN_A_YEAR.isoformat(),
            "reason": "Respite booked from contingency; nothing needed until the annual review"}
    return command("review_tray.add", actor, **{**data, **overrides})


def in_review_tray(actor: dict = TM) -> domain.ReviewTrayEntry:
    decision = domain.review_tray_add(ctx(actor), Case(PERSON), review_add(actor))
    assert decision.review_entry is not None and decision.new_review_entry
    return decision.review_entry


def types(decision: domain.Decision) -> list[str]:
    return [type(e).TYPE for e in decision.events]  # type: ignore[attr-defined]


# --- R-T8 Review trays -------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [TM, TL, ATM])
def test_R_T8_a_manager_puts_a_case_in_the_review_tray_with_a_timer_at_the_review_date(actor) -> None:
    decision = domain.review_tray_add(ctx(actor), Case(PERSON), review_add(actor))
    [added] = decision.events
    assert isinstance(added, ReviewTrayEntryAdded) and added.review_due == IN_A_YEAR
    [timer] = decision.timers
    assert timer.key == f"review-tray:{added.entry_id}"
    assert timer.due_at == datetime(2025, 6, 3, 0, 0, tzinfo=domain.LONDON)  # start of the review date, UK time
    assert timer.payload == {"entry_id": added.entry_id, "person_id": PERSON}


def test_R_T8_only_a_tm_tl_or_atm_and_a_review_date_after_today() -> None:
    assert refused(domain.review_tray_add, ctx(SW), Case(PERSON), review_add(SW)) == ["role"]
    today = NOW.astimezone(domain.LONDON).date().isoformat()
    assert refused(domain.review_tray_add, ctx(), Case(PERSON), review_add(review_due=today)) == ["invalid"]


def test_R_T8_one_review_tray_entry_per_person_and_not_while_on_the_planned_work_tray() -> None:
    entry = in_review_tray()
    assert refused(domain.review_tray_add, ctx(), Case(PERSON, open_review_entry=entry), review_add()) == [
        "duplicate"]
    assert refused(domain.review_tray_add, ctx(), Case(PERSON, open_entry=placed()), review_add()) == ["duplicate"]


def test_R_T8_timer_due_marks_the_entry_due_once_and_it_stays_until_removed() -> None:
    entry = in_review_tray()
    fired = domain.review_tray_due_at(entry.review_due)
    later = datetime(2025, 6, 3, 0, 1, tzinfo=domain.LONDON)
    decision = domain.review_tray_timer_due(ctx(now=later), entry, fired)
    [due] = decision.events
    assert isinstance(due, ReviewTrayEntryDue) and due.review_due == IN_A_YEAR
    marked = decision.review_entry
    assert marked is not None and marked.is_open and marked.due_at == later and marked.version == 2
    assert domain.review_tray_due(marked, later) and not domain.review_tray_overdue(marked, later)
    assert domain.review_tray_overdue(marked, datetime(2025, 6, 5, tzinfo=domain.LONDON))
    assert domain.review_tray_timer_due(ctx(now=later), marked, fired).events == ()  # once
    assert not domain.review_tray_due(entry, NOW)


def test_R_T8_remove_cancels_the_timer_and_a_second_remove_is_refused() -> None:
    entry = in_review_tray()
    assert refused(domain.review_tray_remove, ctx(SW), entry,
                   command("review_tray.remove", SW, entry_id=entry.entry_id, reason="x")) == ["role"]
    decision = domain.review_tray_remove(ctx(ATM), entry, command("review_tray.remove", ATM, entry_id=entry.entry_id,
                                                                  reason="Moved to a care home out of county"))
    [removed] = decision.events
    assert isinstance(removed, ReviewTrayEntryRemoved) and removed.reason == "Moved to a care home out of county"
    assert decision.cancelled_timers == (f"review-tray:{entry.entry_id}",)
    gone = decision.review_entry
    assert gone is not None and not gone.is_open
    assert refused(domain.review_tray_remove, ctx(), gone,
                   command("review_tray.remove", entry_id=entry.entry_id, reason="again")) == ["not_on_tray"]
    stale = command("review_tray.remove", entry_id=entry.entry_id, reason="x", expected_version=7)
    assert refused(domain.review_tray_remove, ctx(), entry, stale) == ["conflict"]
    assert domain.review_tray_timer_due(ctx(), gone, domain.review_tray_due_at(entry.review_due)).events == ()


def test_R_T8_allocation_and_placing_on_the_pwt_take_the_case_out_of_the_review_tray() -> None:
    entry = in_review_tray()
    allocated = domain.allocate(ctx(), Case(PERSON, open_review_entry=entry), command(
        "case.allocate", person_id=PERSON, worker_id="sw1", team_id="locality-north"), [])
    assert types(allocated) == ["worker_relationship.added", "review_tray.entry_removed", "case.allocated"]
    event = allocated.events[-1]
    assert isinstance(event, CaseAllocated) and event.removed_review_entry_id == entry.entry_id
    assert allocated.review_entry is not None and allocated.review_entry.removed_reason == "allocated"
    on_pwt = domain.tray_add(ctx(), Case(PERSON, open_review_entry=entry), tray_add())
    assert types(on_pwt) == ["tray.entry_added", "message.requested", "review_tray.entry_removed"]
    assert f"review-tray:{entry.entry_id}" in on_pwt.cancelled_timers


# --- R-A3 locality team finder -----------------------------------------------------------------


@pytest.mark.parametrize(("postcode", "team", "matched"), [
    ("LE1 1AA", "locality-city", "LE1"),
    ("le11aa", "locality-city", "LE1"),
    ("LE2 3BB", "locality-city", "LE2"),
    ("LE11 2CD", "locality-north", "LE11"),   # "LE1" is a district, never a bare prefix of "LE11"
    ("LE11 9ZZ", "locality-city", "LE11 9ZZ"),  # a whole postcode beats its district
    ("LE12 7AB", "locality-north", "LE12 7"),
    ("LE12 8AB", None, None),
    ("LE15 6AA", None, None),
    ("NOT A POSTCODE!", None, None),
])
def test_R_A3_locality_team_finder_matches_postcode_sector_then_district(postcode, team, matched) -> None:
    found = TABLE.find(postcode)
    assert (found.team_id if found else None, found.matched if found else None) == (team, matched)


def test_R_A3_postcodes_are_made_canonical() -> None:
    assert canonical(" le1  1aa ") == "LE1 1AA" and canonical("LE11") == "LE11" and canonical("L£1") is None
    assert candidates("LE11 2CD") == ["LE11 2CD", "LE11 2", "LE11"]


def test_R_A3_a_malformed_area_or_an_area_in_two_teams_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a postcode"):
        Localities.from_mapping({"teams": {"t": {"areas": ["LE-1"]}}})
    with pytest.raises(ValueError, match="two teams"):
        Localities.from_mapping({"teams": {"a": {"areas": ["LE1"]}, "b": {"areas": ["le1"]}}})


def test_R_A3_the_shipped_table_loads_and_puts_the_test_postcode_in_a_locality_team() -> None:
    path = Path("services/allocation/localities.yaml")
    shipped = load(path)
    assert shipped.team_for("LE1 1AA") == "locality-city"  # tests/factories.py's postcode
    assert set(yaml.safe_load(path.read_text())["teams"]) == shipped.teams
    assert not any(t.startswith("wellbeing") for t in shipped.teams)


# a manager of every team these tests allocate to: only the locality rule is at stake here
AREA_TM = {"worker_id": "tm2", "roles": ["team_manager"],
           "team_ids": ["locality-city", "locality-north", "wellbeing-service-north"]}


def _located(team: str | None) -> domain.Context:
    context = ctx(AREA_TM)
    context.locality_team, context.locality_teams = team, TABLE.teams
    return context


def allocate_to(team: str, context: domain.Context) -> domain.Decision:
    return domain.allocate(context, Case(PERSON), command("case.allocate", person_id=PERSON, worker_id="sw1",
                                                          team_id=team), [])


def test_R_A3_allocation_to_another_locality_team_is_refused_naming_the_right_team() -> None:
    with pytest.raises(RuleBroken) as caught:
        allocate_to("locality-north", _located("locality-city"))
    [why] = caught.value.reasons
    assert (why.code, why.field) == ("wrong_locality", "team_id") and "locality-city" in why.message
    assert refused(domain.tray_add, _located("locality-city"), Case(PERSON), tray_add()) == ["wrong_locality"]


def test_R_A3_own_locality_non_locality_teams_and_unknown_addresses_are_allowed() -> None:
    assert allocate_to("locality-city", _located("locality-city")).worker_relationships
    assert allocate_to("wellbeing-service-north", _located("locality-city")).worker_relationships
    assert allocate_to("locality-north", _located(None)).worker_relationships  # address not in any area
    assert allocate_to("locality-north", ctx()).worker_relationships  # no finder table at all


def test_R_A3_wrong_locality_is_reported_with_every_other_reason() -> None:
    context = _located("locality-city")
    context.actor = domain.Actor("sw1", frozenset({"social_worker"}))
    with pytest.raises(RuleBroken) as caught:
        domain.allocate(context, Case(PERSON, ordinarily_resident=False), command(
            "case.allocate", SW, person_id=PERSON, worker_id="sw1", team_id="locality-north"), [])
    assert [r.code for r in caught.value.reasons] == ["role", "not_ordinarily_resident", "wrong_locality"]
