"""R-K9: the carers checklist a step with the `carers_checklist` rule must complete before it finishes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.workflow.domain.forms import is_empty
from services.workflow.domain.model import Context, Request, Step
from services.workflow.pack import CARERS_FIELD, CARERS_TABLE, YOUNG_CARER_REFERRAL, PackRegistry, StepDefinition
from shared.commands.base import Reason, reason

# R-K9: the named rule, and the assessment type that must be on the carer's own record.
CARERS_RULE = "carers_checklist"
SINGLE_CARERS_ASSESSMENT = "Single Carers Assessment"


def listed_carers(step: Step, defn: StepDefinition) -> tuple[str, ...]:
    """R-K9: the carers' own record ids the checklist lists, for the handler to look up."""
    if CARERS_RULE not in defn.rules:
        return ()
    rows = step.values.get(CARERS_TABLE)
    ids = [row.get("carer_person_id") for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []
    return tuple(sorted({i for i in ids if isinstance(i, str) and i}))


def carers_assessment_types(packs: PackRegistry) -> tuple[str, ...]:
    """R-K9: the step types that are a carer's own assessment (pack flag `carers_assessment`)."""
    return tuple(sorted(t for t in packs.step_types() if packs.step(t).carers_assessment))


def carers_blockers(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
) -> list[Reason]:
    """R-K9: for each carer row: offered yes/no; declined → a reason; accepted → joint or single;
    single → a carer's assessment on the carer's own record; a young carer → the referral to
    children's services sent. All at once."""
    if CARERS_RULE not in defn.rules:
        return []
    section = next((s.number for s in defn.form_sections for f in s.fields if f.key == CARERS_TABLE), None)
    raw = step.values.get(CARERS_TABLE)
    rows = [r if isinstance(r, Mapping) else {} for r in raw] if isinstance(raw, list) else []
    has = step.values.get(CARERS_FIELD)
    reasons: list[Reason] = []

    def block(message: str, at: str) -> None:
        reasons.append(reason("carers_checklist", f"{message} (R-K9)", section=section, field=at))

    if has is True and not rows:
        block("the person has informal carers: add each carer's details", CARERS_TABLE)
    if has is False and rows:
        block("the person is recorded as having no informal carers, yet carers are listed", CARERS_FIELD)
    assessed = ", ".join(carers_assessment_types(ctx.packs)) or "carer's assessment"
    young: list[str] = []
    for index, row in enumerate(rows):
        at = f"{CARERS_TABLE}[{index}]."
        name = str(row.get("carer_name") or f"the carer in row {index + 1}")
        offered, accepted, kind = row.get("assessment_offered"), row.get("offer_accepted"), row.get("assessment_type")
        if not isinstance(offered, bool):
            block(f"say whether a carer's assessment was offered to {name}", at + "assessment_offered")
        elif offered and not isinstance(accepted, bool):
            block(f"say whether {name} accepted the offer of a carer's assessment", at + "offer_accepted")
        elif offered and accepted is False and is_empty(row.get("reason_not_accepted")):
            block(f"{name} declined a carer's assessment: give the reason", at + "reason_not_accepted")
        elif offered and accepted and is_empty(kind):
            block(f"{name} accepted a carer's assessment: say whether joint or single", at + "assessment_type")
        elif offered and accepted and kind == SINGLE_CARERS_ASSESSMENT:
            carer = row.get("carer_person_id")
            if is_empty(carer):
                block(f"a single carer's assessment for {name} is on the carer's own record: link it",
                      at + "carer_person_id")
            elif carer not in ctx.case.carers_assessed:
                block(f"a single carer's assessment for {name} needs a separate {assessed} on the carer's"
                      " own record", at + "carer_person_id")
        if row.get("young_carer") is True:
            young.append(name)
    sent = any(r.name == YOUNG_CARER_REFERRAL and r.state in ("open", "completed") for r in requests)
    if young and not sent:
        reasons.append(reason("young_carer_referral", f"{', '.join(young)}: a young carer needs the"
                              f" {YOUNG_CARER_REFERRAL!r} request sent (R-K9)", section=section,
                              field=CARERS_TABLE))
    return reasons
