"""Pure rules of tasks (issue #22 §1): every system prompt becomes a task for a named worker or team, with who,
why, a link, a due time where one applies, and completion."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifications import domain
from services.notifications.domain import TeamDirectory
from shared.commands.base import RuleBroken
from shared.events.workflow import Assignee, RequestRaised

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
NORTH = Assignee(kind="team", id="wellbeing-service-north")


def overdue_request() -> domain.InboxItem:
    raised = RequestRaised(step_id="step-1", person_id="person-1", actor="hub-1", version=3, request_id="req-1",
                           step_type="WB Wellbeing Screening", name="(R) WB Please action", required=False,
                           to=NORTH, note=None, step_state="incomplete")
    item = domain.delivered(raised, sent_at=AT - timedelta(days=6), due_days=5)
    reminded = domain.remind(item, timer_due_at=item.due_at, now=AT)  # type: ignore[arg-type]
    assert reminded is not None
    return reminded


def test_R_S2_an_overdue_request_becomes_a_task_for_its_recipient_due_when_the_request_was():
    task = domain.overdue_request_task(overdue_request(), at=AT)
    assert (task.kind, task.state, task.recipient_kind, task.recipient_id) == ("task", "open", "team", NORTH.id)
    assert (task.person_id, task.step_id, task.task_code, task.rule) == (
        "person-1", "step-1", "request_overdue", "R-S2")
    assert task.name == "Overdue: (R) WB Please action"
    assert task.note == ("This request was sent on 27 November 2026 and was due by 2 December 2026."
                         " It is still waiting for you to complete it.")
    assert task.due_at == AT - timedelta(days=1) and task.subject == "request:req-1"


def test_R_S2_the_same_prompt_makes_the_same_task_whatever_message_carried_it():
    assert domain.overdue_request_task(overdue_request(), at=AT).request_id == \
        domain.overdue_request_task(overdue_request(), at=AT + timedelta(hours=1)).request_id


def test_R_T5_a_tray_review_note_asks_each_notified_worker_but_not_its_author():
    tasks = domain.case_note_tasks(note_id="n-1", person_id="p-1", title="PWT", note_type="PWT", author="worker:tl-1",
                                   notify_worker_ids=["tm-1", "tl-1", "tm-1"], at=AT)
    assert [(t.recipient_kind, t.recipient_id, t.rule, t.sent_by) for t in tasks] == [
        ("worker", "tm-1", "R-T5", "tl-1")]
    assert tasks[0].name == "Case note: PWT" and "Planned Work Tray review" in (tasks[0].note or "")
    assert tasks[0].step_id is None and tasks[0].due_at is None


def test_R_P3_another_case_note_tells_the_notified_worker_its_type_and_title():
    [task] = domain.case_note_tasks(note_id="n-2", person_id="p-1", title="Phone call", note_type="Case Note",
                                    author="sw-1", notify_worker_ids=["gso-1"], at=AT)
    assert (task.rule, task.name) == ("R-P3", "Case note: Phone call")
    assert task.note == 'sw-1 wrote a "Case Note" case note titled "Phone call" and notified you: read it on the' \
                        " person's record."


def test_R_K8_each_step_open_at_a_death_is_a_task_for_who_recorded_it_done_when_the_step_closes():
    tasks = domain.death_tasks(person_id="p-1", date_of_death=date(2026, 11, 30), actor="tm-1",
                               open_steps=[("s-1", "Care and Support Plan"), ("s-2", "Review Planning")], at=AT)
    assert [(t.recipient_id, t.step_id, t.subject, t.rule) for t in tasks] == [
        ("tm-1", "s-1", "step:s-1", "R-K8"), ("tm-1", "s-2", "step:s-2", "R-K8")]
    assert tasks[0].name == "Person has died: close Care and Support Plan"
    assert "30 November 2026" in (tasks[0].note or "")
    [done] = domain.settle(tasks[:1], codes=("open_step_after_death",), reason="step_finished", by="sw-1", at=AT)
    assert (done.state, done.closed_by, done.closed_at, done.closed_reason) == ("completed", "sw-1", AT,
                                                                                 "step_finished")


def test_R_K6_a_renewal_due_is_a_task_for_the_assignee_due_by_the_end_of_the_renewal_day():
    task = domain.renewal_task(step_id="s-1", person_id="p-1", step_type="Professional Support",
                               assignee=("worker", "sw-1"), renewal_due_date=date(2026, 12, 3), renewal_number=2,
                               next_renewal_date=date(2026, 12, 31), at=AT)
    assert (task.recipient_id, task.rule, task.name) == ("sw-1", "R-K6", "Renew or close Professional Support")
    assert task.due_at == datetime(2026, 12, 4, 0, 0, tzinfo=domain.LONDON)
    assert "every 4 weeks" in (task.note or "") and "3 December 2026" in (task.note or "")


def test_R_K3_each_warned_worker_is_asked_to_make_a_future_work_follow():
    tasks = domain.no_future_work_tasks(step_id="s-1", person_id="p-1", step_type="Care and Support Plan",
                                        warned_worker_ids=["sw-1", "tm-1"], at=AT)
    assert [(t.recipient_id, t.subject) for t in tasks] == [("sw-1", "person:p-1"), ("tm-1", "person:p-1")]
    assert "one of the workflows must lead to a Future Work" in (tasks[0].note or "")
    assert "no_future_work" not in (tasks[0].note or "")  # the guide's words, not the system's


def test_R_T6_an_escalation_goes_to_the_strategic_service_manager_team_of_the_teams_service_area():
    teams = TeamDirectory.from_mapping({
        "default": {"strategic_service_manager_team": "ssm-default"},
        "teams": {"north": {"number": "1"}},
        "service_areas": {"wellbeing": {"strategic_service_manager_team": "ssm-wellbeing", "teams": ["north"]}}},
        {"north": "Wellbeing Service North"})
    assert (teams.escalation_team("north"), teams.escalation_team("elsewhere")) == ("ssm-wellbeing", "ssm-default")
    task = domain.escalation_task(entry_id="e-1", person_id="p-1", team_name="Wellbeing Service North",
                                  to_team=teams.escalation_team("north"), reason="red_over_a_month",
                                  placed_at=AT - timedelta(days=40), key="e-1:red", actor="system", at=AT)
    assert (task.recipient_kind, task.recipient_id, task.rule) == ("team", "ssm-wellbeing", "R-T6")
    assert task.note is not None and task.note.startswith(
        "A Red case has been on the Planned Work Tray of Wellbeing Service North for over a month (since 24 October"
        " 2026).")


def test_R_T6_the_shipped_team_table_names_a_strategic_service_manager_team_for_every_tray_team():

    from services.notifications.settings import NotificationsSettings
    teams = NotificationsSettings().team_directory()
    assert teams.escalation_team("wellbeing-service-north") == "ssm-wellbeing"
    assert teams.escalation_team("adult-front-door") == "ssm-adult-social-care"
    assert {teams.escalation_team(t) for t in teams.teams} <= set(teams.teams)


def test_R_T5_an_unreachable_person_makes_a_safe_and_well_task_for_the_tray_team():
    task = domain.safe_and_well_task(entry_id="e-1", person_id="p-1", team_id="north", key="m-1", actor="tl-1",
                                     at=AT)
    assert (task.recipient_kind, task.recipient_id, task.name, task.subject) == (
        "team", "north", "Consider a safe and well check", "entry:e-1")


def test_R_RQ8_what_is_done_elsewhere_completes_only_open_tasks_of_the_kinds_it_answers():
    review = domain.tray_review_due_task(entry_id="e-1", person_id="p", team_id="north", rag="red", due_at=AT, at=AT)
    check = domain.safe_and_well_task(entry_id="e-1", person_id="p", team_id="north", key="m", actor="tl", at=AT)
    done = domain.settle([review, check], codes=("tray_review_due",), reason="reviewed", by="tl-1", at=AT)
    assert [d.request_id for d in done] == [review.request_id]
    assert domain.settle(done, codes=("tray_review_due",), reason="reviewed", by="tl-1", at=AT) == []


def test_R_RQ8_a_task_is_marked_done_by_its_worker_or_a_member_of_its_team_and_by_no_one_else():
    team_task = domain.safe_and_well_task(entry_id="e-1", person_id="p", team_id="north", key="m", actor="tl",
                                          at=AT)
    done = domain.complete_task(team_task, worker_id="gso-1", team_ids=["north"], at=AT)
    assert (done.state, done.closed_by, done.closed_at, done.closed_reason) == ("completed", "gso-1", AT, "done")
    with pytest.raises(RuleBroken) as refused:
        domain.complete_task(team_task, worker_id="gso-2", team_ids=["south"], at=AT)
    assert refused.value.code == "forbidden"
    with pytest.raises(RuleBroken) as again:
        domain.complete_task(done, worker_id="gso-1", team_ids=["north"], at=AT)
    assert again.value.code == "not_open"
    with pytest.raises(RuleBroken) as request:
        domain.complete_task(overdue_request(), worker_id="x", team_ids=[NORTH.id], at=AT)
    assert request.value.code == "not_found"  # a request is completed in workflow, not here


def test_R_A4_a_reassigned_step_takes_its_renewal_task_to_the_new_assignee_and_leaves_other_tasks():
    renewal = domain.renewal_task(step_id="s-1", person_id="p-1", step_type="Professional Support",
                                  assignee=("worker", "sw-1"), renewal_due_date=date(2026, 12, 3), renewal_number=2,
                                  next_renewal_date=date(2026, 12, 31), at=AT)
    [death] = domain.death_tasks(person_id="p-1", date_of_death=date(2026, 11, 30), actor="tm-1",
                                 open_steps=[("s-1", "Professional Support")], at=AT)
    withdrawn, moved = domain.follow_step([renewal, death], to=("worker", "sw-2"), by="tm-1", at=AT)
    assert [(w.request_id, w.state, w.closed_reason, w.closed_by) for w in withdrawn] == [
        (renewal.request_id, "withdrawn", "reassigned", "tm-1")]
    [new] = moved
    assert (new.recipient_id, new.state, new.name, new.due_at, new.subject) == (
        "sw-2", "open", renewal.name, renewal.due_at, renewal.subject)
    assert new.request_id != renewal.request_id
    assert domain.follow_step([renewal], to=("worker", "sw-1"), by="tm-1", at=AT) == ([], [])


def test_R_T5_a_second_unreached_review_does_not_ask_again_while_the_safe_and_well_check_is_open():
    first = domain.safe_and_well_task(entry_id="e-1", person_id="p", team_id="north", key="m-1", actor="tl", at=AT)
    second = domain.safe_and_well_task(entry_id="e-1", person_id="p", team_id="north", key="m-2", actor="tl", at=AT)
    assert domain.unless_already_open(second, [first]) == []
    [done] = domain.settle([first], codes=("safe_and_well_check",), reason="reviewed", by="tl", at=AT)
    assert domain.unless_already_open(second, [done]) == [second]
    other = domain.safe_and_well_task(entry_id="e-2", person_id="p", team_id="north", key="m-3", actor="tl", at=AT)
    assert domain.unless_already_open(other, [first]) == [other]


def test_R_CL6_a_clock_at_risk_then_breached_is_a_task_for_its_team_in_the_guides_terms():
    at = datetime(2024, 3, 4, tzinfo=UTC)
    warning = domain.clock_task(
        "clock_warning", clock_id="c1", title="Child and Family Assessment within 45 working days of referral",
        rule="R-CL3", person_id="p1", team_id="children-response", due_date=date(2024, 3, 11), days_before=5,
        unit="working_days", at=at)
    assert (warning.recipient_kind, warning.recipient_id, warning.subject) == ("team", "children-response", "clock:c1")
    assert warning.note == ("Child and Family Assessment within 45 working days of referral: due by 11 March 2024,"
                            " 5 working days from now. Act before it is breached.")
    assert warning.due_at == domain.end_of_day(date(2024, 3, 11)) and warning.rule == "R-CL3"
    breach = domain.clock_task(
        "clock_breached", clock_id="c1", title="t", rule="R-CL3", person_id="p1", team_id="children-response",
        due_date=date(2024, 3, 11), days_before=None, unit=None, at=at)
    assert breach.request_id != warning.request_id and breach.task_code == "clock_breached"
    assert breach.note == "t: it was due by 11 March 2024 and the work is not done."
