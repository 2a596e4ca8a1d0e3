"""Issue #22 §7, R-W5: the first step's Referral Details say who referred — one sent by the Customer Service
Centre's feed arrives with "Customer Service Centre" as its source, one from a hospital's system, sent by its
discharge coordinator, with "GP or health professional", and a hospital discharge's Adult Contact with "Hospital",
as GET /steps shows the step to its team; a referral that says nothing of who referred leaves it to the worker,
and shows who sent it as sent."""

import uuid

import httpx

from shared.testing import service_auth
from tests.factories import referral_data
from tests.workflow_harness import new_case

HOSPITAL = {"name": "Jo Testdischarge", "organisation": "Leicester Royal Infirmary", "role": "Discharge coordinator"}


async def test_R_W5_who_referred_prefills_the_first_steps_referral_source(infra, workflow, events):
    _, screening = await new_case(infra, events, source="csc-contact-centre")
    _, from_hospital = await new_case(infra, events, source=f"uhl-patient-flow-{uuid.uuid4().hex[:6]}",
                                      referrer=HOSPITAL)
    _, discharge = await new_case(infra, events, category="hospital_discharge", source="uhl-patient-flow",
                                  referrer=HOSPITAL)
    other_system = f"other-system-{uuid.uuid4().hex[:6]}"
    _, unknown = await new_case(infra, events, source=other_system, referrer=None)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        values = (await http.get(f"/steps/{screening}")).json()["values"]
        hospital = (await http.get(f"/steps/{from_hospital}")).json()["values"]
        contact = (await http.get(f"/steps/{discharge}")).json()
        unmapped = (await http.get(f"/steps/{unknown}")).json()["values"]
    assert values["referral_source"] == "Customer Service Centre"
    assert referral_data()["referrer"]["name"] in values["referrer_details"]
    assert hospital["referral_source"] == "GP or health professional"
    assert (contact["step_type"], contact["values"]["contact_source"]) == ("Adult Contact", "Hospital")
    assert (unmapped["referral_source"], unmapped["referral_sent_by"]) == (None, other_system)
    assert contact["values"]["contact_sent_by"] == f"uhl-patient-flow: {HOSPITAL['name']}, {HOSPITAL['role']}, " \
        f"{HOSPITAL['organisation']}"
