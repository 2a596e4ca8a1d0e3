"""R-W5, issue #18: what the first steps of a batch of accepted referrals are prefilled from — each person's
record and the referral's own details — is read from the real referrals service once for the batch, not twice
for every referral; each step still gets its own person's and referral's values, and the read is refused to a
worker's token without the desk's grant for the person."""

import uuid

import httpx
from aiokafka.structs import ConsumerRecord

from services.workflow import handlers
from shared import bearer, topics
from shared.readers import Answer, PersonReader
from shared.settings import Settings
from shared.testing import publish, service_auth, signer_of, worker_auth
from tests.factories import referral_message, unique_referral
from tests.workflow_harness import SCREENING

REFERRALS = 5
AWAY = 20  # referrals accepted while workflow is away


class CountedReader(PersonReader):
    """The workflow service's reader of referrals, reading as workflow does, counting its requests."""

    requests = 0

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self._tokens = bearer.Tokens(lambda: signer_of("workflow"))

    async def answer(self, path: str) -> Answer:
        self.requests += 1
        return await super().answer(path)


def as_record(offset: int, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topics.REFERRALS_EVENTS, 0, offset, 0, 0, None, value, None, len(value), -1, [])


async def accepted_referrals(infra, events, count: int) -> tuple[list[dict], list]:
    sent = [unique_referral(reason=f"Reason {uuid.uuid4().hex[:8]}") for _ in range(count)]
    envelopes = [referral_message(data) for data in sent]
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(d["referral_id"], e.to_bytes())
                                                             for d, e in zip(sent, envelopes, strict=True)])
    accepted = []
    for envelope in envelopes:
        [seen] = await events.wait_for(lambda s, e=envelope: s.caused_by(e.id) and s.type == "referral.accepted", 30)
        accepted.append(seen)
    return sent, accepted


async def test_R_W5_a_batch_of_accepted_referrals_is_read_from_referrals_once(infra, referrals, events):
    sent, accepted = await accepted_referrals(infra, events, REFERRALS)
    reader = CountedReader(referrals.url)
    noise = b'{"not": "an envelope"}'
    records = [as_record(i, s.value) for i, s in enumerate(accepted)] + [as_record(REFERRALS, noise)]
    try:
        await handlers._read_starts_ahead(records, {"people": reader})
        starts = [await reader.start(s.data["workflow_id"]) for s in accepted]
    finally:
        await reader.close()
    assert reader.requests == 1, "one read of referrals for the batch"
    for data, seen, start in zip(sent, accepted, starts, strict=True):
        assert start is not None
        assert start["person"]["person_id"] == seen.data["person_id"]
        assert start["person"]["last_name"] == data["person"]["last_name"]
        assert (start["referral"]["referral_id"], start["referral"]["reason"]) == (data["referral_id"], data["reason"])


async def test_R_W5_a_start_not_read_ahead_is_read_on_its_own(infra, referrals, events):
    _, [accepted] = await accepted_referrals(infra, events, 1)
    reader = CountedReader(referrals.url)
    try:
        await handlers._read_starts_ahead([as_record(0, accepted.value)], {"people": reader})
        assert reader.requests == 0, "a batch of one is read by its handler, as before"
        start = await reader.start(accepted.data["workflow_id"])
        missing = await reader.start(str(uuid.uuid4()))
    finally:
        await reader.close()
    assert start is not None and start["person"]["person_id"] == accepted.data["person_id"]
    assert missing is None
    assert reader.requests == 2


async def test_the_starts_of_workflows_are_refused_without_a_grant_and_bounded(infra, referrals, events):
    _, [accepted] = await accepted_referrals(infra, events, 1)
    workflow_id, person_id = accepted.data["workflow_id"], accepted.data["person_id"]
    path = f"/referrals/starts?workflow_ids={workflow_id}"
    too_many = ",".join(str(uuid.uuid4()) for _ in range(101))
    async with httpx.AsyncClient(base_url=referrals.url, auth=worker_auth("sw-1", ["social_worker"])) as worker, \
            httpx.AsyncClient(base_url=referrals.url, auth=worker_auth("sw-1", ["social_worker"],
                                                                       person_id=person_id)) as granted, \
            httpx.AsyncClient(base_url=referrals.url, auth=service_auth("workflow")) as service:
        assert (await worker.get(path)).status_code == 403
        assert list((await granted.get(path)).json()) == [workflow_id]
        assert (await service.get(f"/referrals/starts?workflow_ids={too_many}")).status_code == 422
        refused = await service.get("/referrals/starts?workflow_ids=not-a-uuid")
        assert refused.status_code == 422 and "workflow_ids" in refused.text


async def reads_of(process, resource: str) -> int:
    """How many reads of another service's `resource` the service made since it started, from its /metrics."""
    async with httpx.AsyncClient(auth=service_auth(), base_url=process.url) as http:
        text = (await http.get("/metrics")).text
    return sum(int(float(line.split()[-1])) for line in text.splitlines()
               if line.startswith("tessera_reads_total{") and f'resource="{resource}"' in line)


async def test_R_W5_referrals_accepted_while_workflow_was_away_are_read_a_batch_at_a_time(
        infra, referrals, workflow, events):
    """Workflow is stopped while 20 referrals are accepted; when it is back, each partition's first fetch holds
    its share, read from referrals in one go: each first step is prefilled with its own person's name and the
    date its referral was received, from at most one read a partition."""
    workflow.stop()
    try:
        sent, accepted = await accepted_referrals(infra, events, AWAY)
    finally:
        workflow.start()
    await workflow.ready()
    created = {}
    for seen in accepted:
        [step] = await events.wait_for(lambda s, w=seen.data["workflow_id"]: s.type == "step.created"
                                       and s.data.get("workflow_id") == w, 60)
        created[seen.data["workflow_id"]] = step.data["step_id"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        steps = [(await http.get(f"/steps/{created[s.data['workflow_id']]}")).json() for s in accepted]
    for data, step in zip(sent, steps, strict=True):
        assert step["step_type"] == SCREENING
        assert (step["values"]["first_name"], step["values"]["last_name"]) == (
            data["person"]["first_name"], data["person"]["last_name"])
        assert step["values"]["referral_date"] == data["received_at"][:10]
    reads = await reads_of(workflow, "referrals")
    assert 1 <= reads <= Settings().topic_partitions, f"{reads} reads of referrals for {AWAY} referrals"
