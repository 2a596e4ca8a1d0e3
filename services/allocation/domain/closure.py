"""R-A5: a fully closed case ends every involvement and leaves every tray."""

from datetime import date, datetime

from services.allocation.domain.model import LONDON, Case, Context, Decision
from services.allocation.domain.relationships import ended_org_relationship, ended_worker_relationship
from services.allocation.domain.review_trays import remove_from_review_tray
from services.allocation.domain.trays import remove_from_tray

CLOSURE_REASON = "case closed"


def closure_date(closed_at: datetime) -> date:
    """R-A5: the UK date the case was closed on, which becomes every relationship's end date."""
    return closed_at.astimezone(LONDON).date()


def close_case(ctx: Context, case: Case, closed_on: date) -> Decision:
    """R-A5: end every open worker and organisational relationship on the closure date, and take the person
    off their Planned Work Tray and Review tray, each as the manual end or removal records it (by the actor
    who closed the case, at `ctx.now`, reason "case closed").

    No role or team check: the closure itself was authorised by the workflow (R-C5, R-K1). A relationship
    starting after the closure date ends on its start date, so no end comes before its start. Nothing open,
    nothing changes (so a replayed closure has no second effect).
    """
    decision = Decision()
    for rel in case.open_worker_relationships:
        decision += ended_worker_relationship(ctx, rel, max(closed_on, rel.start_date), CLOSURE_REASON)
    for org in case.org_relationships:
        if org.ended_at is None:
            decision += ended_org_relationship(ctx, org, max(closed_on, org.start_date), CLOSURE_REASON)
    if case.open_entry is not None:
        decision += remove_from_tray(ctx, case.open_entry, CLOSURE_REASON)
    if case.open_review_entry is not None:
        decision += remove_from_review_tray(ctx, case.open_review_entry, CLOSURE_REASON)
    return decision
