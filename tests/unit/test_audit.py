"""Audit entries: who is named for a change, and the hash that chains them (issue 11 §3)."""

from dataclasses import replace

from shared.audit import GENESIS, Cause, chain_hash, entry_of
from shared.envelope import new_message
from tests.factories import actor


def step_started(worker: str | None = None) -> bytes:
    data = {"step_id": "s-1", **({"actor": worker} if worker else {})}
    return new_message("step.started", "tessera/workflow", data, subject="p-1").to_bytes()


def test_a_change_caused_by_a_command_names_the_worker_and_their_roles():
    command = new_message("step.start", "tessera/web", {"actor": actor("w-1", "team_manager", "social_worker")})
    entry = entry_of(step_started("w-1"), Cause(command.to_bytes()))
    assert (entry.actor_id, entry.actor_roles) == ("w-1", ("team_manager", "social_worker"))
    assert (entry.action, entry.subject, entry.object_id) == ("step.started", "p-1", "s-1")
    assert (entry.cause_type, entry.source, entry.causation_id) == ("step.start", "tessera/web", None)


def test_a_change_without_a_worker_is_the_events_actor_or_the_system_with_its_source():
    referral = new_message("referral.received", "contact-centre", {"referral_id": "R-1"})
    assert entry_of(step_started("system:scheduler"), Cause(referral.to_bytes())).actor_id == "system:scheduler"
    entry = entry_of(step_started(), Cause(referral.to_bytes()))
    assert (entry.actor_id, entry.actor_roles, entry.source) == ("system:workflow", (), "contact-centre")
    assert entry_of(step_started(), None).source == "tessera/workflow"


def test_the_hash_covers_every_field_and_the_previous_hash():
    entry = entry_of(step_started("w-1"), None)
    digest = chain_hash(GENESIS, 1, entry)
    assert digest == chain_hash(GENESIS, 1, entry) and len(digest) == 64
    assert chain_hash(GENESIS, 2, entry) != digest
    assert chain_hash("1" * 64, 1, entry) != digest
    assert chain_hash(GENESIS, 1, replace(entry, actor_id="w-2")) != digest
    assert chain_hash(GENESIS, 1, replace(entry, actor_roles=("head_of_service",))) != digest
