"""Referral intake: validation (R-P4), first steps and identity matching, all pure."""

import copy
from typing import Any

import pytest

from services.referrals.domain import (
    MatchKeys,
    choose_match,
    field_errors,
    first_step_for,
    match_keys,
    nhs_number_is_valid,
    person_record,
    referral_id_of,
    validate_referral,
)
from shared.commands.base import RuleBroken
from shared.events.referrals import (
    FieldError,
    PersonCreated,
    PersonDetails,
    ReferralAccepted,
    ReferralReceived,
    ReferralRejected,
)
from tests.factories import person_data, referral_data, valid_nhs_number

FIRST_STEPS = [
    ("adults", "wellbeing", "WB Wellbeing Screening"),
    ("adults", "assessment", "Adult Contact"),
    ("adults", "review", "Adult Contact"),
    ("adults", "hospital_discharge", "Adult Contact"),
    ("adults", "safeguarding", "Adult Safeguarding Triage"),
    ("adults", "carer", "Adult Carer Triage"),
    ("children", "child_in_need", "Child and Family Assessment and Plan"),
    ("children", "significant_information", "Significant Information on an Open Case"),
]
ADULT_CATEGORIES = [
    "wellbeing",
    "assessment",
    "review",
    "hospital_discharge",
    "safeguarding",
    "carer",
]
CHILDREN_CATEGORIES = ["child_in_need", "significant_information"]


def errors_of(data: object) -> list[FieldError]:
    with pytest.raises(RuleBroken) as caught:
        validate_referral(data)
    return field_errors(caught.value)


def codes_by_field(data: object) -> dict[str, str]:
    return {e.field: e.code for e in errors_of(data)}


def without(data: dict[str, Any], *paths: str) -> dict[str, Any]:
    result = copy.deepcopy(data)
    for path in paths:
        *parents, last = path.split(".")
        target = result
        for part in parents:
            target = target[part]
        del target[last]
    return result


def person(**overrides: Any) -> PersonDetails:
    return PersonDetails.model_validate(person_data(**overrides))


# --- R-P4 NHS numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["9434765919", "943 476 5919", "9434765900", valid_nhs_number(42)]
)
def test_valid_nhs_numbers_are_accepted_r_p4(value: str) -> None:
    assert nhs_number_is_valid(value)


@pytest.mark.parametrize(
    "value",
    [
        "9434765918",  # wrong check digit
        "943476591",  # 9 digits
        "94347659190",  # 11 digits
        "943476591A",  # a letter
        "ABCDEFGHIJ",
        "9434765960",  # the check digit computes to 10: never issued
        "",
        "943-476-5919",
        "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",  # Arabic-Indic digits
    ],
)
def test_invalid_nhs_numbers_are_refused_r_p4(value: str) -> None:
    assert not nhs_number_is_valid(value)


def test_factory_nhs_numbers_are_valid_and_distinct_r_p4() -> None:
    numbers = {valid_nhs_number(n) for n in range(500)}
    assert len(numbers) == 500
    assert all(nhs_number_is_valid(n) for n in numbers)


def test_referral_with_invalid_nhs_number_is_refused_not_stored_r_p4() -> None:
    data = referral_data(person=person_data(nhs_number="9434765918"))
    assert codes_by_field(data) == {"person.nhs_number": "invalid_nhs_number"}


def test_cared_for_persons_nhs_number_is_checked_too_r_p4() -> None:
    data = referral_data(category="carer", cared_for_person=person_data(2, nhs_number="1234567890"))
    assert codes_by_field(data) == {"cared_for_person.nhs_number": "invalid_nhs_number"}


def test_spaced_nhs_number_is_accepted_and_kept_as_digits_r_p4() -> None:
    referral = validate_referral(referral_data(person=person_data(nhs_number=" 943 476 5919 ")))
    assert referral.person.nhs_number == "9434765919"


def test_blank_nhs_number_means_not_known() -> None:
    referral = validate_referral(referral_data(person=person_data(nhs_number="  ")))
    assert referral.person.nhs_number is None


# --- Accepting and refusing referrals -------------------------------------------------


def test_a_valid_referral_is_accepted_with_defaults() -> None:
    data = without(
        referral_data(), "urgency", "ordinarily_resident", "referrer", "consent_to_share"
    )
    referral = validate_referral(data)
    assert referral.urgency == "normal"
    assert referral.ordinarily_resident is True
    assert referral.referrer is None
    assert referral.consent_to_share is None


def test_surrounding_whitespace_is_stripped() -> None:
    referral = validate_referral(
        referral_data(referral_id="  REF-9  ", person=person_data(first_name="  Testfirst \t"))
    )
    assert referral.referral_id == "REF-9"
    assert referral.person.first_name == "Testfirst"


def test_explicit_nulls_in_defaulted_fields_mean_the_default() -> None:
    referral = validate_referral(referral_data(urgency=None, ordinarily_resident=None))
    assert referral.urgency == "normal"
    assert referral.ordinarily_resident is True


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    referral = validate_referral(referral_data(added_in_a_later_version="x"))
    assert referral.referral_id == "REF-0001"


def test_a_referral_missing_several_fields_reports_every_field() -> None:
    data = without(
        referral_data(),
        "referral_id",
        "received_at",
        "service",
        "reason",
        "person.first_name",
        "person.date_of_birth",
    )
    assert codes_by_field(data) == {
        "referral_id": "missing",
        "received_at": "missing",
        "service": "missing",
        "reason": "missing",
        "person.first_name": "missing",
        "person.date_of_birth": "missing",
    }


def test_blank_and_null_required_fields_are_reported_missing() -> None:
    data = referral_data(reason="   \n ", referral_id=None, person=None)
    assert codes_by_field(data) == {
        "reason": "missing",
        "referral_id": "missing",
        "person": "missing",
    }


def test_bad_nhs_number_bad_category_and_missing_reason_are_reported_together_r_p4() -> None:
    data = without(
        referral_data(category="gardening", person=person_data(nhs_number="9434765918")), "reason"
    )
    assert codes_by_field(data) == {
        "person.nhs_number": "invalid_nhs_number",
        "category": "not_allowed",
        "reason": "missing",
    }


def test_schema_errors_and_rule_errors_are_reported_together() -> None:
    data = without(
        referral_data(
            service="adults",
            category="child_in_need",
            urgency="whenever",
            person=person_data(nhs_number="9434765918", date_of_birth="2030-01-01"),
        ),
        "reason",
    )
    assert codes_by_field(data) == {
        "reason": "missing",
        "urgency": "not_allowed",
        "person.nhs_number": "invalid_nhs_number",
        "person.date_of_birth": "invalid",
        "category": "unsupported_combination",
    }


def test_each_field_is_reported_once() -> None:
    data = referral_data(person=person_data(nhs_number="9" * 25))
    assert [e.field for e in errors_of(data)] == ["person.nhs_number"]


def test_received_at_must_carry_a_timezone() -> None:
    data = referral_data(received_at="2024-05-01T09:30:00")
    assert codes_by_field(data) == {"received_at": "invalid"}


def test_date_of_birth_after_the_referral_was_received_is_refused() -> None:
    data = referral_data(
        received_at="2024-05-01T09:30:00+01:00", person=person_data(date_of_birth="2024-05-02")
    )
    assert codes_by_field(data) == {"person.date_of_birth": "invalid"}


def test_a_baby_born_the_day_of_the_referral_is_accepted() -> None:
    data = referral_data(
        service="children",
        category="child_in_need",
        received_at="2024-05-01T09:30:00+01:00",
        person=person_data(date_of_birth="2024-05-01"),
    )
    assert validate_referral(data).person.date_of_birth.isoformat() == "2024-05-01"


def test_unparseable_dates_are_reported_without_a_second_rule_error() -> None:
    data = referral_data(received_at="yesterday", person=person_data(date_of_birth="31/02/1950"))
    assert codes_by_field(data) == {"received_at": "invalid", "person.date_of_birth": "invalid"}


def test_lists_and_texts_are_bounded() -> None:
    data = referral_data(
        person=person_data(first_name="A" * 101, communication_needs=["Large print"] * 21)
    )
    assert codes_by_field(data) == {
        "person.first_name": "too_long",
        "person.communication_needs": "too_long",
    }


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, "missing"),
        ([], "invalid"),
        ("referral", "invalid"),
        (42, "invalid"),
        (b"{}", "invalid"),
    ],
)
def test_data_that_is_not_an_object_is_refused(data: object, code: str) -> None:
    assert codes_by_field(data) == {"data": code}


# --- First steps (docs/contracts.md "Referral intake") --------------------------------


@pytest.mark.parametrize(("service", "category", "step_type"), FIRST_STEPS)
def test_each_allowed_combination_starts_its_first_step(
    service: str, category: str, step_type: str
) -> None:
    data = referral_data(service=service, category=category, cared_for_person=person_data(2))
    referral = validate_referral(data)
    assert first_step_for(referral.service, referral.category) == step_type


@pytest.mark.parametrize(
    ("service", "category"),
    [("adults", c) for c in CHILDREN_CATEGORIES] + [("children", c) for c in ADULT_CATEGORIES],
)
def test_disallowed_combinations_are_refused_naming_category(service: str, category: str) -> None:
    data = referral_data(service=service, category=category, cared_for_person=person_data(2))
    assert codes_by_field(data) == {"category": "unsupported_combination"}
    with pytest.raises(RuleBroken) as caught:
        first_step_for(service, category)
    assert [e.field for e in caught.value.reasons] == ["category"]


def test_carer_referral_without_cared_for_person_is_refused() -> None:
    data = referral_data(category="carer")
    assert codes_by_field(data) == {"cared_for_person": "missing"}


def test_carer_referral_with_cared_for_person_is_accepted() -> None:
    referral = validate_referral(referral_data(category="carer", cared_for_person=person_data(2)))
    assert referral.cared_for_person is not None
    assert referral.cared_for_person.last_name == person_data(2)["last_name"]


# --- No personal data in errors --------------------------------------------------------


def test_error_messages_never_echo_submitted_values() -> None:
    canary = "Zqxcanary"
    bad_nhs = "9434765918"
    data = referral_data(
        service=canary,
        category=canary,
        urgency=canary,
        received_at=canary,
        reason=canary + "\x07",
        referrer={"name": canary * 20, "email": canary},
        person=person_data(
            nhs_number=bad_nhs,
            first_name=canary * 20,
            last_name=canary + "\x1b",
            date_of_birth=canary,
            email=canary,
            communication_needs=canary,
        ),
        cared_for_person={"first_name": canary, "nhs_number": canary},
    )
    with pytest.raises(RuleBroken) as caught:
        validate_referral(data)
    errors = caught.value.reasons
    assert len(errors) >= 10
    for text in [str(caught.value), *(e.model_dump_json() for e in errors)]:
        assert canary.casefold() not in text.casefold()
        assert bad_nhs not in text


# --- Hostile input --------------------------------------------------------------------

HOSTILE = [
    "Robert'); DROP TABLE people;--",
    "\x1b[31mred\x1b[0m",
    "nul\x00byte",
    "\u202egnp.exe",
    "lone \ud800 surrogate",
    "<script>alert(1)</script>",
    "A" * 1_000_000,
]


@pytest.mark.parametrize(
    "field",
    [
        "referral_id",
        "reason",
        "person.first_name",
        "person.nhs_number",
        "person.address.postcode",
        "referrer.organisation",
    ],
)
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:12]))
def test_hostile_strings_are_refused_or_bounded(field: str, value: str) -> None:
    data = referral_data()
    *parents, last = field.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    try:
        referral = validate_referral(data)
    except RuleBroken as invalid:
        assert all(e.field == field for e in invalid.reasons)
        assert all(len(e.message) < 200 for e in invalid.reasons)
        return
    accepted: Any = referral.model_dump()
    for part in field.split("."):
        accepted = accepted[part]
    assert accepted == value.strip()
    assert len(accepted) <= 10_000


def test_a_one_megabyte_reason_is_refused_as_too_long() -> None:
    assert codes_by_field(referral_data(reason="x" * 1_000_000)) == {"reason": "too_long"}


def test_free_text_keeps_line_breaks_and_tabs_but_not_other_controls() -> None:
    referral = validate_referral(referral_data(reason="Line one\r\n\tLine two"))
    assert referral.reason == "Line one\n\tLine two"
    assert codes_by_field(referral_data(reason="bell\x07")) == {"reason": "invalid"}
    assert codes_by_field(referral_data(referral_id="REF\n1")) == {"referral_id": "invalid"}


def test_referral_id_for_a_rejection_is_quoted_only_when_valid() -> None:
    assert referral_id_of(referral_data(referral_id=" REF-7 ")) == "REF-7"
    assert referral_id_of(referral_data(referral_id="x" * 201)) is None
    assert referral_id_of(without(referral_data(), "referral_id")) is None
    assert referral_id_of("not an object") is None


# --- Identity matching ----------------------------------------------------------------


def test_match_keys_normalise_nhs_number_to_digits() -> None:
    assert match_keys(person(nhs_number="943 476 5919")).nhs_number == "9434765919"
    assert match_keys(person(nhs_number=None)).nhs_number is None


def test_name_key_ignores_case_spacing_and_postcode_format() -> None:
    one = person(first_name="Mary  Ann", last_name="SMITH", address={"postcode": "le1 1aa"})
    other = person(first_name=" mary ann ", last_name="smith", address={"postcode": " LE11AA "})
    assert match_keys(one).name_key is not None
    assert match_keys(one).name_key == match_keys(other).name_key


def test_name_key_treats_composed_and_decomposed_accents_alike() -> None:
    composed = person(first_name="Jos\u00e9")
    decomposed = person(first_name="Jose\u0301")
    assert match_keys(composed).name_key == match_keys(decomposed).name_key


def test_name_key_differs_by_date_of_birth_and_postcode() -> None:
    base = match_keys(person()).name_key
    assert match_keys(person(date_of_birth="1948-03-15")).name_key != base
    assert match_keys(person(address={"postcode": "LE1 1AB"})).name_key != base


def test_without_a_postcode_there_is_no_name_key() -> None:
    assert match_keys(person(address=None)).name_key is None
    assert match_keys(person(address={"line1": "1 Example Street"})).name_key is None


def test_matching_prefers_the_nhs_number() -> None:
    keys = MatchKeys(nhs_number="9434765919", name_key="a b|1948-03-14|LE11AA")
    assert choose_match(keys, by_nhs="person-nhs", by_name="person-name") == "person-nhs"


def test_matching_falls_back_to_name_birth_and_postcode() -> None:
    keys = MatchKeys(nhs_number="9434765919", name_key="a b|1948-03-14|LE11AA")
    assert choose_match(keys, by_nhs=None, by_name="person-name") == "person-name"
    no_nhs = MatchKeys(nhs_number=None, name_key="a b|1948-03-14|LE11AA")
    assert choose_match(no_nhs, by_nhs=None, by_name="person-name") == "person-name"


def test_no_match_without_keys_or_found_people() -> None:
    keys = MatchKeys(nhs_number="9434765919", name_key=None)
    assert choose_match(keys, by_nhs=None, by_name=None) is None
    assert choose_match(MatchKeys(None, None), by_nhs="stray", by_name="stray") is None


def test_person_record_holds_the_nhs_number_as_digits() -> None:
    record = person_record(person(nhs_number="943 476 5919"))
    assert record["nhs_number"] == "9434765919"
    assert record["date_of_birth"] == person_data()["date_of_birth"]


# --- Outcome events ---------------------------------------------------------------------


def test_outcome_events_name_their_types() -> None:
    assert ReferralReceived.TYPE == "referral.received"
    assert ReferralAccepted.TYPE == "referral.accepted"
    assert ReferralRejected.TYPE == "referral.rejected"
    assert PersonCreated.TYPE == "person.created"


def test_person_created_carries_ids_only() -> None:
    assert set(PersonCreated.model_fields) == {"person_id", "source_referral_id"}


def test_a_rejection_lists_every_error_and_may_lack_a_referral_id() -> None:
    errors = errors_of(without(referral_data(), "referral_id", "reason"))
    rejected = ReferralRejected(referral_id=None, errors=errors)
    assert ReferralRejected.model_validate_json(rejected.model_dump_json()) == rejected
    assert {e.field for e in rejected.errors} == {"referral_id", "reason"}
