"""Every command × every role, through the real broker: nobody acts outside their role (issue 11 §3).

Each cell sends one command as a worker holding exactly that one role, a member of the team
concerned, and NOT the assignee of the step or the recipient of the request it touches: so
only the role can let them act. A cell expected to deny must be refused with an authorisation
code (AUTHZ_CODES); a cell expected to allow must not be. An allowed command may still be
refused for another reason (a wrong state, a missing field, a duplicate): the matrix is about
who may, not whether this particular change is valid now.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from services.allocation import domain as allocation_domain
from shared import topics
from shared.commands import allocation as allocation_commands
from shared.commands import referrals as referral_commands
from shared.commands import workflow as workflow_commands
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, Seen, publish
from tests.allocation_harness import actor, referral_seen, tray_args
from tests.factories import referral_message, unique_referral
from tests.workflow_harness import given_step

ROOT = Path(__file__).resolve().parents[2]
AUTHZ_CODES = frozenset({"role", "not_assignee", "not_recipient", "own_work", "not_team_member", "no_relationship",
                         "not_startable"})

# --- the expected matrix, from docs/rules.md ----------------------------------------------------

CSP = "Care and Support Plan"
CSP_REQUEST = "REQUIRED Please Authorise Support Plan"
NFA_ACTION = "No further action – other workflow continues (NFA)"
CSP_AUTHORISERS = frozenset({"team_manager", "head_of_service"})  # R-RQ5: "only TM or HOS"
MANAGERS = frozenset({"senior_officer", "team_manager", "assistant_team_manager", "team_leader", "head_of_service"})
TRAY = frozenset({"team_manager", "team_leader"})  # R-T1
REVIEW_TRAY = TRAY | {"assistant_team_manager"}  # R-T8
ALLOCATORS = frozenset({"team_manager", "assistant_team_manager", "team_leader", "senior_officer",
                        "head_of_service"})  # R-A3, R-A4: a manager allocates and reassigns
ANYONE: frozenset[str] = frozenset({"*"})
NOBODY: frozenset[str] = frozenset()

EXPECTED: dict[str, frozenset[str]] = {
    # workflow.commands, on a Care and Support Plan assigned to another worker
    # R-W12: only the ATM/TM opens Professional Support from Start > New (seed 001 §3.3)
    "step.start_new": frozenset({"team_manager", "assistant_team_manager"}),
    "step.start": NOBODY,  # R-W2: only the assignee starts it
    "step.assign": MANAGERS | CSP_AUTHORISERS,  # R-W3
    "step.save": CSP_AUTHORISERS,  # R-W4: the assignee or an authoriser of the step type
    "step.refresh_prepopulated": CSP_AUTHORISERS,  # R-W5
    "step.add_form": CSP_AUTHORISERS,  # R-W9
    "step.add_next_action": CSP_AUTHORISERS,  # R-NA2, R-NA5
    "step.remove_next_action": CSP_AUTHORISERS,  # R-NA2
    "step.send_request": CSP_AUTHORISERS,  # R-RQ1
    "step.send_notification": CSP_AUTHORISERS,  # R-RQ1
    "step.finish": CSP_AUTHORISERS,  # R-RQ7: a two-part step is finished by its authoriser
    "step.authorise": CSP_AUTHORISERS,  # R-RQ5
    "step.return": MANAGERS | CSP_AUTHORISERS,  # R-RQ4
    "step.cancel": MANAGERS | CSP_AUTHORISERS,  # R-W2
    "step.reschedule": MANAGERS | CSP_AUTHORISERS,  # R-S1
    "request.complete": NOBODY,  # R-RQ2: the recipient completes a request, whatever their role
    "person.record_death": ANYONE,  # R-K8: no role is named
    # allocation.commands, for a person of the actor's team
    # another worker's relationship is an allocation: a manager's act (R-A1, R-A3)
    "worker_relationship.add": ALLOCATORS,
    "worker_relationship.end": ALLOCATORS,
    "org_relationship.add": ANYONE,  # R-A2: no role is named
    "org_relationship.end": ANYONE,  # R-A2
    "case.allocate": ALLOCATORS,  # R-A3
    "case.reassign": ALLOCATORS,  # R-A4
    "tray.add": TRAY,  # R-T1
    "tray.review": TRAY,  # R-T1, R-T5
    "tray.remove": TRAY,  # R-T1
    "review_tray.add": REVIEW_TRAY,  # R-T8
    "review_tray.remove": REVIEW_TRAY,  # R-T8
    # referrals.commands: no rule restricts the person record by role (R-P1..R-P3); each role's actor has
    # recorded their own worker relationship with the person (R-A1), as person commands need (issue #11 §3)
    "person.update": ANYONE,
    "person_relationship.add": ANYONE,
    "person_relationship.end": ANYONE,
    "case_note.add": ANYONE,
}

COMMAND_TOPICS = {
    **{t: (topics.WORKFLOW_COMMANDS, topics.WORKFLOW_EVENTS) for t in workflow_commands.COMMANDS},
    **{t: (topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS) for t in allocation_commands.COMMANDS},
    **{t: (topics.REFERRALS_COMMANDS, topics.REFERRALS_EVENTS) for t in referral_commands.COMMANDS},
}


def roles_in_the_system() -> set[str]:
    """Every role the packs, the demo users and the allocation rules name."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("authorisers", "added_by_roles", "roles"):
                    found.update(value)
                elif key == "owner_role" and value:
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in (ROOT / "services/workflow/definitions").glob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    walk(yaml.safe_load((ROOT / "services/web/users.yaml").read_text()))
    return found | allocation_domain.TRAY_ROLES | allocation_domain.REVIEW_TRAY_ROLES \
        | allocation_domain.ALLOCATING_ROLES


def allows(command: str, role: str) -> bool:
    allowed = EXPECTED[command]
    return allowed is ANYONE or role in allowed


# --- sending in batches ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    topic: str
    key: str
    envelope: Envelope


def command(type_: str, who: dict[str, Any], key: str, **data: Any) -> Send:
    return Send(COMMAND_TOPICS[type_][0], key, new_message(type_, "test-front-end", {"actor": who, **data},
                                                           subject=key))


async def outcomes(infra: Any, events: EventLog, sends: list[Send], timeout: float = 90.0) -> dict[str, list[Seen]]:
    """Publish every command at once; each one's outcome events, by command id."""
    by_topic: dict[str, list[tuple[str | None, bytes]]] = {}
    for s in sends:
        by_topic.setdefault(s.topic, []).append((s.key, s.envelope.to_bytes()))
    for topic, messages in by_topic.items():
        await publish(infra.bootstrap, topic, messages)
    wanted = {str(s.envelope.id) for s in sends}
    answers = {a for _, a in COMMAND_TOPICS.values()}

    def mine() -> list[Seen]:
        return events.matching(lambda e: e.topic in answers and e.body.get("causationid") in wanted)

    await events.wait_until(lambda: {e.body["causationid"] for e in mine()} == wanted, timeout,
                            f"outcomes of {len(wanted)} commands")
    found: dict[str, list[Seen]] = {}
    for e in mine():
        found.setdefault(e.body["causationid"], []).append(e)
    return found


def only(seen: Iterable[Seen], type_: str) -> dict[str, Any]:
    found = [e for e in seen if e.type == type_]
    assert len(found) == 1, f"expected {type_}, got {[(e.type, e.data.get('reasons')) for e in seen]}"
    return found[0].data


# --- the targets each role acts on ------------------------------------------------------------------


@dataclass
class Targets:
    """What one role's commands touch: a person of the team, their step, relationships and tray entries."""

    person_id: str
    review_person_id: str  # a person is on one tray at a time: the Review tray's is another
    owner: dict[str, Any]
    step_id: str = ""
    worker_relationship_id: str = ""
    org_relationship_id: str = ""
    tray_entry_id: str = ""
    review_entry_id: str = ""
    person_relationship_id: str = ""


@dataclass(frozen=True)
class World:
    suffix: str
    team: str
    setup_manager: dict[str, Any]
    other_person_id: str
    request_person_id: str
    request_id: str
    targets: dict[str, Targets]

    def actor(self, role: str) -> dict[str, Any]:
        return actor(f"matrix-{role}-{self.suffix}", role, teams=(self.team,))


async def new_people(infra: Any, events: EventLog, db: Any, n: int) -> list[str]:
    messages = [referral_message(unique_referral()) for _ in range(n)]
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(m.data["referral_id"], m.to_bytes()) for m in messages])
    ids = {str(m.id) for m in messages}
    accepted = await events.wait_for(lambda s: s.type == "referral.accepted" and s.body.get("causationid") in ids,
                                     60, n)
    people = [a.data["person_id"] for a in accepted]
    for person_id in people:
        await referral_seen(db, person_id)  # allocation knows the case (urgency, residence)
    return people


def setup_commands(world_team: str, manager: dict[str, Any], t: Targets, other_person_id: str) -> list[Send]:
    pid, later = t.person_id, str(date.today() + timedelta(days=60))
    return [
        command("tray.add", manager, pid, person_id=pid, **tray_args(world_team)),
        command("review_tray.add", manager, t.review_person_id, person_id=t.review_person_id, team_id=world_team,
                review_due=later, reason="Annual review rescheduled"),
        command("org_relationship.add", manager, pid, person_id=pid, team_id=f"{world_team}-setup"),
        command("worker_relationship.add", manager, pid, person_id=pid, worker_id=f"{manager['worker_id']}-w"),
        command("person_relationship.add", manager, pid, person_id=pid, other_person_id=other_person_id,
                relationship="Neighbour", start_date=str(date.today()),
                access_reason="Recording the neighbour the duty call named"),  # no relationship yet: break-glass
    ]


def record_setup(t: Targets, seen: dict[str, list[Seen]], sends: list[Send]) -> None:
    found = {s.envelope.type: seen[str(s.envelope.id)] for s in sends}
    t.tray_entry_id = only(found["tray.add"], "tray.entry_added")["entry_id"]
    t.review_entry_id = only(found["review_tray.add"], "review_tray.entry_added")["entry_id"]
    t.org_relationship_id = only(found["org_relationship.add"], "org_relationship.added")["relationship_id"]
    t.worker_relationship_id = only(found["worker_relationship.add"], "worker_relationship.added")["relationship_id"]
    t.person_relationship_id = only(found["person_relationship.add"], "person_relationship.added")["relationship_id"]


async def build_world(infra: Any, events: EventLog, db: Any, workflow_db: Any, roles: list[str]) -> World:
    suffix = uuid.uuid4().hex[:8]
    team = f"matrix-team-{suffix}"
    manager = actor(f"matrix-setup-tm-{suffix}", "team_manager", teams=(team,))
    *people, other, request_person = await new_people(infra, events, db, 2 * len(roles) + 2)
    targets = {r: Targets(people[2 * i], people[2 * i + 1], actor(f"matrix-owner-{r}-{suffix}", "social_worker"))
               for i, r in enumerate(roles)}
    requester = actor(f"matrix-requester-{suffix}", "social_worker")
    sends = {r: setup_commands(team, manager, t, other) for r, t in targets.items()}
    own = [command("worker_relationship.add", who, t.person_id, person_id=t.person_id, worker_id=who["worker_id"])
           for r, t in targets.items() for who in [actor(f"matrix-{r}-{suffix}", r, teams=(team,))]]
    seen = await outcomes(infra, events, [*own, *(s for batch in sends.values() for s in batch)])
    for role, t in targets.items():
        record_setup(t, seen, sends[role])
        t.step_id = await given_step(workflow_db, t.owner, t.person_id, CSP)  # a plan the owner is writing
    for relationship in own:
        only(seen[str(relationship.envelope.id)], "worker_relationship.added")
    step_id = await given_step(workflow_db, requester, request_person, CSP)
    ask = command("step.send_request", requester, request_person, step_id=step_id, name=CSP_REQUEST,
                  to={"kind": "team", "id": f"{team}-recipients"})
    request_id = only((await outcomes(infra, events, [ask]))[str(ask.envelope.id)], "request.raised")["request_id"]
    return World(suffix, team, manager, other, request_person, request_id, targets)


# --- the cells ---------------------------------------------------------------------------------------


def cells(world: World, role: str) -> list[Send]:
    """One command of every type as `role`, in an order where no allowed command hides a later check."""
    t, who, pid = world.targets[role], world.actor(role), world.targets[role].person_id
    today, later = date.today(), str(date.today() + timedelta(days=30))
    step = {"step_id": t.step_id}

    def as_role(type_: str, **data: Any) -> Send:
        return command(type_, who, pid, **data)

    return [
        as_role("step.start", **step),
        as_role("step.save", **step, values={}),
        as_role("step.refresh_prepopulated", **step),
        as_role("step.add_form", **step, form="Consent to Information Sharing"),
        as_role("step.add_next_action", **step, action=NFA_ACTION),
        as_role("step.remove_next_action", **step, next_action_id=str(uuid.uuid4())),
        # before send_request: an authoriser who sent the REQUIRED request may not authorise it (R-RQ4)
        as_role("step.finish", **step),
        as_role("step.authorise", **step),
        as_role("step.send_notification", **step, name=CSP_REQUEST, to={"kind": "team", "id": world.team}),
        as_role("step.send_request", **step, name=CSP_REQUEST, to={"kind": "team", "id": world.team}),
        as_role("step.reschedule", **step, due_date=later),
        as_role("step.assign", **step, to={"kind": "worker", "id": t.owner["worker_id"]}),
        as_role("step.return", **step, note="Please add the costs"),
        as_role("step.cancel", **step, reason="Opened in error"),
        as_role("step.start_new", person_id=pid, step_type="Professional Support"),
        as_role("person.record_death", person_id=str(uuid.uuid4()), date_of_death=str(today)),
        command("request.complete", who, world.request_person_id, request_id=world.request_id),
        as_role("tray.review", entry_id=t.tray_entry_id, contacted=True, note="Spoke to the person"),
        as_role("tray.remove", entry_id=t.tray_entry_id, reason="Allocated elsewhere"),
        as_role("tray.add", person_id=pid, **tray_args(world.team)),
        command("review_tray.remove", who, t.review_person_id, entry_id=t.review_entry_id, reason="Reviewed early"),
        command("review_tray.add", who, t.review_person_id, person_id=t.review_person_id, team_id=world.team,
                review_due=later, reason="Review next year"),
        as_role("worker_relationship.end", relationship_id=t.worker_relationship_id, end_reason="Moved team"),
        as_role("org_relationship.end", relationship_id=t.org_relationship_id, end_reason="Case transferred"),
        as_role("worker_relationship.add", person_id=pid, worker_id=f"matrix-w-{world.suffix}"),
        as_role("org_relationship.add", person_id=pid, team_id=world.team),
        as_role("case.reassign", person_id=pid, **{"from": {"kind": "team", "id": world.team}},
           to={"kind": "worker", "id": f"matrix-w2-{world.suffix}"}),
        as_role("case.allocate", person_id=pid, worker_id=f"matrix-w3-{world.suffix}", team_id=world.team),
        as_role("person_relationship.end", relationship_id=t.person_relationship_id, end_date=str(today),
           end_reason="Moved away"),
        as_role("person_relationship.add", person_id=pid, other_person_id=world.other_person_id,
           relationship="Friend", start_date=str(today)),
        as_role("person.update", person_id=pid, changes={"preferred_contact": "email"}),
        as_role("case_note.add", person_id=pid, title="Matrix note", type="Case Note", text="A note"),
    ]


def verdict(seen: list[Seen]) -> tuple[bool, set[str]]:
    """(refused for who the actor is, every refusal code)."""
    rejected = [e for e in seen if e.type == "command.rejected"]
    codes = {r["code"] for e in rejected for r in e.data.get("reasons", [])}
    return bool(codes & AUTHZ_CODES), codes


async def test_every_command_for_every_role_allows_exactly_what_the_rules_say(
        infra, referrals, workflow, allocation, events, db, workflow_db):
    """R-W1..R-W9, R-W12, R-NA5, R-RQ1..R-RQ7, R-S1, R-K8, R-A1..R-A4, R-T1, R-T5, R-T8, R-P1..R-P3."""
    roles = sorted(roles_in_the_system())
    all_commands = set(COMMAND_TOPICS)
    assert set(EXPECTED) == all_commands, "declare every command in the matrix"
    world = await build_world(infra, events, db, workflow_db, roles)
    sends = {role: cells(world, role) for role in roles}
    assert all({s.envelope.type for s in batch} == all_commands for batch in sends.values())
    seen = await outcomes(infra, events, [s for batch in sends.values() for s in batch], timeout=120)

    unexpected_allows, unexpected_denies, allowed_and_done = [], [], 0
    for role, batch in sends.items():
        for s in batch:
            denied, codes = verdict(seen[str(s.envelope.id)])
            if allows(s.envelope.type, role) and denied:
                unexpected_denies.append((s.envelope.type, role, sorted(codes)))
            elif not allows(s.envelope.type, role) and not denied:
                unexpected_allows.append((s.envelope.type, role, sorted(codes) or "done"))
            allowed_and_done += not codes
    total = len(roles) * len(all_commands)
    assert (unexpected_allows, unexpected_denies) == ([], []), f"{total} cells"
    assert total == sum(len(batch) for batch in sends.values()) and allowed_and_done > 0
