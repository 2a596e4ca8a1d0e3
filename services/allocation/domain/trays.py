"""R-T1..R-T7: the Planned Work Tray: placing a case, its RAG rating, reviews, escalation and removal."""

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Literal

from services.allocation.domain.model import (
    LONDON,
    Case,
    CaseNote,
    Context,
    Decision,
    Rag,
    Timer,
    TrayEntry,
    holds,
    locality_reasons,
    team_member_reasons,
    timer_key,
)
from services.allocation.domain.review_trays import remove_from_review_tray
from shared.actor import DUTY_ROLES, TRAY_REVIEW_ROLES, TRAY_ROLES, Actor
from shared.calendar import add_months
from shared.commands import allocation as cmd
from shared.commands.base import Reason, check, reason
from shared.events.allocation import (
    MessageRequested,
    SafeAndWellCheckRequested,
    TrayEntryAdded,
    TrayEntryEscalated,
    TrayEntryRemoved,
    TrayEntryReviewed,
    TrayNextReviewSet,
    TrayReviewDue,
    UrgentActionsRecorded,
)
from shared.events.base import Event

WAIT_TARGET_DAYS = 28
REVIEW_TIMER = "tray-review"
ESCALATION_TIMER = "tray-escalation"
# R-T3: support level x risk of harm
RAG_MATRIX: dict[tuple[str, str], Rag] = {
    ("none", "high"): "red", ("none", "moderate"): "red", ("none", "low"): "amber",
    ("moderate", "high"): "red", ("moderate", "moderate"): "amber", ("moderate", "low"): "green",
    ("full", "high"): "amber", ("full", "moderate"): "green", ("full", "low"): "green",
}
PWT_NOTE = "PWT"
MDD_NOTE = "Management Discussion / Decision"
CASE_NOTE = "Case Note"


def uk_time(moment: datetime) -> str:
    """A moment as people in the council read it: UK date and time."""
    return f"{moment.astimezone(LONDON):%d/%m/%Y %H:%M}"


def uk_date(day: date) -> str:
    return f"{day:%d/%m/%Y}"


# --- rules of time and rating -----------------------------------------------------------------


def rag_rating(support: str, risk: str) -> Rag:
    """R-T3: the RAG rating from support level x risk of harm."""
    return RAG_MATRIX[(support, risk)]


def rag_override_reasons(override: str | None, why: str | None) -> list[Reason]:
    """R-T3: a RAG chosen by professional judgement always comes with how the worker arrived at it."""
    if override is not None and why is None:
        return [reason("invalid", "say why the RAG differs from the matrix (professional judgement, R-T3)",
                       "rag_override_reason")]
    if override is None and why is not None:
        return [reason("invalid", "a reason for overriding the RAG needs the RAG chosen", "rag_override")]
    return []


def overridden(entry: TrayEntry, ctx: Context, override: Rag | None, why: str | None) -> TrayEntry:
    """The entry rated by the matrix, or by the worker's judgement (recorded: who, why, when) where it differs."""
    matrix = rag_rating(entry.support, entry.risk)
    if override is None or override == matrix:
        return replace(entry, rag=matrix, matrix_rag=matrix, rag_override_reason=None, rag_overridden_by=None,
                       rag_overridden_at=None)
    return replace(entry, rag=override, matrix_rag=matrix, rag_override_reason=why,
                   rag_overridden_by=ctx.actor.worker_id, rag_overridden_at=ctx.now)


def rag_words(entry: TrayEntry) -> str:
    """"RAG amber" or "RAG red (the matrix gives amber; professional judgement: …)" for a case note."""
    words = f"RAG {entry.rag}"
    if entry.rag_override_reason is not None:
        words += f" (the matrix gives {entry.matrix_rag}; professional judgement: {entry.rag_override_reason})"
    return words


def next_review_at(rag: Rag, after: datetime) -> datetime:
    """R-T5: Red at least weekly, Amber fortnightly, Green monthly (one calendar month)."""
    if rag == "red":
        return after + timedelta(days=7)
    if rag == "amber":
        return after + timedelta(days=14)
    return add_months(after, 1)


def escalation_due_at(placed_at: datetime) -> datetime:
    """R-T6: a Red case escalates once it has been on the tray for over a month."""
    return add_months(placed_at, 1)


def red_over_a_month(entry: TrayEntry, now: datetime) -> bool:
    """R-T6: Red and on the tray for more than one calendar month."""
    return entry.rag == "red" and now > escalation_due_at(entry.placed_at)


def escalation_reasons(entry: TrayEntry, now: datetime, *, increased_risk: bool, actor: Actor | None) -> list[str]:
    """R-T6: why an entry goes to the Strategic Service Manager now (empty: it does not)."""
    reasons = []
    if red_over_a_month(entry, now) and not entry.red_escalated:
        reasons.append("red_over_a_month")
    if increased_risk and actor is not None and actor.roles & TRAY_ROLES:
        reasons.append("increased_risk")
    return reasons


def days_waiting(placed_at: datetime, now: datetime) -> int:
    """R-T7: whole days since the case was placed on the tray."""
    return max(0, (now - placed_at).days)


def past_wait_target(placed_at: datetime, now: datetime) -> bool:
    """R-T7: nobody should wait more than 28 days for allocation to a named worker."""
    return days_waiting(placed_at, now) > WAIT_TARGET_DAYS


def tray_permission_reasons(actor: Actor, action: str) -> list[Reason]:
    """R-T1: only a Team Manager or Team Leader places or removes tray entries."""
    if actor.roles & TRAY_ROLES:
        return []
    return [reason("role", f"only a Team Manager or Team Leader may {action} (R-T1)", "actor.roles")]


def review_permission_reasons(actor: Actor, action: str) -> list[Reason]:
    """R-T5: the team's social care workers and their managers make the check-in contacts."""
    if holds(actor, TRAY_REVIEW_ROLES):
        return []
    return [reason("role", f"only the team's practitioners and managers may {action} (R-T5)", "actor.roles")]


def tray_eligibility_reasons(case: Case, *, urgent: bool) -> list[Reason]:
    """R-T2: urgent cases are actioned from Duty, and people not ordinarily resident are not placed.

    A person referred as urgent may be placed once Duty has recorded that the urgent actions are done.
    """
    reasons = []
    if urgent:
        reasons.append(reason("urgent", "an urgent case is actioned from Duty, not placed on a tray (R-T2)",
                              "urgent"))
    elif case.urgency == "urgent" and case.urgent_actions_done_at is None:
        reasons.append(reason("urgent", "the referral is urgent: Duty must record that the urgent actions are done"
                                        " before the case is placed on a tray (R-T2)", "person_id"))
    if case.ordinarily_resident is False:
        reasons.append(reason("not_ordinarily_resident",
                              "the person is not ordinarily resident: another authority is responsible (R-T2)",
                              "person_id"))
    return reasons


# --- commands and timers ----------------------------------------------------------------------


def _timers(entry: TrayEntry) -> tuple[tuple[Timer, ...], tuple[str, ...]]:
    """The review timer always; the escalation timer only while Red and not yet escalated."""
    payload = {"entry_id": entry.entry_id, "person_id": entry.person_id}
    timers = [Timer(timer_key(REVIEW_TIMER, entry.entry_id), entry.next_review_at, payload)]
    cancelled: list[str] = []
    if entry.rag == "red" and not entry.red_escalated:
        timers.append(Timer(timer_key(ESCALATION_TIMER, entry.entry_id), escalation_due_at(entry.placed_at),
                            payload))
    else:
        cancelled.append(timer_key(ESCALATION_TIMER, entry.entry_id))
    return tuple(timers), tuple(cancelled)


def tray_add(ctx: Context, case: Case, command: cmd.AddToTray) -> Decision:
    """R-T1..R-T4: placed by a TM/TL with rationale, a "PWT" note, RAG, review timers, the person told."""
    reasons = tray_permission_reasons(ctx.actor, "place a case on a Planned Work Tray")
    reasons += team_member_reasons(ctx.actor, command.team_id, "place a case on its Planned Work Tray")
    reasons += tray_eligibility_reasons(case, urgent=command.urgent)
    reasons += rag_override_reasons(command.rag_override, command.rag_override_reason)
    reasons += locality_reasons(ctx, command.team_id)
    if case.open_entry is not None:
        reasons.append(reason("duplicate", f"the person is already on the tray of team {case.open_entry.team_id}",
                              "person_id"))
    check(reasons)
    matrix = rag_rating(command.support, command.risk)
    rated = overridden(TrayEntry(
        entry_id=next(ctx.ids), person_id=case.person_id, team_id=command.team_id, priority=command.priority,
        urgent=command.urgent, complexity=command.complexity, support=command.support, risk=command.risk,
        rag=matrix, rationale=command.rationale, placed_at=ctx.now, placed_by=ctx.actor.worker_id,
        next_review_at=next_review_at(matrix, ctx.now),
    ), ctx, command.rag_override, command.rag_override_reason)
    rag = rated.rag
    entry = replace(rated, next_review_at=next_review_at(rag, ctx.now))  # reviews follow the RAG chosen
    added = TrayEntryAdded(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, priority=command.priority,
        complexity=command.complexity, support=command.support, risk=command.risk, rag=rag,
        placed_at=ctx.now, next_review_at=entry.next_review_at, actor=ctx.actor.worker_id,
        matrix_rag=entry.matrix_rag, rag_override_reason=entry.rag_override_reason)
    told = MessageRequested(person_id=entry.person_id, team_id=entry.team_id, reason="pwt_added",
                            channel=ctx.channel, team_contact_number=ctx.team_contact_number,
                            entry_id=entry.entry_id)
    note = CaseNote(
        entry.person_id, PWT_NOTE, MDD_NOTE,
        f"Placed on the Planned Work Tray of team {entry.team_id}. Rationale: {command.rationale}\n"
        f"Priority {command.priority}, complexity {command.complexity}, {rag_words(entry)} "
        f"(support {command.support}, risk of harm {command.risk}). "
        f"Next review by {entry.next_review_at.date().isoformat()}.",
        (ctx.actor.worker_id,))
    timers, cancelled = _timers(entry)
    decision = Decision(events=(added, told), entry=entry, new_entry=True, case_notes=(note,), timers=timers,
                        cancelled_timers=cancelled)
    if case.open_review_entry is not None:  # R-T8: its review is being acted on now
        decision += remove_from_review_tray(ctx, case.open_review_entry, "placed on the Planned Work Tray")
    return decision


def _open(entry: TrayEntry | None) -> TrayEntry:
    if entry is None or not entry.is_open:
        check([reason("not_on_tray", "the entry is no longer on the tray", "entry_id")])
    assert entry is not None
    return entry


def _version(entry: TrayEntry, expected: int | None) -> list[Reason]:
    if expected is not None and expected != entry.version:
        return [reason("conflict", f"the entry is at version {entry.version}, not {expected}", "expected_version")]
    return []


def tray_review(ctx: Context, entry: TrayEntry | None, command: cmd.ReviewTrayEntry) -> Decision:
    """R-T5, R-T6: a review contact ("PWT" note, TM/TL notified) may change priority, complexity or RAG.

    Each review rates the case afresh: the matrix, unless this review's worker overrides it (R-T3).
    """
    entry = _open(entry)
    reasons = (review_permission_reasons(ctx.actor, "record a review of a case on the Planned Work Tray")
               + team_member_reasons(ctx.actor, entry.team_id, "review a case on its Planned Work Tray")
               + rag_override_reasons(command.rag_override, command.rag_override_reason)
               + _version(entry, command.expected_version))
    check(reasons)
    support, risk = command.support or entry.support, command.risk or entry.risk
    rated = overridden(replace(entry, support=support, risk=risk), ctx, command.rag_override,
                       command.rag_override_reason)
    rag = rated.rag
    reviewed = replace(
        rated, priority=command.priority or entry.priority, complexity=command.complexity or entry.complexity,
        next_review_at=next_review_at(rag, ctx.now), review_overdue=False, next_review_reason=None,
        next_review_set_by=None, next_review_set_at=None,
        reviews=entry.reviews + 1, last_reviewed_at=ctx.now, last_contacted=command.contacted,
        version=entry.version + 1)
    event = TrayEntryReviewed(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, contacted=command.contacted,
        priority=reviewed.priority, complexity=reviewed.complexity, support=support, risk=risk, rag=rag,
        previous_rag=entry.rag, increased_risk=command.increased_risk, next_review_at=reviewed.next_review_at,
        version=reviewed.version, actor=ctx.actor.worker_id, matrix_rag=reviewed.matrix_rag,
        rag_override_reason=reviewed.rag_override_reason)
    changes = [f"{what} {old} → {new}" for what, old, new in (
        ("priority", entry.priority, reviewed.priority), ("complexity", entry.complexity, reviewed.complexity),
        ("RAG", entry.rag, rag)) if old != new]
    text = (f"Planned Work Tray review ({'person contacted' if command.contacted else 'person NOT contacted'}). "
            f"{command.note}\n" + (f"Changed: {', '.join(changes)}. " if changes else "No change to priority, "
                                   "complexity or RAG. ")
            + f"{rag_words(reviewed)}. "
            + ("Increased risk of harm flagged: a Team Manager or Team Leader decides on escalation. "
               if command.increased_risk and not ctx.actor.roles & TRAY_ROLES else "")
            + f"Next review by {reviewed.next_review_at.date().isoformat()}.")
    # R-T5: a TM/TL is notified of every review: the one who placed the case, and those the worker names
    notify = tuple(sorted({entry.placed_by, ctx.actor.worker_id, *command.notify_worker_ids}))
    events: list[Event] = [event]
    if not command.contacted:
        events.append(SafeAndWellCheckRequested(entry_id=entry.entry_id, person_id=entry.person_id,
                                                team_id=entry.team_id, actor=ctx.actor.worker_id))
    decision = Decision(events=tuple(events), entry=reviewed,
                        case_notes=(CaseNote(entry.person_id, PWT_NOTE, PWT_NOTE, text, notify),))
    for why in escalation_reasons(reviewed, ctx.now, increased_risk=command.increased_risk, actor=ctx.actor):
        decision += _escalate(ctx, decision.entry or reviewed, why)  # type: ignore[arg-type]
    timers, cancelled = _timers(decision.entry or reviewed)
    return decision + Decision(timers=timers, cancelled_timers=cancelled)


def _escalate(ctx: Context, entry: TrayEntry, why: Literal["red_over_a_month", "increased_risk"]) -> Decision:
    """R-T6: to the Strategic Service Manager, recorded as a Management Discussion / Decision note."""
    escalated = replace(entry, escalated_at=ctx.now,
                        red_escalated=entry.red_escalated or why == "red_over_a_month")
    event = TrayEntryEscalated(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                               reason=why, rag=entry.rag, placed_at=entry.placed_at, actor=ctx.actor.worker_id)
    because = ("a Red case has waited on the Planned Work Tray for over a month"
               if why == "red_over_a_month" else "a Team Manager / Team Leader flagged increased risk of harm")
    text = (f"Escalated to the Strategic Service Manager: {because}. On the tray of team {entry.team_id} since "
            f"{entry.placed_at.date().isoformat()} ({days_waiting(entry.placed_at, ctx.now)} days), RAG {entry.rag}, "
            f"priority {entry.priority}, complexity {entry.complexity}.")
    note = CaseNote(entry.person_id, "PWT escalation to Strategic Service Manager", MDD_NOTE, text,
                    tuple(sorted({entry.placed_by})))
    return Decision(events=(event,), entry=escalated, case_notes=(note,))


def tray_remove(ctx: Context, entry: TrayEntry | None, command: cmd.RemoveFromTray) -> Decision:
    """A TM/TL takes a case off the tray with a reason; its timers are cancelled."""
    entry = _open(entry)
    check(tray_permission_reasons(ctx.actor, "remove a case from a Planned Work Tray")
           + team_member_reasons(ctx.actor, entry.team_id, "remove a case from its Planned Work Tray")
           + _version(entry, command.expected_version))
    return remove_from_tray(ctx, entry, command.reason) + Decision(case_notes=(removal_note(ctx, entry,
                                                                                           command.reason),))


def removal_note(ctx: Context, entry: TrayEntry, why: str) -> CaseNote:
    """Seed 004 "Reviewing the PWT": taking a case off the tray is a Management Discussion / Decision note."""
    text = (f"Removed from the Planned Work Tray of team {entry.team_id} by {ctx.actor.worker_id} on "
            f"{uk_time(ctx.now)}. Reason: {why}\nOn the tray since {uk_date(entry.placed_at.astimezone(LONDON).date())}"
            f" ({days_waiting(entry.placed_at, ctx.now)} days), {rag_words(entry)}, priority {entry.priority}, "
            f"complexity {entry.complexity}, {entry.reviews} review(s).")
    return CaseNote(entry.person_id, "PWT removal", MDD_NOTE, text, (entry.placed_by,))


def remove_from_tray(ctx: Context, entry: TrayEntry, why: str) -> Decision:
    removed = replace(entry, removed_at=ctx.now, removed_reason=why, version=entry.version + 1)
    event = TrayEntryRemoved(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id, reason=why,
                             days_waiting=days_waiting(entry.placed_at, ctx.now), actor=ctx.actor.worker_id)
    return Decision(events=(event,), entry=removed, cancelled_timers=(
        timer_key(REVIEW_TIMER, entry.entry_id), timer_key(ESCALATION_TIMER, entry.entry_id)))


def timer_due(ctx: Context, entry: TrayEntry | None, key: str, due_at: datetime) -> Decision:
    """A review timer marks the review overdue; an escalation timer escalates a Red entry (R-T5, R-T6).

    A timer that no longer matches the entry (removed, reviewed since, no longer Red) does nothing.
    """
    kind, _, _ = key.partition(":")
    if entry is None or not entry.is_open:
        return Decision()
    if kind == REVIEW_TIMER:
        if entry.review_overdue or due_at != entry.next_review_at:
            return Decision()
        overdue = replace(entry, review_overdue=True, version=entry.version + 1)
        return Decision(events=(TrayReviewDue(entry_id=entry.entry_id, person_id=entry.person_id,
                                              team_id=entry.team_id, rag=entry.rag, due_at=due_at),),
                        entry=overdue)
    if kind == ESCALATION_TIMER:
        # the timer fires at one month; "over a month" holds by then on the scheduler's clock
        if entry.rag != "red" or entry.red_escalated or due_at != escalation_due_at(entry.placed_at):
            return Decision()
        decision = _escalate(ctx, entry, "red_over_a_month")
        assert decision.entry is not None
        return replace(decision, entry=replace(decision.entry, version=entry.version + 1))
    return Decision()


# --- the review date by hand, and Duty's urgent actions --------------------------------------------


def next_review_by_hand_at(day: date) -> datetime:
    """R-T5: a review date chosen by hand falls due at the start of that day, UK time (aware)."""
    return datetime.combine(day, time(0), tzinfo=LONDON)


def tray_set_next_review(ctx: Context, entry: TrayEntry | None, command: cmd.SetTrayNextReview) -> Decision:
    """R-T5: the next review moved by hand (worker absence, change of circumstances), with the reason.

    Any day after today up to a month ahead: the person is contacted at least monthly.
    """
    entry = _open(entry)
    today = ctx.now.astimezone(LONDON).date()
    latest = add_months(datetime.combine(today, time(0)), 1).date()
    reasons = (review_permission_reasons(ctx.actor, "set the next review of a case on the Planned Work Tray")
               + team_member_reasons(ctx.actor, entry.team_id, "set the next review of a case on its tray")
               + _version(entry, command.expected_version))
    if not today < command.next_review_on <= latest:
        reasons.append(reason("invalid", f"the next review must be after today and no later than {uk_date(latest)}:"
                                         " the person is contacted at least monthly (R-T5)", "next_review_on"))
    check(reasons)
    moved = replace(entry, next_review_at=next_review_by_hand_at(command.next_review_on), review_overdue=False,
                    next_review_reason=command.reason, next_review_set_by=ctx.actor.worker_id,
                    next_review_set_at=ctx.now, version=entry.version + 1)
    event = TrayNextReviewSet(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
        next_review_at=moved.next_review_at, previous_next_review_at=entry.next_review_at, reason=command.reason,
        version=moved.version, actor=ctx.actor.worker_id)
    note = CaseNote(entry.person_id, "PWT next review date", CASE_NOTE,
                    f"Next Planned Work Tray review set to {uk_date(command.next_review_on)} (was "
                    f"{uk_date(entry.next_review_at.astimezone(LONDON).date())}) by {ctx.actor.worker_id}. "
                    f"Reason: {command.reason}", (entry.placed_by,))
    timers, cancelled = _timers(moved)
    return Decision(events=(event,), entry=moved, case_notes=(note,), timers=timers, cancelled_timers=cancelled)


def record_urgent_actions(ctx: Context, case: Case, command: cmd.RecordUrgentActionsDone) -> Decision:
    """R-T2: Duty records that an urgent referral's urgent actions are done; the case may then go on a tray."""
    reasons = []
    if not holds(ctx.actor, DUTY_ROLES):
        reasons.append(reason("role", "only Duty's social workers and managers record that the urgent actions are"
                                      " done (R-T2)", "actor.roles"))
    if case.urgency != "urgent":
        reasons.append(reason("not_urgent", "the person's latest referral is not urgent: there are no urgent"
                                            " actions to record", "person_id"))
    elif case.urgent_actions_done_at is not None:
        reasons.append(reason("duplicate", f"the urgent actions were recorded as done on "
                                           f"{uk_time(case.urgent_actions_done_at)}", "person_id"))
    check(reasons)
    event = UrgentActionsRecorded(person_id=case.person_id, note=command.note, recorded_at=ctx.now,
                                  actor=ctx.actor.worker_id)
    note = CaseNote(case.person_id, "Urgent actions done (Duty)", CASE_NOTE,
                    f"The urgent and immediate actions of the urgent referral were recorded as done by "
                    f"{ctx.actor.worker_id} on {uk_time(ctx.now)}: {command.note}")
    return Decision(events=(event,), case_notes=(note,), urgent_actions_done=(ctx.now, ctx.actor.worker_id))
