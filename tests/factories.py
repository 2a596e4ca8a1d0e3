"""Test data builders: valid messages with synthetic people, overridable field by field."""

import itertools
import json
import random
import re
import uuid
from datetime import date, timedelta
from typing import Any

from shared.envelope import Envelope, new_message
from tests import pii_canary


def valid_nhs_number(n: int) -> str:
    """A valid NHS number derived from `n`, in the 999 range that is never issued to patients."""
    stem = f"999{n % 100_000:05d}"
    for ninth in "0123456789":
        check = _nhs_check_digit(stem + ninth)
        if check is not None:  # exactly one ninth digit can give 10, so another always fits
            return stem + ninth + str(check)
    raise AssertionError("unreachable")


def _nhs_check_digit(nine_digits: str) -> int | None:
    check = 11 - sum(int(d) * w for d, w in zip(nine_digits, range(10, 1, -1), strict=True)) % 11
    return None if check == 10 else check % 11


# No vowels and no hex letters: a suffix is never an English word nor part of a uuid or digest.
_SUFFIX_LETTERS = "ghjkmnpqrstvwxz"
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def canary_suffix(seed: int) -> str:
    """Five letters that differ for every seed below 15**5: each person's values are told apart."""
    letters = []
    for _ in range(5):
        seed, index = divmod(seed, len(_SUFFIX_LETTERS))
        letters.append(_SUFFIX_LETTERS[index])
    return "".join(letters)


def person_data(seed: int = 1, **overrides: Any) -> dict[str, Any]:
    """A synthetic person as `referral.received` describes one, registered with the PII canary.

    Every value is one no real person or other message has (canary names, 1935-54 birth dates,
    LE1 postcodes, Ofcom drama phone numbers), so finding one in a log is always a leak.
    """
    suffix = canary_suffix(seed)
    person: dict[str, Any] = {
        "nhs_number": valid_nhs_number(seed),
        "local_id": f"LOCAL-{seed:06d}",
        "first_name": f"Testfirst{suffix}",
        "last_name": f"Testperson{suffix.capitalize()}",
        "date_of_birth": (date(1935, 1, 1) + timedelta(days=seed % 7300)).isoformat(),
        "gender": "female",
        "address": {
            "line1": f"{seed % 97 + 1} {suffix.capitalize()}wick Lane",
            "line2": None,
            "town": f"{suffix.capitalize()}ford",
            "postcode": f"LE1 {seed % 10}{_INWARD_LETTERS[seed // 10 % 20]}{_INWARD_LETTERS[seed // 200 % 20]}",
        },
        "phone": f"0115 496 0{seed % 1000:03d}",  # not 0116 496: the teams' numbers
        "email": f"person.{suffix}@example.org",
        "communication_needs": ["Large print"],
        "preferred_contact": "phone",
    }
    _register_made(person)
    _register_given(overrides)
    return {**person, **overrides}


def canary(kind: str, value: str) -> str:
    """A hand-picked personal value (an unusual name), registered with the PII canary like the factory's."""
    pii_canary.REGISTRY.add(kind, value)
    return value


def _register_made(person: dict[str, Any]) -> None:
    address = person["address"]
    for kind, value in (("NHS number", person["nhs_number"]), ("first name", person["first_name"]),
                        ("last name", person["last_name"]), ("date of birth", person["date_of_birth"]),
                        ("address line", address["line1"]), ("town", address["town"]),
                        ("postcode", address["postcode"]), ("phone", person["phone"]), ("email", person["email"])):
        pii_canary.REGISTRY.add(kind, value)


def _register_given(overrides: dict[str, Any]) -> None:
    """Hand-given values that have the shape of personal data; hand-given names can be common words."""
    nhs, born = str(overrides.get("nhs_number") or ""), overrides.get("date_of_birth")
    if len(nhs) == 10 and nhs.isdigit() and _nhs_check_digit(nhs[:9]) == int(nhs[9]):
        pii_canary.REGISTRY.add("NHS number", nhs)
    if isinstance(born, str) and re.fullmatch(r"19\d\d-\d\d-\d\d", born):
        pii_canary.REGISTRY.add("date of birth", born)
    if len(re.sub(r"\D", "", str(overrides.get("phone") or ""))) >= 10:
        pii_canary.REGISTRY.add("phone", overrides["phone"])
    if "@" in str(overrides.get("email") or ""):
        pii_canary.REGISTRY.add("email", overrides["email"])
    postcode = (overrides.get("address") or {}).get("postcode")
    if isinstance(postcode, str) and re.fullmatch(r"[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}", postcode.strip()):
        pii_canary.REGISTRY.add("postcode", postcode)


def referrer_data() -> dict[str, Any]:
    """The GP who refers, registered with the PII canary like the people."""
    referrer = {"name": "Sam Testreferrer", "organisation": "Example GP Practice", "role": "GP",
                "phone": "0115 496 0001", "email": "gp.testreferrer@example.org"}
    for kind, field in (("referrer name", "name"), ("phone", "phone"), ("email", "email")):
        pii_canary.REGISTRY.add(kind, referrer[field])
    return referrer


def referral_data(**overrides: Any) -> dict[str, Any]:
    """A valid adults wellbeing `referral.received` data dict; top-level keys can be overridden."""
    referral: dict[str, Any] = {
        "referral_id": "REF-0001",
        "received_at": "2024-05-01T09:30:00+01:00",
        "service": "adults",
        "category": "wellbeing",
        "urgency": "normal",
        "person": person_data(1),
        "referrer": referrer_data(),
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


def binary_mode(envelope: Envelope, content_type: str | None = "application/json"
                ) -> tuple[list[tuple[str, bytes]], bytes]:
    """The envelope in CloudEvents binary content mode (issue #20): `ce_` headers and the data as the value."""
    attributes = envelope.model_dump(mode="json", exclude_none=True, exclude={"data", "datacontenttype"})
    headers = [(f"ce_{name}", str(value).encode()) for name, value in attributes.items()]
    if content_type is not None:
        headers.append(("content-type", content_type.encode()))
    return headers, json.dumps(envelope.data).encode()


def actor(worker_id: str = "w-social-1", *roles: str, teams: tuple[str, ...] = ()) -> dict[str, Any]:
    """The `actor` of a command: a signed-in worker with roles and teams."""
    return {"worker_id": worker_id, "roles": list(roles or ("social_worker",)), "team_ids": list(teams)}


def command_message(type_: str, data: dict[str, Any], *, subject: str | None = None) -> Envelope:
    """A command as a front end sends it; the actor defaults to a social worker."""
    return new_message(type_, "test-front-end", {"actor": actor(), **data}, subject=subject)
