"""kill -9 of the referrals service while referrals are in flight: nothing lost, nothing doubled."""

import os

from shared import topics
from shared.testing import EventLog, ServiceProcess, publish
from tests.factories import referral_message, unique_referral

IN_FLIGHT = int(os.environ.get("CRASH_REFERRALS", "500"))


async def test_kill_9_while_referrals_are_in_flight_loses_and_duplicates_nothing(
        infra, referrals: ServiceProcess, events: EventLog, db):
    batch = [unique_referral() for _ in range(IN_FLIGHT)]
    ids = {d["referral_id"] for d in batch}
    accepted = lambda s: s.type == "referral.accepted" and s.data["referral_id"] in ids  # noqa: E731

    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(d["referral_id"], referral_message(d).to_bytes()) for d in batch])
    await events.wait_for(accepted, timeout=60, count=min(50, IN_FLIGHT // 10))
    referrals.kill()
    answered_before_kill = len({s.data["referral_id"] for s in events.matching(accepted)})
    referrals.start()
    await referrals.ready()
    await events.wait_until(lambda: {s.data["referral_id"] for s in events.matching(accepted)} == ids, 180)

    answers = events.matching(accepted)
    distinct_messages = {s.envelope.id for s in answers}
    per_referral = {}
    for s in answers:
        per_referral.setdefault(s.data["referral_id"], set()).add(s.envelope.id)
    nhs_numbers = [d["person"]["nhs_number"] for d in batch]
    people = await db.fetchval("SELECT count(*) FROM referrals.people WHERE nhs_number = ANY($1)", nhs_numbers)
    rows = await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE referral_id = ANY($1)", list(ids))
    print(f"\nintake crash: {IN_FLIGHT} referrals, {answered_before_kill} answered before kill -9, "
          f"{len(answers)} referral.accepted copies on the topic, {len(distinct_messages)} distinct")

    assert answered_before_kill < IN_FLIGHT, "the kill came after every referral was answered"
    assert set(per_referral) == ids  # 0 lost
    assert all(len(m) == 1 for m in per_referral.values())  # 0 duplicate referral.accepted
    assert people == IN_FLIGHT  # 0 duplicate people
    assert rows == IN_FLIGHT
