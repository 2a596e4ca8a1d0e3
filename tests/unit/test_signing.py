"""Issue #21 §1-2: what a signature proves, and what makes the verifier refuse (shared/signing.py).

Pure logic over keys made in a temporary folder; the broker and services are in
tests/integration/test_signed_identity.py.
"""

import json
import time
import uuid
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from shared import producers, signing, topics
from shared.envelope import new_message
from tessera import signer as cli

SW = {"worker_id": "sw-1", "roles": ["social_worker"], "team_ids": ["t1"]}


def desk_command(keys: Path, actor: dict = SW, **signature: float) -> dict:
    value = new_message("step.start", producers.DESK, {"actor": actor, "step_id": str(uuid.uuid4())}).to_bytes()
    body = json.loads(value)
    body["signature"] = signing.load_signer(keys, "web").signature(body, actor=body["data"]["actor"], **signature)
    return body


def refusal(verifier: signing.Verifier, body: dict, topic: str = topics.WORKFLOW_COMMANDS,
            at: float | None = None) -> str:
    with pytest.raises(signing.Unauthenticated) as refused:
        verifier.verify(body, topic, at if at is not None else time.time())
    return refused.value.reason


def test_a_desk_command_proves_its_producer_and_the_signed_in_worker(keys, verifier):
    verified = verifier.verify(desk_command(keys), topics.WORKFLOW_COMMANDS, time.time())
    assert verified == signing.Verified(producers.DESK, SW)


def test_an_edited_actor_an_edited_field_and_an_unsigned_message_are_refused(keys, verifier):
    promoted = desk_command(keys)
    promoted["data"]["actor"] = {**SW, "roles": ["head_of_service"]}
    assert refusal(verifier, promoted) == "data.actor differs from the signed actor"
    moved = desk_command(keys)
    moved["data"]["step_id"] = str(uuid.uuid4())
    assert refusal(verifier, moved) == "changed after signing: data"
    retimed = desk_command(keys)
    retimed["subject"] = "someone-else"
    assert refusal(verifier, retimed) == "changed after signing: subject"
    unsigned = desk_command(keys)
    del unsigned["signature"]
    assert refusal(verifier, unsigned) == "not signed"
    assert refusal(verifier, {**unsigned, "signature": "e30.e30"}) == "signature: not a compact JWS"


def test_a_key_nobody_trusts_and_a_key_of_another_producer_are_refused(keys, verifier):
    body = desk_command(keys)
    stranger = signing.Signer(producers.DESK, OKPKey.generate_key("Ed25519"))
    body["signature"] = stranger.signature(body, actor=SW)
    assert refusal(verifier, body) == "signed by a key nobody trusts"
    body["signature"] = signing.Signer(producers.DESK, signing.load_signer(keys, "documents").key).signature(
        body, actor=SW)
    assert refusal(verifier, body) == "the key signs for tessera/documents, not for the producer named"


def test_a_desk_command_without_the_worker_in_the_signature_is_refused(keys, verifier):
    body = desk_command(keys)
    body["signature"] = signing.load_signer(keys, "web").signature(body)
    assert refusal(verifier, body) == "a command from the desk without the signed-in worker"


def test_expiry_is_judged_at_the_records_broker_time_not_the_readers_clock(keys, verifier):
    """A backlog read after an outage is accepted; a signature an hour old when written is not."""
    written_an_hour_ago = time.time() - 3600
    old = desk_command(keys, now=written_an_hour_ago)
    assert verifier.verify(old, topics.WORKFLOW_COMMANDS, written_an_hour_ago + 5).producer == producers.DESK
    assert refusal(verifier, old) == "signature expired"
    assert refusal(verifier, desk_command(keys), at=time.time() - 600) == "signed after the message was written"


def test_a_producer_may_send_only_what_the_table_allows(keys, verifier):
    """shared/producers.py: allocation may assign steps (R-A3) but not finish them; no service sends as the desk."""
    allocation = signing.load_signer(keys, "allocation")
    for command_type, allowed in (("step.assign", True), ("step.finish", False)):
        body = json.loads(new_message(command_type, "tessera/allocation", {"actor": SW}).to_bytes())
        body["signature"] = allocation.signature(body)
        if allowed:
            assert verifier.verify(body, topics.WORKFLOW_COMMANDS, time.time()).actor is None
        else:
            assert refusal(verifier, body) == "tessera/allocation may not send step.finish on workflow.commands"
    event = json.loads(new_message("step.started", "tessera/allocation", {}).to_bytes())
    event["signature"] = allocation.signature(event)
    assert refusal(verifier, event, topics.WORKFLOW_EVENTS) == (
        "tessera/allocation may not send step.started on workflow.events")
    assert not producers.is_signed(topics.REFERRALS_INTAKE) and not producers.is_signed(topics.BROKERAGE_EVENTS)


def test_a_signature_that_claims_to_live_for_a_day_is_refused(keys, verifier):
    body = desk_command(keys)
    long_lived = signing.Signer(producers.DESK, signing.load_signer(keys, "web").key, lifetime_seconds=86400)
    body["signature"] = long_lived.signature(body, actor=SW)
    assert refusal(verifier, body) == f"signature lives longer than {signing.MAX_LIFETIME_SECONDS} s"


def test_signing_appends_the_attribute_and_leaves_the_bytes_the_outbox_audited(keys, verifier):
    value = new_message("step.started", "tessera/workflow", {"step_id": "s-1", "note": "Zoë"}).to_bytes()
    signed = signing.load_signer(keys, "workflow").signed(value)
    assert signed.startswith(value[:-1]) and json.loads(signed)["data"] == json.loads(value)["data"]
    assert verifier.verify(json.loads(signed), topics.WORKFLOW_EVENTS, time.time()).producer == "tessera/workflow"


def test_the_sign_tool_uses_development_keys_only_and_sets_source_and_actor(keys, verifier, tmp_path):
    envelope = new_message("step.start", "whoever", {"actor": {"worker_id": "x"}, "step_id": "s-1"}).to_bytes()
    printed = json.loads(cli.sign_envelope(envelope.decode(), keys, "web", SW))
    assert printed["source"] == producers.DESK and printed["data"]["actor"] == SW
    assert verifier.verify(printed, topics.WORKFLOW_COMMANDS, time.time()).actor == SW
    production = tmp_path / "production"
    signing.make_keys(production)
    (production / signing.DEVELOPMENT_MARKER).unlink()
    with pytest.raises(cli.NotDevelopment):
        cli.sign_envelope(envelope.decode(), production, "web", SW)


def test_a_component_without_keys_does_not_start():
    with pytest.raises(signing.MissingKeys, match="SIGNING_KEYS_DIR is not set"):
        signing.load_signer(None, "workflow")
