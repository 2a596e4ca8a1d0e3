"""Short-term service → brokerage → lack of provision → interim homecare → PVI (seed 002; R-C4, R-F1..R-F3, R-F6).

The STS case co-ordinator's support plan (with the FABO request, as the person may co-fund) asks
brokerage to source PVI care; 48 hours pass on the scheduler's test clock with no offer and the
person is on the lack-of-provision list; the STS DSO passes the personal service plan to the interim
DSO (sent immediately, with the reason) and may finish only once the Purchase Support Team has
completed the service end date request; the co-ordinator requests the interim service's long-term
PO; brokerage's offer takes the person off the list and its confirmation ends the interim and brokerage
orders the day before the PVI start date and asks for the PVI order.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import httpx
import pytest

from shared import topics
from shared.testing import EventLog, poll_until, service_auth
from tests.purchasing_harness import (
    BROKERAGE,
    DOM_CARE,
    INTERIM_REASON,
    SOURCE_PVI,
    brokerage_message,
    coordinator,
    from_brokerage,
    orders_of,
    plan_values,
    support_plan,
)
from tests.workflow_harness import Commands, actor, new_case

pytestmark = pytest.mark.e2e

PSP = "Personal Service Plan Homecare"
LACK_OF_PROVISION = "No PVI offer after 48 hours with brokerage (lack of provision)"
MDT_DECISION = "STS MDT decision – referral to the interim team"


@pytest.fixture
async def orders(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.PURCHASING_ORDERS, topics.SCHEDULER_TIMERS]) as log:
        yield log


async def _listed(http: httpx.AsyncClient, person_id: str) -> list[dict]:
    return [e for e in (await http.get("/purchasing/lack-of-provision")).json() if e["person_id"] == person_id]


async def test_R_F2_sts_to_brokerage_to_lack_of_provision_to_interim_homecare_to_pvi(
        infra, referrals, workflow, scheduler, scheduler_clock, events: EventLog, orders: EventLog,
        commands: Commands):
    run = uuid.uuid4().hex[:8]
    cc = coordinator()
    finance = actor(f"fabo-{run}", "business_support", teams=("adult-finance",))
    pst = actor(f"pst-{run}", "business_support", teams=("purchase-support-team",))
    sts_dso = actor(f"sts-dso-{run}", "domiciliary_service_officer", teams=("short-term-service",))
    interim_dso = actor(f"interim-dso-{run}", "domiciliary_service_officer", teams=("interim-homecare",))
    person_id, _ = await new_case(infra, events)

    # 1. the STS support plan: brokerage to source PVI care; the FABO request first (R-F3)
    plan = await support_plan(commands, cc, person_id, plan_values(DOM_CARE, may_co_fund=True),
                              [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    refused = await commands.send("step.finish", cc, key=person_id, step_id=plan)
    assert [r["code"] for r in refused.reasons] == ["required_request"] and "FABO" in refused.reasons[0]["message"]
    fabo = (await commands.send("step.send_request", cc, key=person_id, step_id=plan, name="FABO request")).ok()
    assert fabo.of("request.raised")["to"] == {"kind": "team", "id": "adult-finance"}
    (await commands.send("request.complete", finance, key=person_id,
                         request_id=fabo.of("request.raised")["request_id"], note="Co-funding assessed")).ok()
    (await commands.send("step.finish", cc, key=person_id, step_id=plan)).ok()
    [sourcing] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.requested", 30)
    assert (sourcing.data["kind"], sourcing.data["annual_cost"]) == ("brokerage", "7752.38")
    po_a = sourcing.data["po_request_id"]
    [timer] = await orders.wait_for(lambda s: s.type == "timer.set" and s.data["key"] == f"lack-of-provision:{po_a}")

    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        assert await _listed(http, person_id) == []
        # 2. 48 hours with brokerage and no PVI offer: the lack-of-provision list (R-F2)
        await scheduler_clock.move_to(datetime.fromisoformat(timer.data["due_at"]) + timedelta(seconds=1))
        [listed] = await poll_until(lambda: _listed(http, person_id), 60, "on the lack-of-provision list")
        assert (listed["po_request_id"], listed["step_id"]) == (po_a, plan)
        assert listed["since"] == datetime.fromisoformat(timer.data["due_at"]).isoformat()

        # 3. the STS DSO passes the PSP to the interim DSO, sent at once with the reason ...
        psp = await commands.given_step(sts_dso, person_id, PSP)
        (await commands.send("step.save", sts_dso, key=person_id, step_id=psp, values={
            "psp_goals": "Washing and dressing", "psp_visits": "Two calls a day",
            "interim_capacity_agreed": True, "scheduling_notified": True,
            "service_end_date": date.today().isoformat()})).ok()
        # not before the STS MDT's decision to refer to the interim team is recorded (seed 002, R-W9)
        early = await commands.send("step.add_next_action", sts_dso, key=person_id, step_id=psp, action=PSP,
                                    assignee={"kind": "worker", "id": interim_dso["worker_id"]},
                                    send_immediately=True, reason=LACK_OF_PROVISION)
        assert [r["code"] for r in early.reasons] == ["form_required"]
        (await commands.send("step.add_form", sts_dso, key=person_id, step_id=psp, form=MDT_DECISION)).ok()
        (await commands.send("step.save", sts_dso, key=person_id, step_id=psp, values={
            "mdt_decision_date": date.today().isoformat(), "mdt_reason": LACK_OF_PROVISION,
            "mdt_agreed_interim": True})).ok()
        sent = (await commands.send("step.add_next_action", sts_dso, key=person_id, step_id=psp, action=PSP,
                                    assignee={"kind": "worker", "id": interim_dso["worker_id"]},
                                    send_immediately=True, reason=LACK_OF_PROVISION)).ok()
        created = sent.of("step.created")
        assert (created["step_type"], created["assignee"]) == (PSP, {"kind": "worker", "id": interim_dso["worker_id"]})
        # ... and may finish only once the Purchase Support Team has the service end date request
        refused = await commands.send("step.finish", sts_dso, key=person_id, step_id=psp)
        assert [r["code"] for r in refused.reasons] == ["required_request"]
        end_request = (await commands.send("step.send_request", sts_dso, key=person_id, step_id=psp,
                                           name="Service end date request")).ok().of("request.raised")
        assert end_request["to"] == {"kind": "team", "id": "purchase-support-team"}
        assert [r["code"] for r in (await commands.send("step.finish", sts_dso, key=person_id,
                                                        step_id=psp)).reasons] == ["open_request"]
        (await commands.send("request.complete", pst, key=person_id, request_id=end_request["request_id"])).ok()
        (await commands.send("step.finish", sts_dso, key=person_id, step_id=psp)).ok()

        # 4. the co-ordinator requests the long-term PO for the interim service
        review = await support_plan(commands, cc, person_id, plan_values(DOM_CARE),
                                    [{"action": BROKERAGE, "reason": INTERIM_REASON,
                                      "note": "Pass straight to the Purchase Support Team"}],
                                    step_type="Review Support Plan")
        (await commands.send("step.finish", cc, key=person_id, step_id=review)).ok()
        [interim] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.requested"
                                          and s.data["kind"] == "interim_homecare", 30)
        po_b = interim.data["po_request_id"]

        # 5. brokerage: an offer takes the person off the list; the confirmation ends B and asks for the PVI order
        start = date.today() + timedelta(days=21)
        await from_brokerage(infra.bootstrap, person_id,
                             brokerage_message("provider.offered", po_a, "Acme PVI", start, person_id))
        await poll_until(lambda: _not(_listed(http, person_id)), 30, "off the lack-of-provision list")
        await from_brokerage(infra.bootstrap, person_id,
                             brokerage_message("provider.confirmed", po_a, "Acme PVI", start, person_id))
        ends = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.end_requested", 30,
                                     count=2)
        [pvi] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.requested"
                                      and s.data["kind"] == "long_term_homecare", 30)
        on_record = {o["po_request_id"]: o for o in (await http.get(f"/people/{person_id}/purchase-orders")).json()}

    # R-F6: the interim order (B) and the brokerage one (A) end the day before the PVI provider starts
    day_before = (start - timedelta(days=1)).isoformat()
    assert sorted((s.data["po_request_id"], s.data["end_date"]) for s in ends) == sorted(
        [(po_b, day_before), (po_a, day_before)])
    assert (pvi.data["provider"], pvi.data["start_date"], pvi.data["annual_cost"]) == (
        "Acme PVI", start.isoformat(), "7752.38")
    assert sorted(s.data["kind"] for s in orders_of(orders, person_id)) == [
        "brokerage", "interim_homecare", "long_term_homecare"]
    assert on_record[po_b]["end_date"] == on_record[po_a]["end_date"] == day_before
    assert "Acme PVI" in on_record[po_b]["end_reason"] and "long-term order" in on_record[po_a]["end_reason"]
    assert on_record[po_a]["confirmed_provider"] == "Acme PVI"
    # the 48-hour timer had fired: nothing left to cancel
    assert orders.matching(lambda s: s.type == "timer.cancel" and s.data["key"] == f"lack-of-provision:{po_a}") == []


async def _not(listed) -> bool:
    return not await listed
