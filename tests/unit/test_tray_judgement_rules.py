"""Planned Work Tray rules of issue #22 §3 (R-T2, R-T3, R-T5), pure: practitioners' review contacts, the
removal note, Duty's urgent actions, the RAG by professional judgement and the next review set by hand."""

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.allocation import domain
from services.allocation.domain import Case
from shared.commands import allocation as cmd
from shared.commands.base import RuleBroken
from shared.events.allocation import MessageRequested

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
PERSON = "00000000-0000-4000-8000-000000000001"
TEAM = "locality-north"
TM = {"worker_id": "tm1", "roles": ["team_manager"], "team_ids": [TEAM]}
SW = {"worker_id": "sw1", "roles": ["locality_social_worker"], "team_ids": [TEAM]}
GSO = {"worker_id": "gso1", "roles": ["gso"], "team_ids": [TEAM]}
ADMIN = {"worker_id": "bs1", "roles": ["business_support"], "team_ids": [TEAM]}


def ctx(actor: dict[str, Any] = TM) -> domain.Context:
    counter = itertools.count(1)
    return domain.Context(now=NOW, actor=domain.Actor.of(cmd.Actor.model_validate(actor)),
                          ids=(str(uuid.UUID(int=next(counter))) for _ in itertools.count()))


def command(type_: str, actor: dict[str, Any] = TM, **data: Any) -> Any:
    return cmd.COMMANDS[type_].model_validate({"actor": actor, **data})


def placing(**overrides: Any) -> Any:
    return command("tray.add", TM, **{"person_id": PERSON, "team_id": TEAM, "rationale": "No worker free",
                                      "priority": "medium", "complexity": "low", "support": "moderate",
                                      "risk": "moderate", **overrides})


def placed(**overrides: Any) -> domain.TrayEntry:
    entry = domain.tray_add(ctx(), Case(PERSON), placing(**overrides)).entry
    assert entry is not None
    return entry


def codes(fn: Any, *args: Any) -> list[tuple[str, str | None]]:
    with pytest.raises(RuleBroken) as caught:
        fn(*args)
    return [(r.code, r.field) for r in caught.value.reasons]


# --- R-T5 review contacts by the team's practitioners ------------------------------------------

@pytest.mark.parametrize("worker", [SW, GSO], ids=["locality social worker", "generic support officer"])
def test_R_T5_a_practitioner_of_the_team_records_a_review_and_the_placing_tm_and_named_tl_are_notified(
        worker: dict[str, Any]) -> None:
    entry = placed()
    decision = domain.tray_review(ctx(worker), entry, command(
        "tray.review", worker, entry_id=entry.entry_id, contacted=True, note="Spoke to her", notify_worker_ids=["tl1"]))
    [note] = decision.case_notes
    assert (note.title, note.type) == ("PWT", "PWT")
    assert {"tm1", "tl1"} <= set(note.notify_worker_ids)


def test_R_T5_a_practitioner_of_another_team_or_a_non_practitioner_may_not_review() -> None:
    entry = placed()
    elsewhere = {**SW, "team_ids": ["locality-south"]}
    assert codes(domain.tray_review, ctx(elsewhere), entry, command(
        "tray.review", elsewhere, entry_id=entry.entry_id, contacted=True, note="x")) == [
        ("not_team_member", "actor.team_ids")]
    assert codes(domain.tray_review, ctx(ADMIN), entry, command(
        "tray.review", ADMIN, entry_id=entry.entry_id, contacted=True, note="x")) == [("role", "actor.roles")]


def test_R_T6_increased_risk_flagged_by_a_practitioner_goes_to_the_tmtl_not_straight_to_the_ssm() -> None:
    entry = placed()
    decision = domain.tray_review(ctx(SW), entry, command("tray.review", SW, entry_id=entry.entry_id,
                                                          contacted=True, note="x", increased_risk=True))
    assert [type(e).__name__ for e in decision.events] == ["TrayEntryReviewed"]
    assert "a Team Manager or Team Leader decides on escalation" in decision.case_notes[0].text


# --- removal: a Management Discussion / Decision note ------------------------------------------

def test_removal_writes_a_management_discussion_decision_note_with_who_why_and_when() -> None:
    entry = placed()
    decision = domain.tray_remove(ctx(), entry, command("tray.remove", entry_id=entry.entry_id,
                                                        reason="Needs met by the family"))
    [note] = decision.case_notes
    assert (note.title, note.type) == ("PWT removal", "Management Discussion / Decision")
    assert "by tm1 on 03/06/2024 11:00" in note.text and "Reason: Needs met by the family" in note.text


# --- R-T2 urgent actions done by Duty ----------------------------------------------------------

def test_R_T2_urgent_referral_is_placed_only_after_duty_records_the_urgent_actions() -> None:
    urgent = Case(PERSON, urgency="urgent")
    assert codes(domain.tray_add, ctx(), urgent, placing()) == [("urgent", "person_id")]
    done = domain.record_urgent_actions(ctx(SW), urgent, command("urgent_actions.record", SW, person_id=PERSON,
                                                                 note="Carer found; district nurse visiting"))
    assert done.urgent_actions_done == (NOW, "sw1")
    assert done.case_notes[0].title == "Urgent actions done (Duty)"
    acted = replace(urgent, urgent_actions_done_at=NOW, urgent_actions_done_by="sw1")
    assert domain.tray_add(ctx(), acted, placing()).entry is not None
    assert codes(domain.tray_add, ctx(), acted, placing(urgent=True)) == [("urgent", "urgent")]


def test_R_T2_urgent_actions_are_recorded_by_duty_once_and_only_for_an_urgent_referral() -> None:
    note = {"person_id": PERSON, "note": "done"}
    assert codes(domain.record_urgent_actions, ctx(GSO), Case(PERSON, urgency="urgent"),
                 command("urgent_actions.record", GSO, **note)) == [("role", "actor.roles")]
    assert codes(domain.record_urgent_actions, ctx(), Case(PERSON, urgency="routine"),
                 command("urgent_actions.record", **note)) == [("not_urgent", "person_id")]
    assert codes(domain.record_urgent_actions, ctx(), Case(PERSON, urgency="urgent", urgent_actions_done_at=NOW),
                 command("urgent_actions.record", **note)) == [("duplicate", "person_id")]


# --- R-T3 RAG by professional judgement --------------------------------------------------------

def test_R_T3_a_rag_other_than_the_matrix_is_kept_with_who_why_and_the_matrix_rating() -> None:
    decision = domain.tray_add(ctx(), Case(PERSON), placing(rag_override="Red",
                                                            rag_override_reason="Lives alone; falls at night"))
    entry = decision.entry
    assert entry is not None
    assert (entry.rag, entry.matrix_rag, entry.rag_overridden_by) == ("red", "amber", "tm1")
    assert entry.next_review_at == domain.next_review_at("red", NOW)  # reviewed weekly, as Red
    added = decision.events[0]
    assert (added.rag, added.matrix_rag, added.rag_override_reason) == (  # type: ignore[attr-defined]
        "red", "amber", "Lives alone; falls at night")
    assert "the matrix gives amber; professional judgement: Lives alone" in decision.case_notes[0].text


def test_R_T3_an_override_needs_its_reason_and_a_reason_needs_an_override() -> None:
    assert codes(domain.tray_add, ctx(), Case(PERSON), placing(rag_override="red")) == [
        ("invalid", "rag_override_reason")]
    assert codes(domain.tray_add, ctx(), Case(PERSON), placing(rag_override_reason="why")) == [
        ("invalid", "rag_override")]


def test_R_T3_each_review_rates_afresh_by_the_matrix_unless_it_overrides() -> None:
    entry = placed(rag_override="red", rag_override_reason="Lives alone")
    kept = domain.tray_review(ctx(SW), entry, command("tray.review", SW, entry_id=entry.entry_id, contacted=True,
                                                      note="x", rag_override="red",
                                                      rag_override_reason="Still alone")).entry
    assert kept is not None and (kept.rag, kept.rag_override_reason, kept.rag_overridden_by) == (
        "red", "Still alone", "sw1")
    matrix = domain.tray_review(ctx(SW), entry, command("tray.review", SW, entry_id=entry.entry_id, contacted=True,
                                                        note="Daughter moved in")).entry
    assert matrix is not None and (matrix.rag, matrix.rag_override_reason) == ("amber", None)


def test_R_T4_a_rag_changed_at_a_review_sends_no_new_message_the_review_contact_tells_the_person() -> None:
    """Seed 004: the person is advised by their preferred method "where a case is added to the PWT"; each review is
    itself a contact, to "reassure the person that they continue to be in the PWT", so a review that changes the
    RAG (Amber to Red: contact weekly, not fortnightly) sends no second message (R-T4)."""
    placing_decision = domain.tray_add(ctx(), Case(PERSON), placing())
    assert [type(e) for e in placing_decision.events if isinstance(e, MessageRequested)] == [MessageRequested]
    entry = placing_decision.entry
    assert entry is not None and entry.rag == "amber"
    review = domain.tray_review(ctx(SW), entry, command("tray.review", SW, entry_id=entry.entry_id, contacted=True,
                                                        note="Carer gave notice", support="none", risk="high"))
    assert review.entry is not None and review.entry.rag == "red"
    assert [e for e in review.events if isinstance(e, MessageRequested)] == []


# --- R-T5 next review set by hand --------------------------------------------------------------

def test_R_T5_next_review_set_by_hand_moves_the_review_timer_with_the_reason() -> None:
    entry = placed()
    decision = domain.tray_set_next_review(ctx(SW), entry, command(
        "tray.set_next_review", SW, entry_id=entry.entry_id, next_review_on="2024-06-20",
        reason="Worker on leave until 19 June"))
    moved = decision.entry
    assert moved is not None
    assert moved.next_review_at == domain.next_review_by_hand_at(date(2024, 6, 20))
    assert (moved.next_review_reason, moved.next_review_set_by) == ("Worker on leave until 19 June", "sw1")
    [review_timer] = [t for t in decision.timers if t.key == f"tray-review:{entry.entry_id}"]
    assert review_timer.due_at == moved.next_review_at
    assert "Reason: Worker on leave until 19 June" in decision.case_notes[0].text


@pytest.mark.parametrize("day", ["2024-06-03", "2024-07-04"], ids=["today", "over a month ahead"])
def test_R_T5_next_review_by_hand_is_after_today_and_within_a_month(day: str) -> None:
    entry = placed()
    assert codes(domain.tray_set_next_review, ctx(), entry, command(
        "tray.set_next_review", entry_id=entry.entry_id, next_review_on=day, reason="x")) == [
        ("invalid", "next_review_on")]


def test_R_T5_a_review_returns_the_next_review_to_the_rag_schedule() -> None:
    entry = domain.tray_set_next_review(ctx(), placed(), command(
        "tray.set_next_review", entry_id=str(uuid.UUID(int=1)), next_review_on="2024-06-20", reason="x")).entry
    assert entry is not None
    reviewed = domain.tray_review(ctx(), entry, command("tray.review", entry_id=entry.entry_id, contacted=True,
                                                        note="x")).entry
    assert reviewed is not None and reviewed.next_review_reason is None
    assert reviewed.next_review_at == domain.next_review_at("amber", NOW)


# --- the desk's RAG guide (seed 004) -----------------------------------------------------------

def test_R_T3_the_desks_rag_guide_prints_the_allocation_matrix_and_every_high_risk_indicator() -> None:
    from services.web.trays import rag_guide

    guide = rag_guide()
    printed = {(support, risk): rag for support, row in guide["matrix"].items() for risk, rag in row.items()}
    assert printed == domain.RAG_MATRIX
    assert [s["value"] for s in guide["support"]] == ["none", "moderate", "full"]
    assert [r["value"] for r in guide["risk"]] == ["high", "moderate", "low"]
    assert len(guide["high_risk_indicators"]["items"]) == 13  # the guide's list, in full
