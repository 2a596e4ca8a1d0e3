"""R-T8: a case whose next review is rescheduled waits in its team's Review tray until the review falls due."""

from dataclasses import replace
from datetime import date, datetime, time

from services.allocation.domain.model import (
    LONDON,
    REVIEW_TRAY_ROLES,
    Case,
    Context,
    Decision,
    ReviewTrayEntry,
    Timer,
    team_member_reasons,
    timer_key,
)
from shared.commands import allocation as cmd
from shared.commands.base import check, reason
from shared.events.allocation import (
    ReviewTrayEntryAdded,
    ReviewTrayEntryDue,
    ReviewTrayEntryRemoved,
    ReviewTrayEntryRescheduled,
)
from shared.events.workflow import StepRescheduled

REVIEW_TRAY_TIMER = "review-tray"


def review_tray_due_at(review_due: date) -> datetime:
    """R-T8: the Review tray timer fires at the start of the review date, UK time (aware)."""
    return datetime.combine(review_due, time(0), tzinfo=LONDON)


def review_tray_due(entry: ReviewTrayEntry, now: datetime) -> bool:
    """Due once its timer fired or its review date has come (UK date)."""
    return entry.due_at is not None or entry.review_due <= now.astimezone(LONDON).date()


def review_tray_overdue(entry: ReviewTrayEntry, now: datetime) -> bool:
    """Still in the Review tray after its review date has passed."""
    return entry.review_due < now.astimezone(LONDON).date()


def review_tray_add(ctx: Context, case: Case, command: cmd.AddToReviewTray) -> Decision:
    """R-T8: a case whose next review is rescheduled waits in the team's Review tray until it is due."""
    reasons = []
    if not ctx.actor.roles & REVIEW_TRAY_ROLES:
        reasons.append(reason("role", "only a Team Manager, Team Leader or Assistant Team Manager may put a case"
                                      " in a Review tray (R-T8)", "actor.roles"))
    reasons += team_member_reasons(ctx.actor, command.team_id, "put a case in its Review tray")
    if command.review_due <= ctx.now.astimezone(LONDON).date():
        reasons.append(reason("invalid", "the review date must be after today", "review_due"))
    if case.open_review_entry is not None:
        reasons.append(reason("duplicate", "the person is already in the Review tray of team "
                                           f"{case.open_review_entry.team_id}", "person_id"))
    if case.open_entry is not None:
        reasons.append(reason("duplicate", "the person is waiting on the Planned Work Tray of team "
                                           f"{case.open_entry.team_id}: take them off it first", "person_id"))
    check(reasons)
    return _add_to_review_tray(ctx, case, command.team_id, command.review_due, command.reason)


def _add_to_review_tray(ctx: Context, case: Case, team_id: str, review_due: date, why: str) -> Decision:
    entry = ReviewTrayEntry(entry_id=next(ctx.ids), person_id=case.person_id, team_id=team_id,
                            review_due=review_due, reason=why, added_at=ctx.now, added_by=ctx.actor.worker_id)
    event = ReviewTrayEntryAdded(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                                 review_due=entry.review_due, reason=entry.reason, added_at=ctx.now,
                                 actor=ctx.actor.worker_id)
    timer = Timer(timer_key(REVIEW_TRAY_TIMER, entry.entry_id), review_tray_due_at(entry.review_due),
                  {"entry_id": entry.entry_id, "person_id": entry.person_id})
    return Decision(events=(event,), review_entry=entry, new_review_entry=True, timers=(timer,))


def review_tray_remove(ctx: Context, entry: ReviewTrayEntry | None,
                       command: cmd.RemoveFromReviewTray) -> Decision:
    """R-T8: a TM, TL or ATM takes a case out of the Review tray with a reason; its timer is cancelled."""
    if entry is None or not entry.is_open:
        check([reason("not_on_tray", "the entry is no longer in the Review tray", "entry_id")])
    assert entry is not None
    reasons = []
    if not ctx.actor.roles & REVIEW_TRAY_ROLES:
        reasons.append(reason("role", "only a Team Manager, Team Leader or Assistant Team Manager may take a case"
                                      " out of a Review tray (R-T8)", "actor.roles"))
    reasons += team_member_reasons(ctx.actor, entry.team_id, "take a case out of its Review tray")
    if command.expected_version is not None and command.expected_version != entry.version:
        reasons.append(reason("conflict", f"the entry is at version {entry.version}, not {command.expected_version}",
                              "expected_version"))
    check(reasons)
    return remove_from_review_tray(ctx, entry, command.reason)


def remove_from_review_tray(ctx: Context, entry: ReviewTrayEntry, why: str) -> Decision:
    removed = replace(entry, removed_at=ctx.now, removed_by=ctx.actor.worker_id, removed_reason=why,
                      version=entry.version + 1)
    event = ReviewTrayEntryRemoved(entry_id=entry.entry_id, person_id=entry.person_id, team_id=entry.team_id,
                                   review_due=entry.review_due, reason=why, actor=ctx.actor.worker_id)
    return Decision(events=(event,), review_entry=removed,
                    cancelled_timers=(timer_key(REVIEW_TRAY_TIMER, entry.entry_id),))


def review_tray_timer_due(ctx: Context, entry: ReviewTrayEntry | None, due_at: datetime) -> Decision:
    """R-T8: the review date came; the entry is marked due (once) and stays in the tray until acted on.

    A timer of an earlier review date (the review was rescheduled since) does nothing.
    """
    if entry is None or due_at != review_tray_due_at(entry.review_due):
        return Decision()
    return _mark_review_due(ctx, entry, due_at)


def _mark_review_due(ctx: Context, entry: ReviewTrayEntry | None, due_at: datetime) -> Decision:
    if entry is None or not entry.is_open or entry.due_at is not None:
        return Decision()
    marked = replace(entry, due_at=ctx.now, version=entry.version + 1)
    return Decision(events=(ReviewTrayEntryDue(entry_id=entry.entry_id, person_id=entry.person_id,
                                               team_id=entry.team_id, review_due=entry.review_due,
                                               due_at=due_at),), review_entry=marked)


def review_rescheduled(ctx: Context, case: Case, rescheduled: StepRescheduled) -> Decision:
    """R-T8 fed by the workflow: a person's next review (their future work) rescheduled to a later date.

    The case waits in the Review tray of the team the future work is assigned to, until the new date;
    an entry already there moves to that date and team. Nothing changes for future work assigned to a
    worker (the case is theirs, not a team's), nor while the case waits on a Planned Work Tray or is
    allocated. Rescheduled to today or earlier, the step is incoming work now: an open entry is due.
    """
    if rescheduled.state == "incoming":
        return _mark_review_due(ctx, case.open_review_entry, ctx.now)
    if rescheduled.assignee.kind != "team" or case.open_entry is not None or case.open_worker_relationships:
        return Decision()
    team_id, review_due = rescheduled.assignee.id, rescheduled.due_date
    why = f"Next review ({rescheduled.step_type}) rescheduled to {review_due.isoformat()}"
    entry = case.open_review_entry
    if entry is None:
        return _add_to_review_tray(ctx, case, team_id, review_due, why)
    if (entry.team_id, entry.review_due) == (team_id, review_due):
        return Decision()
    moved = replace(entry, team_id=team_id, review_due=review_due, reason=why, due_at=None,
                    version=entry.version + 1)
    event = ReviewTrayEntryRescheduled(
        entry_id=entry.entry_id, person_id=entry.person_id, team_id=team_id, review_due=review_due,
        previous_team_id=entry.team_id, previous_review_due=entry.review_due, reason=why, actor=ctx.actor.worker_id)
    timer = Timer(timer_key(REVIEW_TRAY_TIMER, entry.entry_id), review_tray_due_at(review_due),
                  {"entry_id": entry.entry_id, "person_id": entry.person_id})
    return Decision(events=(event,), review_entry=moved, timers=(timer,))
