"""Logs carry ids only: a canary person sent through intake never appears in any service log."""

import json

from shared import topics
from shared.testing import publish
from tests.factories import canary as registered
from tests.factories import person_data, referral_message, unique_referral, unique_seed, valid_nhs_number


async def test_canary_names_numbers_and_addresses_never_reach_the_logs(infra, referrals, workflow, events):
    canary_nhs = valid_nhs_number(unique_seed())
    canary = person_data(unique_seed(), first_name=registered("first name", "Zephyrina"),
                         last_name=registered("last name", "Quillfeather"), nhs_number=canary_nhs,
                         address={"line1": registered("address line", "77 Canarywharf Lane"),
                                  "town": registered("town", "Canarytown"), "postcode": "ZZ9 9ZZ"})
    accepted = referral_message(unique_referral(person=canary))
    rejected_data = unique_referral(person={**canary, "date_of_birth": "not a date"}, category="not a category")
    rejected = referral_message(rejected_data)
    undecodable = json.dumps({"first_name": "Zephyrina", "nhs_number": canary_nhs}).encode()
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [
        ("canary", accepted.to_bytes()), ("canary", rejected.to_bytes()), ("canary", undecodable)])
    # workflow may still be working through the burst of referrals the intake tests sent just before
    await events.wait_for(lambda s: s.caused_by(accepted.id) and s.type == "step.created", 180)
    await events.wait_for(lambda s: s.caused_by(rejected.id) and s.type == "referral.rejected")
    await events.wait_for(lambda s: s.topic == topics.dlq(topics.REFERRALS_INTAKE) and s.value == undecodable)
    logs = referrals.log_text() + workflow.log_text()
    for secret in ("Zephyrina", "Quillfeather", canary_nhs, "Canarywharf", "ZZ9 9ZZ", "Canarytown"):
        assert secret not in logs
    assert str(accepted.id) in logs  # the logs do say what happened, by id
