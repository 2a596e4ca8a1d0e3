"""R-K11: a signed-off statement of need, support plan or review goes to the person — the workflow names who sends
it on step.finished, and notifications makes that a task in their inbox (seed 001 §3.3, §6.3.1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.notifications import domain as notifications
from services.workflow.domain.finishing import document_worker
from services.workflow.pack import PackRegistry
from shared.events.workflow import Assignee
from tests.workflow_harness import Engine, actor, shipped_packs

SW = actor("sw", "social_worker", teams=("adult-review",))
TM = actor("tm", "team_manager", teams=("adult-review",))
TWR = "Telephone Wellbeing Review"
REVIEW_REQUEST = "REQUIRED Please review Assessment/Statement of Need/Review and confirm Outcomes"


def test_R_K11_the_documents_that_go_to_the_person_are_the_son_the_plan_and_the_reviews() -> None:
    packs: PackRegistry = shipped_packs()
    sent = {t for t in packs.step_types() if packs.step(t).sent_to_person}
    assert sent == {"Statement of Need", "Care and Support Plan", "Initial Review", "Planned Short Review", TWR}


def test_R_K11_finishing_a_signed_off_review_names_its_worker_to_send_it() -> None:
    sender = signed_off_twr()
    assert sender is not None
    assert (sender.kind, sender.id) == ("worker", "sw")  # type: ignore[attr-defined]


def test_R_K11_the_task_asks_the_worker_to_send_it_in_the_guides_words_once() -> None:
    at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    task = notifications.send_to_person_task(step_id="s1", person_id="p1", step_type="Care and Support Plan",
                                             to=("worker", "sw"), signed_off_by="tm", at=at)
    again = notifications.send_to_person_task(step_id="s1", person_id="p1", step_type="Care and Support Plan",
                                              to=("worker", "sw"), signed_off_by="tm", at=at)
    assert task.request_id == again.request_id  # a redelivered step.finished makes no second task
    assert (task.recipient_kind, task.recipient_id, task.task_code, task.rule, task.step_id) == (
        "worker", "sw", "send_to_person", "R-K11", "s1")
    assert task.name == "Send the Care and Support Plan to the person"
    assert "signed off on 3 December 2026" in (task.note or "") and "significant others" in (task.note or "")


def signed_off_twr(held_by: dict[str, str] | None = None) -> object:
    """The social worker's TWR sent for sign-off (then handed to `held_by`, if given); the team manager signs it
    off: whom step.finished names to send it to the person."""
    e = Engine()
    sid = e.given_step(TWR, SW).created[0].step_id
    e.send("step.save", SW, step_id=sid, values={
        "has_informal_carers": False, "carers": [], "review_date": "2024-06-03", "review_summary": "By phone",
        "annual_review_date": "2025-04-01"})
    e.send("step.add_next_action", SW, step_id=sid, action="No further action – other workflow continues (NFA)")
    request = e.send("step.send_request", SW, step_id=sid, name=REVIEW_REQUEST,
                     to={"kind": "worker", "id": "tm"}).requests[0]
    if held_by is not None:
        e.send("step.assign", SW, step_id=sid, to=held_by)
    e.send("request.complete", TM, request_id=request.request_id)
    [finished] = [ev for ev in e.send("step.authorise", TM, step_id=sid).events if type(ev).TYPE == "step.finished"]
    return finished.send_to_person


def test_R_K11_a_review_waiting_with_the_team_at_sign_off_goes_to_the_worker_who_sent_it_not_the_team() -> None:
    """Seed 001 §6.3.1: the worker sends the review out; a team inbox is nobody's task list."""
    sender = signed_off_twr({"kind": "team", "id": "adult-review"})
    assert (sender.kind, sender.id) == ("worker", "sw")  # type: ignore[attr-defined]




def test_R_K11_a_team_held_document_never_sent_for_sign_off_goes_to_the_worker_who_last_worked_on_it() -> None:
    """Every shipped document needs its sign-off request (R-RQ3), yet a pack may ship one without: the worker who
    last changed it before it was finished sends it, never the team; changed last by the system, its finisher."""
    e = Engine()
    step = e.given_step(TWR, SW).created[0]
    held = replace(step, assignee_kind="team", assignee_id="adult-review", updated_by="sw")
    assert document_worker(held, [], "tm") == Assignee(kind="worker", id="sw")
    assert document_worker(replace(held, updated_by="system:scheduler"), [], "tm") == Assignee(kind="worker", id="tm")
