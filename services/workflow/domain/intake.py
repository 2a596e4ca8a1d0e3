"""Referral intake: an accepted referral opens a workflow and its first step (docs/contracts.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.workflow.domain.model import Step, Workflow
from shared.calendar import london_date

# Team inbox of each first step of docs/contracts.md "Referral intake", used until the step's
# pack names a default team.
FIRST_STEP_TEAMS = {
    "WB Wellbeing Screening": "wellbeing-service-hub",
    "Adult Contact": "adult-front-door",
    "Adult Safeguarding Triage": "adult-safeguarding",
    "Adult Carer Triage": "adult-carers",
    "Child and Family Assessment and Plan": "children-response",
    "Significant Information on an Open Case": "children-response",
}


@dataclass(frozen=True)
class ReferralToStart:
    """What an accepted referral tells the workflow service."""

    referral_id: str
    person_id: str
    workflow_id: str
    first_step_type: str
    urgency: Literal["urgent", "normal"]
    cared_for_person_id: str | None = None
    received_date: str | None = None  # the London date the referral was received, when its record was read


def start_from_referral(
    referral: ReferralToStart, *, step_id: str, now: datetime, actor: str, pack_version: int,
    team: str | None = None,
) -> tuple[Workflow, Step]:
    """An accepted referral opens a workflow whose first step waits in the team's inbox."""
    workflow = Workflow(
        workflow_id=referral.workflow_id,
        person_id=referral.person_id,
        origin={"kind": "referral", "referral_id": referral.referral_id},
        started_at=now,
        started_by=actor,
    )
    step = Step(
        step_id=step_id,
        workflow_id=referral.workflow_id,
        person_id=referral.person_id,
        step_type=referral.first_step_type,
        pack_version=pack_version,
        state="incoming",
        assignee_kind="team",
        assignee_id=team or FIRST_STEP_TEAMS[referral.first_step_type],
        priority="urgent" if referral.urgency == "urgent" else "normal",
        created_at=now,
        created_by=actor,
        provenance={"rule": "referral intake", "referral_id": referral.referral_id,
                    "pack_version": pack_version,
                    # R-CL3: the assessment's clock counts from the day the referral was received
                    **({"received_date": referral.received_date} if referral.received_date else {})},
        linked_person_id=referral.cared_for_person_id,
    )
    return workflow, step


def referral_values(referral: Mapping[str, Any]) -> dict[str, Any]:
    """R-W5 (issue #22 §7): what the referral said, as yellow-cog fields read it (`referral.<name>`).

    The date received is the Europe/London date of `received_at`; the referrer reads as one line.
    """
    received = referral.get("received_at")
    try:
        received_date = london_date(datetime.fromisoformat(received)).isoformat() if received else None
    except (TypeError, ValueError):
        received_date = None
    return {
        "received_date": received_date,
        "reason": referral.get("reason"),
        "consent_to_share": referral.get("consent_to_share"),
        "referrer": referral.get("referrer"),
        "source": referral.get("source"),  # the system that sent it, e.g. csc-contact-centre
        "referred_by": referred_by(referral),
        "sent_by": sent_by(referral),
        "category": referral.get("category"),
        "urgency": referral.get("urgency"),
    }


# Issue #22 §7: who referred, in the kinds the guides' "Referral source" and "Contact source" options tell apart,
# read from what the intake contract carries: the category, the sending system's name (`source`), and the
# referrer's role and organisation (free text: the contract has no kind of referrer). A system's name or an
# organisation says an institution (a contact centre, a hospital, adult care, health, another agency); a role says
# any kind (a daughter, the person themselves). The first kind in this order whose words the text holds is the one;
# words are whole (a "ward", not "Edward"). A pack maps the kinds onto its own options (`prepopulate_values`); what
# no kind or option says is still shown as sent (`sent_by`).
REFERRED_BY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contact_centre", ("contact centre", "customer service centre", "customer services", "csc", "call centre")),
    ("hospital", ("hospital", "infirmary", "ward", "discharge", "a&e", "emergency department")),
    # Mosaic is the council's adult care system (seed 000); "LCC" alone names any of the council's departments
    ("adult_care", ("adult care", "adult social care", "social worker", "care manager", "mosaic")),
    ("health", ("gp", "nhs", "surgery", "medical practice", "health", "nurse", "doctor", "clinic", "paramedic",
                "ambulance", "pharmacist", "pharmacy", "physiotherapist", "physio", "hospice", "midwife",
                "psychiatrist", "dentist", "optician")),
    ("self", ("self", "the person", "service user", "himself", "herself", "themselves")),
    ("family", ("family", "relative", "friend", "neighbour", "daughter", "son", "wife", "husband", "partner",
                "mother", "father", "mum", "dad", "sister", "brother", "niece", "nephew", "grandson",
                "granddaughter", "grandmother", "grandfather", "aunt", "uncle", "cousin", "spouse", "next of kin",
                "carer")),
    ("agency", ("police", "fire service", "fire and rescue", "housing", "probation", "school", "teacher", "advocate",
                "advocacy", "charity", "voluntary", "age uk", "support worker", "care agency", "landlord")),
)
INSTITUTIONS = ("contact_centre", "hospital", "adult_care", "health", "agency")
REFERRED_BY = tuple(kind for kind, _ in REFERRED_BY_WORDS)  # "agency" also: any other organisation


def referred_by(referral: Mapping[str, Any]) -> str | None:
    """Issue #22 §7: the kind of referrer (one of REFERRED_BY), or None when the referral does not say."""
    if referral.get("category") == "hospital_discharge":
        return "hospital"
    referrer = referral.get("referrer")
    referrer = referrer if isinstance(referrer, Mapping) else {}
    for text, kinds in ((referral.get("source"), INSTITUTIONS), (referrer.get("role"), REFERRED_BY),
                        (referrer.get("organisation"), INSTITUTIONS)):
        kind = _kind_in(text, kinds)
        if kind is not None:
            return kind
    return "agency" if referrer.get("organisation") else None


def sent_by(referral: Mapping[str, Any]) -> str | None:
    """Issue #22 §7: who sent the referral, as sent: the sending system, then the referrer's name, role and
    organisation (what a worker reads where no option of the form says it)."""
    referrer = referral.get("referrer")
    referrer = referrer if isinstance(referrer, Mapping) else {}
    who = ", ".join(str(referrer[k]) for k in ("name", "role", "organisation") if referrer.get(k))
    source = str(referral.get("source") or "")
    return f"{source}: {who}" if source and who else (source or who or None)


def _kind_in(text: Any, kinds: tuple[str, ...]) -> str | None:
    words = f" {re.sub(r'[^a-z0-9&]+', ' ', str(text or '').lower())} "
    return next((kind for kind, phrases in REFERRED_BY_WORDS
                 if kind in kinds and any(f" {phrase} " in words for phrase in phrases)), None)
