"""Issue #22 §7, R-W5: the screening's Referral Details say where the referral came from — one sent by the
Customer Service Centre's feed arrives with "Customer Service Centre" as its source and the referrer's details,
as GET /steps shows the step to the hub; a source the pack does not map is left for the worker to choose."""

import uuid

import httpx

from shared.testing import service_auth
from tests.factories import referral_data
from tests.workflow_harness import new_case


async def test_R_W5_the_referrals_source_and_referrer_prefill_the_screening(infra, workflow, events):
    _, screening = await new_case(infra, events, source="csc-contact-centre")
    _, other = await new_case(infra, events, source=f"gp-system-{uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        values = (await http.get(f"/steps/{screening}")).json()["values"]
        unmapped = (await http.get(f"/steps/{other}")).json()["values"]
    assert values["referral_source"] == "Customer Service Centre"
    assert referral_data()["referrer"]["name"] in values["referrer_details"]
    assert unmapped["referral_source"] is None
