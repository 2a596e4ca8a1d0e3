"""`send-referral`: publish a referral as an upstream system would and show what happened."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, Seen, publish

ANSWERS = {"referral.accepted", "referral.rejected"}


async def send_referral(path: Path, bootstrap: str, *, source: str, keep_id: bool, timeout: float) -> int:
    data = json.loads(path.read_text())
    if not keep_id:  # a fresh id each time, so a second run is a new referral, not a duplicate
        data["referral_id"] = f"{data.get('referral_id', 'REF')}-{uuid.uuid4().hex[:8]}"
    data.setdefault("received_at", datetime.now(UTC).isoformat())
    envelope = new_message("referral.received", source, data, dataschema="referral.received/1")
    async with EventLog(bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS,
                                    topics.dlq(topics.REFERRALS_INTAKE)]) as log:
        await publish(bootstrap, topics.REFERRALS_INTAKE, [(data.get("referral_id"), envelope.to_bytes())])
        print(f"sent referral {data.get('referral_id')} as message {envelope.id}")
        try:
            [answer] = await log.wait_for(lambda s: s.caused_by(envelope.id) and s.type in ANSWERS, timeout)
            if answer.type == "referral.accepted":
                await log.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "step.created", timeout)
        except TimeoutError:
            print(f"no outcome within {timeout}s: is `make run` running?")
            return 1
        for seen in sorted(log.matching(lambda s: s.caused_by(envelope.id)), key=lambda s: s.topic):
            _show(seen)
    return 0


def _show(seen: Seen) -> None:
    print(f"  {seen.topic:<17} {seen.type:<22} {json.dumps(seen.data)}")
    data = seen.data
    if seen.type == "step.created":
        print("\nLook it up (every read needs a bearer token; development keys make one):")
        print("  TOKEN=$(.venv/bin/python -m tessera read-token --as referrals)")
        bearer = '-H "Authorization: Bearer $TOKEN"'
        print(f"  curl -s {bearer} localhost:8081/people/{data['person_id']}")
        print(f"  curl -s {bearer} localhost:8082/people/{data['person_id']}/steps")
        print(f"  curl -s {bearer} localhost:8082/teams/{data['assignee']['id']}/work")
