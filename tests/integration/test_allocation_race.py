"""Two managers, two allocation processes: one case is allocated to one worker once, every other attempt is a
conflict (R-A3: a worker is involved once; other workers may be involved beside them)."""

import asyncio
import uuid

import httpx

from shared.testing import ServiceProcess, service_auth
from tests.allocation_harness import Staff, referral


async def test_two_allocation_processes_racing_on_one_case_allocate_it_exactly_once(
        infra, services, allocation, out, alloc):
    # a second replica in the same consumer group; commands keyed at random land on both replicas'
    # partitions, so the two processes really do decide on the same case at the same time
    second = ServiceProcess("allocation", dict(allocation._env), infra.log_dir)  # noqa: SLF001
    second.start()
    try:
        await second.ready()
        s = Staff()
        person_id, _ = await referral(infra, out)
        sent = await asyncio.gather(*(
            alloc.publish("case.allocate", {"actor": s.tm if i % 2 else s.tl, "person_id": person_id,
                                            "worker_id": f"w-{s.suffix}", "team_id": s.team},
                          key=str(uuid.uuid4())) for i in range(40)))
        outcomes = await asyncio.gather(*(alloc.outcome(e, timeout=90) for e in sent))
        winners = [o for o in outcomes if not o.rejected]
        assert len(winners) == 1
        assert {o.rejection["code"] for o in outcomes if o.rejected} == {"conflict"}
        async with httpx.AsyncClient(auth=service_auth()) as http:
            rels = (await http.get(f"{second.url}/people/{person_id}/relationships")).json()
        assert [r["worker_id"] for r in rels["worker_relationships"]] == [
            winners[0].of("case.allocated")["worker_id"]]
    finally:
        second.stop()
