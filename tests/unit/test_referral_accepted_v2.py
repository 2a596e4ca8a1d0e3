"""`referral.accepted` v2 and its upcaster (schema evolution, issue 11); the referrer's copy (R-T4): pure rules."""

from typing import Any

import pytest

from services.notifications import domain
from shared.envelope import Envelope, new_message
from shared.events.referrals import (
    ReferralAccepted,
    ReferralAcceptedV2,
    SchemaUnknown,
    schema_version,
    upcast_referral_accepted,
)

V1_DATA = {"referral_id": "REF-1", "person_id": "p-1", "matched": False, "workflow_id": "w-1",
           "first_step_type": "WB Wellbeing Screening", "service": "adults", "category": "wellbeing",
           "urgency": "normal", "cared_for_person_id": None, "ordinarily_resident": True}
REFERRER = {"name": "Quillon Fernsby", "organisation": "Larkspur Surgery", "role": "GP", "phone": "07700 900123",
            "email": "quillon@example.org"}
TEAM = domain.Team("Wellbeing Service North", "0116 496 0101")


def accepted(dataschema: str | None, **data: Any) -> Envelope:
    return new_message("referral.accepted", "tessera/referrals", {**V1_DATA, **data}, dataschema=dataschema)


def test_v2_is_v1_plus_an_optional_referrer_and_a_v1_reader_reads_it_unchanged() -> None:
    assert (ReferralAccepted.VERSION, ReferralAcceptedV2.VERSION) == (1, 2)
    v2 = ReferralAcceptedV2.model_validate({**V1_DATA, "referrer": REFERRER})
    as_v1 = ReferralAccepted.model_validate(v2.model_dump(mode="json"))
    assert as_v1 == ReferralAccepted.model_validate(V1_DATA)
    assert set(ReferralAcceptedV2.model_fields) - set(ReferralAccepted.model_fields) == {"referrer"}
    assert not ReferralAcceptedV2.model_fields["referrer"].is_required()


@pytest.mark.parametrize("dataschema", ["referral.accepted/1", None])
def test_a_v1_message_is_upcast_to_v2_with_no_referrer(dataschema: str | None) -> None:
    upcast = upcast_referral_accepted(accepted(dataschema, referrer=REFERRER))  # a v1 carries no referrer
    assert isinstance(upcast, ReferralAcceptedV2) and upcast.referrer is None
    assert upcast.model_dump(exclude={"referrer"}) == ReferralAccepted.model_validate(V1_DATA).model_dump()


def test_a_v2_message_keeps_its_referrer_and_a_newer_version_reads_as_v2() -> None:
    assert upcast_referral_accepted(accepted("referral.accepted/2", referrer=REFERRER)).referrer.email == (  # type: ignore[union-attr]
        "quillon@example.org")
    newer = upcast_referral_accepted(accepted("referral.accepted/3", referrer=REFERRER, added_in_v3=True))
    assert newer.referrer is not None and newer.referrer.name == "Quillon Fernsby"


@pytest.mark.parametrize("dataschema", ["person.created/1", "referral.accepted", "referral.accepted/x",
                                        "referral.accepted/0"])
def test_a_dataschema_of_another_type_or_without_a_version_is_refused(dataschema: str) -> None:
    with pytest.raises(SchemaUnknown, match="not a version of referral.accepted"):
        upcast_referral_accepted(accepted(dataschema))
    assert schema_version(None, "referral.accepted") == 1


def test_R_T4_the_referrer_is_emailed_where_they_have_an_email_with_the_teams_number() -> None:
    referrer = domain.Referrer("REF-1", "Quillon Fernsby", "quillon@example.org", "07700 900123")
    plan = domain.plan_referrer_message("pwt_added", TEAM, referrer)
    assert plan is not None and plan.rendered is not None
    assert (plan.status, plan.channel, plan.template, plan.rendered.to) == (
        "pending", "email", "pwt_waiting_list_referrer", "quillon@example.org")
    assert plan.rendered.subject == "Your referral REF-1: on the waiting list for Wellbeing Service North"
    assert "Dear Quillon Fernsby," in plan.rendered.body
    assert "If their situation changes, please call 0116 496 0101." in plan.rendered.body


def test_R_T4_a_referrer_with_only_a_mobile_gets_an_sms_through_a_real_provider_else_a_phone_call() -> None:
    notify = domain.Reach(sms=True, any_letter=True)
    plan = domain.plan_referrer_message("pwt_added", TEAM, domain.Referrer("REF-1", None, None, "07700 900123"), notify)
    assert plan is not None and plan.rendered is not None
    assert (plan.channel, plan.rendered.to) == ("sms", "07700 900123")
    assert plan.rendered.body == ("The person you referred (ref REF-1) is on the waiting list for Wellbeing Service"
                                  " North. If their situation changes call 0116 496 0101.")
    # §8: no SMS provider: never "sent", the team phones instead
    called = domain.plan_referrer_message("pwt_added", TEAM, domain.Referrer("REF-1", None, None, "07700 900123"))
    assert called is not None and (called.channel, called.status, called.fallback_from, called.fallback_reason) == (
        "phone", "phone_call_task", "sms", "no_sms_provider")
    landline = domain.plan_referrer_message("pwt_added", TEAM, domain.Referrer("REF-1", "A GP", None, "0116 496 0001"))
    assert landline is not None and (landline.channel, landline.status) == ("phone", "phone_call_task")
    nothing = domain.plan_referrer_message("pwt_added", TEAM, domain.Referrer("REF-1", "A GP", None, None))
    assert nothing is not None and (nothing.status, nothing.error_code) == ("failed", "no_contact_details")


def test_R_T4_no_copy_without_a_referrer_or_for_a_reason_the_referrer_is_not_told_of() -> None:
    assert domain.plan_referrer_message("pwt_added", TEAM, None) is None
    assert domain.plan_referrer_message("something_else", TEAM,
                                        domain.Referrer("REF-1", None, "a@example.org", None)) is None
