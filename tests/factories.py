"""Test data builders: valid messages with synthetic people, overridable field by field."""

import itertools
import random
import uuid
from typing import Any

from shared.envelope import Envelope, new_message


def valid_nhs_number(n: int) -> str:
    """A valid NHS number derived from `n`, in the 999 range that is never issued to patients."""
    stem = f"999{n % 100_000:05d}"
    for ninth in "0123456789":
        digits = stem + ninth
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:  # exactly one ninth digit can give 10, so another always fits
            return digits + str(0 if check == 11 else check)
    raise AssertionError("unreachable")


def person_data(seed: int = 1, **overrides: Any) -> dict[str, Any]:
    """A synthetic person as `referral.received` describes one."""
    person: dict[str, Any] = {
        "nhs_number": valid_nhs_number(seed),
        "local_id": f"LOCAL-{seed:06d}",
        "first_name": "Testfirst",
        "last_name": f"Testperson{seed}",
        "date_of_birth": "1948-03-14",
        "gender": "female",
        "address": {
            "line1": "1 Example Street",
            "line2": None,
            "town": "Testtown",
            "postcode": "LE1 1AA",
        },
        "phone": "0116 496 0000",
        "email": f"person{seed}@example.org",
        "communication_needs": ["Large print"],
        "preferred_contact": "phone",
    }
    return {**person, **overrides}


def referral_data(**overrides: Any) -> dict[str, Any]:
    """A valid adults wellbeing `referral.received` data dict; top-level keys can be overridden."""
    referral: dict[str, Any] = {
        "referral_id": "REF-0001",
        "received_at": "2024-05-01T09:30:00+01:00",
        "service": "adults",
        "category": "wellbeing",
        "urgency": "normal",
        "person": person_data(1),
        "referrer": {
            "name": "Sam Referrer",
            "organisation": "Example GP Practice",
            "role": "GP",
            "phone": "0116 496 0001",
            "email": "gp@example.org",
        },
        "reason": "Struggling with daily living since a fall; asks for support at home.",
        "consent_to_share": True,
        "ordinarily_resident": True,
    }
    return {**referral, **overrides}


_seeds = itertools.count(random.randrange(10_000, 90_000, 1_000))


def unique_seed() -> int:
    """A seed no other test in this run uses, so people and referral ids never collide."""
    return next(_seeds)


def unique_referral(**overrides: Any) -> dict[str, Any]:
    """A valid referral for a person no other test refers."""
    seed = unique_seed()
    data = referral_data(referral_id=f"REF-{uuid.uuid4().hex[:12]}", person=person_data(seed))
    return {**data, **overrides}


def referral_message(data: dict[str, Any], *, source: str = "test-contact-centre") -> Envelope:
    """`referral.received` in its CloudEvent envelope, as an upstream system publishes it."""
    return new_message("referral.received", source, data, dataschema="referral.received/1")


def actor(worker_id: str = "w-social-1", *roles: str, teams: tuple[str, ...] = ()) -> dict[str, Any]:
    """The `actor` of a command: a signed-in worker with roles and teams."""
    return {"worker_id": worker_id, "roles": list(roles or ("social_worker",)), "team_ids": list(teams)}


def command_message(type_: str, data: dict[str, Any], *, subject: str | None = None) -> Envelope:
    """A command as a front end sends it; the actor defaults to a social worker."""
    return new_message(type_, "test-front-end", {"actor": actor(), **data}, subject=subject)
