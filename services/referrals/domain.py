"""Referral intake rules, pure: validation (R-P4), first steps and identity matching."""

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from shared.bounds import BirthDate, SaneDatetime
from shared.commands.base import Reason, RuleBroken
from shared.events.referrals import (
    Category,
    FieldError,
    Identifier,
    PersonDetails,
    ReferralReceived,
    Service,
)

MISSING = "missing"
INVALID = "invalid"
TOO_LONG = "too_long"
NOT_ALLOWED = "not_allowed"
INVALID_NHS_NUMBER = "invalid_nhs_number"
UNSUPPORTED_COMBINATION = "unsupported_combination"

SERVICES: tuple[str, ...] = get_args(Service)
CATEGORIES: tuple[str, ...] = get_args(Category)


@dataclass(frozen=True)
class MatchKeys:
    """Normalised identity keys of a person: NHS number (digits) and name + birth + postcode."""

    nhs_number: str | None
    name_key: str | None

    def present(self) -> list[str]:
        return [key for key in (self.nhs_number, self.name_key) if key]


FIRST_STEPS: Mapping[tuple[str, str], str] = {
    ("adults", "wellbeing"): "WB Wellbeing Screening",
    ("adults", "assessment"): "Adult Contact",
    ("adults", "review"): "Adult Contact",
    ("adults", "hospital_discharge"): "Adult Contact",
    ("adults", "safeguarding"): "Adult Safeguarding Triage",
    ("adults", "carer"): "Adult Carer Triage",
    ("children", "child_in_need"): "Child and Family Assessment and Plan",
    ("children", "significant_information"): "Significant Information on an Open Case",
}

_T = TypeVar("_T")

_DIGITS = frozenset("0123456789")
# the rules read only what the schema accepts: a date out of bounds is reported once, by the schema
_DATE: TypeAdapter[date] = TypeAdapter(BirthDate)
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(SaneDatetime)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def nhs_number_is_valid(value: str) -> bool:
    """R-P4: ten digits (spaces ignored) whose last is the modulus-11 check digit."""
    digits = value.replace(" ", "")
    # str.isdigit() would accept non-ASCII digits such as "٣" or "³".
    if len(digits) != 10 or not set(digits) <= _DIGITS:
        return False
    total = sum(int(d) * weight for d, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def first_step_for(service: str, category: str) -> str:
    """The first step of a referral (docs/contracts.md "Referral intake"); others are refused."""
    step = FIRST_STEPS.get((service, category))
    if step is None:
        raise _broken([_unsupported(service)])
    return step


def validate_referral(data: object) -> ReferralReceived:
    """The referral if it keeps every intake rule, else RuleBroken naming every field at fault."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    referral, errors = _parse(data)
    at_fault = {e.field for e in errors}
    errors += [e for e in _rule_errors(data) if e.field not in at_fault]
    if errors or referral is None:
        raise _broken(errors)
    return referral


def field_errors(broken: RuleBroken) -> list[FieldError]:
    """The reasons a referral was refused, as `referral.rejected` names them (docs/contracts.md)."""
    return [FieldError(field=r.field or "data", code=r.code, message=r.message) for r in broken.reasons]


def _broken(errors: list[FieldError]) -> RuleBroken:
    return RuleBroken([Reason(field=e.field, code=e.code, message=e.message) for e in errors])


def referral_id_of(data: object) -> str | None:
    """The referral id to quote in a rejection, or None when absent or itself invalid."""
    raw = data.get("referral_id") if isinstance(data, Mapping) else None
    try:
        return _IDENTIFIER.validate_python(raw)
    except ValidationError:
        return None


def match_keys(person: PersonDetails) -> MatchKeys:
    """The keys a person is matched on; the name key needs a postcode."""
    nhs = "".join(ch for ch in person.nhs_number or "" if ch in _DIGITS) or None
    postcode = _postcode_key(person.address.postcode if person.address else None)
    if postcode is None:
        return MatchKeys(nhs_number=nhs, name_key=None)
    name = _name_key(f"{person.first_name} {person.last_name}")
    return MatchKeys(
        nhs_number=nhs, name_key=f"{name}|{person.date_of_birth.isoformat()}|{postcode}"
    )


def choose_match(keys: MatchKeys, by_nhs: str | None, by_name: str | None) -> str | None:
    """The existing person a referral is about: by NHS number first, else name + birth + postcode.

    `by_nhs` / `by_name` are the person ids the store found for `keys`. The store's name
    lookup should leave out records holding a different NHS number: those are other people.
    """
    if keys.nhs_number is not None and by_nhs is not None:
        return by_nhs
    if keys.name_key is not None:
        return by_name
    return None


def person_record(person: PersonDetails) -> dict[str, Any]:
    """The person record (R-P1) a referral creates, as JSON, with the NHS number as digits."""
    record = person.model_dump(mode="json")
    record["nhs_number"] = match_keys(person).nhs_number
    return record


def _parse(data: object) -> tuple[ReferralReceived | None, list[FieldError]]:
    try:
        return ReferralReceived.model_validate(data), []
    except ValidationError as exc:
        return None, [_field_error(e) for e in exc.errors(include_url=False)]


def _field_error(error: ErrorDetails) -> FieldError:
    field = ".".join(str(part) for part in error["loc"]) or "data"
    code, message = _describe(error)
    return FieldError(field=field, code=code, message=message)


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """Code and sentence for a pydantic error, built from our limits, never from the input."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing" or (kind.endswith("_type") and error.get("input") is None):
        return MISSING, "This field is required."
    if kind == "string_too_short":
        return MISSING, "This field is required and must not be blank."
    if kind == "string_too_long":
        return TOO_LONG, f"This text must be at most {ctx['max_length']} characters long."
    if kind == "too_long":
        return TOO_LONG, f"This list must have at most {ctx['max_length']} items."
    if kind == "out_of_range":
        return INVALID, f"This must be between {ctx['earliest']} and {ctx['latest']}."
    if kind == "literal_error":
        return NOT_ALLOWED, f"This value is not allowed; expected {ctx['expected']}."
    return INVALID, _invalid_message(kind)


def _invalid_message(kind: str) -> str:
    if kind == "control_characters":
        return "This text contains control characters, which are not allowed."
    if kind.startswith(("datetime", "timezone")):
        return "This must be an RFC 3339 timestamp with a timezone offset."
    if kind.startswith("date"):
        return "This must be a date in the form YYYY-MM-DD."
    if kind.startswith("bool"):
        return "This must be true or false."
    if kind == "string_pattern_mismatch":
        return "This value is not in the expected format."
    if kind.startswith("string"):
        return "This must be text."
    if kind == "list_type":
        return "This must be a list."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "This must be an object."
    return "This value is not valid."


def _rule_errors(data: object) -> Iterator[FieldError]:
    """The rules beyond the schema, checked on whatever parts of the data can be read."""
    if not isinstance(data, Mapping):
        return
    for prefix in ("person", "cared_for_person"):
        yield from _nhs_number_errors(data, prefix)
        yield from _birth_date_errors(data, prefix)
    yield from _combination_errors(data)
    yield from _carer_errors(data)


def _nhs_number_errors(data: Mapping[str, Any], prefix: str) -> Iterator[FieldError]:
    person = data.get(prefix)
    raw = person.get("nhs_number") if isinstance(person, Mapping) else None
    if isinstance(raw, str) and raw.strip() and not nhs_number_is_valid(raw.strip()):
        yield FieldError(
            field=f"{prefix}.nhs_number",
            code=INVALID_NHS_NUMBER,
            message="This is not a valid NHS number: 10 digits with a correct check digit.",
        )


def _birth_date_errors(data: Mapping[str, Any], prefix: str) -> Iterator[FieldError]:
    person = data.get(prefix)
    born = _read(_DATE, person.get("date_of_birth") if isinstance(person, Mapping) else None)
    received = _read(_TIMESTAMP, data.get("received_at"))
    if born is not None and received is not None and born > received.date():
        yield FieldError(
            field=f"{prefix}.date_of_birth",
            code=INVALID,
            message="The date of birth must not be after the date the referral was received.",
        )


def _combination_errors(data: Mapping[str, Any]) -> Iterator[FieldError]:
    service, category = data.get("service"), data.get("category")
    if service in SERVICES and category in CATEGORIES and (service, category) not in FIRST_STEPS:
        yield _unsupported(service)


def _carer_errors(data: Mapping[str, Any]) -> Iterator[FieldError]:
    if data.get("category") == "carer" and data.get("cared_for_person") is None:
        yield FieldError(
            field="cared_for_person",
            code=MISSING,
            message="A carer referral must describe the person being cared for.",
        )


def _unsupported(service: object) -> FieldError:
    allowed = [c for s, c in FIRST_STEPS if s == service]
    if not allowed:
        return FieldError(
            field="category",
            code=UNSUPPORTED_COMBINATION,
            message="This category is not accepted for this service.",
        )
    return FieldError(
        field="category",
        code=UNSUPPORTED_COMBINATION,
        message=f"This category is not accepted for the {service} service; use one of: "
        + ", ".join(allowed)
        + ".",
    )


def _read(adapter: TypeAdapter[_T], raw: object) -> _T | None:
    if raw is None:
        return None
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        return None


def _name_key(name: str) -> str:
    # NFKC so that composed and decomposed accents, and full-width letters, compare equal.
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _postcode_key(postcode: str | None) -> str | None:
    return "".join((postcode or "").split()).upper() or None


def apply_changes(record: Mapping[str, Any], changes: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The record with `changes` applied and the fields that really changed; every fault refused."""
    reasons = list(_change_faults(record, changes))
    if reasons:
        raise RuleBroken(reasons)
    changed = sorted(k for k, v in changes.items() if record.get(k) != v)
    return {**record, **changes}, changed


def _change_faults(record: Mapping[str, Any], changes: Mapping[str, Any]) -> Iterator[Reason]:
    nhs_number = changes.get("nhs_number")
    if nhs_number is not None and not nhs_number_is_valid(nhs_number):
        yield Reason(code=INVALID_NHS_NUMBER, field="changes.nhs_number",
                     message="is not a valid NHS number: 10 digits with a modulus-11 check digit")
    born, died = changes.get("date_of_birth", record.get("date_of_birth")), changes.get("date_of_death")
    if born and died and str(died) < str(born):
        yield Reason(code=INVALID, field="changes.date_of_death", message="is before the date of birth")


def check_relationship(person_id: str, other_person_id: str, *, other_exists: bool) -> None:
    """A relationship links two different people who both have records (R-P2)."""
    reasons = []
    if person_id == other_person_id:
        reasons.append(Reason(code=INVALID, field="other_person_id", message="a person cannot relate to themselves"))
    if not other_exists:
        reasons.append(Reason(code="not_found", field="other_person_id", message="no such person"))
    if reasons:
        raise RuleBroken(reasons)


def check_relationship_end(start_date: date, ended: bool, end_date: date) -> None:
    """An open relationship ends on or after it started."""
    reasons = []
    if ended:
        reasons.append(Reason(code="conflict", field="relationship_id", message="the relationship has already ended"))
    if end_date < start_date:
        reasons.append(Reason(code=INVALID, field="end_date", message="is before the relationship started"))
    if reasons:
        raise RuleBroken(reasons)
