"""Pack test harness (issue 4 item 10): "given these commands, expect these steps, states, requests".

Two halves with the same vocabulary (command type, actor, arguments):
- `Engine`: the pure domain in memory, for unit tests of a pack in microseconds.
- `Commands` (conftest's `commands` fixture): the same commands through workflow.commands on
  the real broker, each awaited to its single outcome by causationid.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.workflow import domain
from services.workflow.pack import PackRegistry, load_packs
from shared import topics
from shared.commands import workflow as cmd
from shared.commands.base import Reason, RuleBroken
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, Seen

SCREENING = "WB Wellbeing Screening"
TRIAGE = "WB Initial Risk Assessment and Triage"
TA = "WB Trusted Assessment and Support Planning"
SAP = "WB Support Action Plan Delivery"
MONITORING = "WB Case Monitoring"
PROPOSED_CLOSURE = "Adult Proposed Case Closure"
CLOSURE_IN_PROGRESS = "Adult Case Closure in Progress"
SO_TRANSFER = "(R) REQUIRED WB Transfer to Senior Officer to review information and add additional next actions"


def actor(worker_id: str, *roles: str, teams: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"worker_id": worker_id, "roles": list(roles), "team_ids": list(teams)}


@dataclass(frozen=True)
class Personas:
    """The workers of the Wellbeing journey; `suffix` keeps tests' work lists apart."""

    suffix: str = ""

    @property
    def hub(self) -> dict[str, Any]:
        return actor(f"hub{self.suffix}", "gso", teams=("wellbeing-service-hub",))

    @property
    def ta(self) -> dict[str, Any]:
        return actor(f"ta{self.suffix}", "gso", teams=("wellbeing-service-north",))

    @property
    def so(self) -> dict[str, Any]:
        return actor(f"so{self.suffix}", "senior_officer", teams=("wellbeing-service-management",))

    @property
    def gso(self) -> dict[str, Any]:
        return actor(f"gso{self.suffix}", "gso", teams=("wellbeing-service-north",))

    @property
    def admin(self) -> dict[str, Any]:
        return actor(f"admin{self.suffix}", "business_support", teams=("adult-admin",))

    @property
    def stranger(self) -> dict[str, Any]:
        return actor(f"stranger{self.suffix}", "social_worker", teams=("adult-front-door",))


# --- values that complete each Wellbeing step -------------------------------------------------

SCREENING_VALUES = {
    "referral_date": "2024-05-01", "referral_source": "GP or health professional",
    "reason_for_referral": "Struggling at home after a fall", "consent_to_share": True,
    "eligible_for_wellbeing_service": "Yes", "screening_rationale": "Lives alone, recent fall",
}
TRIAGE_VALUES = {
    "risks_identified": "Falls", "initial_risk_level": "Medium", "safeguarding_concerns": False,
    "triage_decision": "Trusted assessment required", "involved_team": "Wellbeing Service North",
    "triage_rationale": "Needs a plan for daily living",
}
TA_VALUES = {
    "ta_referral_summary": "GP referral after a fall", "what_matters_to_me": "Staying at home",
    "ta_risks": "Falls on the stairs", "ta_risk_level": "Medium",
    "support_plan_domains": [
        {"domain": "Home and safety", "identified_need": "Grab rails", "desired_outcome": "Safe on stairs",
         "entry_score": 3},
        {"domain": "Social connections and loneliness", "identified_need": "Isolated",
         "desired_outcome": "Weekly group", "entry_score": 2},
    ],
}
MONITORING_VALUES = {"reason_involvement_ending": "Support plan outcomes achieved",
                     "involvement_end_date": "2024-07-01"}
PROPOSED_CLOSURE_VALUES = {"closure_reason": "No social care needs", "proposed_closure_date": "2024-07-02",
                           "had_direct_payment": False}
CLOSURE_VALUES = {"open_work_ended": True, "relationships_ended": True, "case_closure_date": "2024-07-03"}


def sap_delivery(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GSO's support per domain row: provided, date, and the exit score on each domain's first row."""
    return [{**row, "support_provided": f"Support for {row['domain']}", "support_date": "2024-06-10",
             "exit_score": 4} for row in rows]


# --- the pure engine --------------------------------------------------------------------------

@functools.cache
def shipped_packs() -> PackRegistry:
    """The shipped packs, loaded and checked once per test run (issue 16: reloading them per test took half
    the unit layer). A loaded registry is read-only: its models are frozen and nothing adds to it."""
    return load_packs()


PERSON = {
    "person_id": "00000000-0000-4000-8000-000000000001", "first_name": "Ada", "last_name": "Example",
    "date_of_birth": "1948-03-14", "gender": "female", "nhs_number": "9990000018",
    "address": {"line1": "1 Example Street", "line2": None, "town": "Testtown", "postcode": "LE1 1AA"},
    "phone": "0116 496 0000", "communication_needs": ["Large print"], "preferred_contact": "phone",
}


@dataclass
class Engine:
    """The workflow engine in memory: the handler's load → decide → save, without broker or DB."""

    packs: PackRegistry = field(default_factory=shipped_packs)
    person: dict[str, Any] | None = field(default_factory=lambda: dict(PERSON))
    now: datetime = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    steps: dict[str, domain.Step] = field(default_factory=dict)
    requests: dict[str, domain.Request] = field(default_factory=dict)
    workflows: dict[str, domain.Workflow] = field(default_factory=dict)
    history: list[domain.History] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    timers: dict[str, domain.Timer] = field(default_factory=dict)
    # R-W13: the person's open relationships as allocation lists them ("worker:<id>", "team:<id>")
    relationships: set[str] = field(default_factory=set)
    # R-RQ9: the workers seen acting, with the roles and teams they acted with (every command's actor)
    known_workers: dict[str, domain.Actor] = field(default_factory=dict)
    disabled_workers: set[str] = field(default_factory=set)
    listed_ids: set[str] = field(default_factory=set)
    # R-C5: the person's locality team as allocation's team finder names it
    locality_team: str | None = None
    # R-C5: the person's live purchase orders in workflow's purchasing tables, kind → ids
    live_orders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _ids(self) -> Iterator[str]:
        return (str(uuid.UUID(int=next(self._counter))) for _ in itertools.count())

    def referral(self, step_type: str = SCREENING, person_id: str = PERSON["person_id"]) -> domain.Step:
        """An accepted referral's first step, in its team's inbox, prepopulated."""
        defn = self.packs.step(step_type)
        ids = self._ids()
        referral = domain.ReferralToStart("REF-1", person_id, next(ids), step_type, "normal")
        workflow, step = domain.start_from_referral(
            referral, step_id=next(ids), now=self.now, actor="system:test",
            pack_version=self.packs.latest_version(step_type), team=defn.default_team)
        if self.person is not None:
            step = replace(step, values=domain.prepopulated(defn, self.person, cogs=frozenset({"blue", "yellow"})))
        self.workflows[workflow.workflow_id] = workflow
        self.steps[step.step_id] = step
        return step

    def case_view(self, person_id: str, carer_ids: tuple[str, ...] = ()) -> domain.CaseView:
        """What store.case_view loads: open steps, finished values in finishing order, the finished
        sequence (R-K5), the latest step of each type (R-K7), carers with an assessment (R-K9), live orders (R-C5)."""
        mine = [s for s in self.steps.values() if s.person_id == person_id]
        finished: dict[str, Any] = {}
        due_dates: dict[str, date] = {}
        sequence: list[str] = []
        for s in sorted(mine, key=lambda s: s.updated_at or s.created_at):
            if s.state == "finished":
                finished.pop(s.step_type, None)
                finished[s.step_type] = s.values
                sequence.append(s.step_type)
                if s.due_date is not None:
                    due_dates[s.step_type] = s.due_date
        latest = {s.step_type: domain.LatestStep(s.step_id, domain.london_date(s.created_at), s.values)
                  for s in sorted(mine, key=lambda s: s.created_at) if s.state != "cancelled"}
        assessing = set(domain.carers_assessment_types(self.packs))
        assessed = frozenset(s.person_id for s in self.steps.values() if s.person_id in carer_ids
                             and s.step_type in assessing and s.state != "cancelled")
        return domain.CaseView(
            other_steps=tuple(domain.OtherStep(s.step_id, s.step_type, s.state, s.pack_version, s.workflow_id,
                                               s.due_date)
                              for s in mine if s.state in domain.OPEN_STATES | {"future"}),
            finished_values=finished,
            workflow_ids=tuple(w.workflow_id for w in self.workflows.values()
                               if w.person_id == person_id and w.status == "open"),
            finished_due_dates=due_dates,
            finished_sequence=tuple(sequence),
            latest=latest,
            carers_assessed=assessed,
            live_orders=dict(self.live_orders),
        )

    def send(self, type_: str, who: dict[str, Any], **data: Any) -> domain.Decision:
        """Validate the command as the handler does and apply its decision; RuleBroken if refused."""
        command = cmd.COMMANDS[type_].model_validate({"actor": who, **data})
        step = request = None
        person_id = str(data.get("person_id", ""))
        if "request_id" in data:
            request = self.requests[str(data["request_id"])]
            step = self.steps[request.step_id]
        elif "step_id" in data:
            step = self.steps[str(data["step_id"])]
        if step is not None:
            person_id = step.person_id
        self.now = self.now.replace(microsecond=(self.now.microsecond + 1) % 1_000_000)
        carers = domain.listed_carers(step, self.packs.step(step.step_type, step.pack_version)) \
            if step is not None else ()
        self.saw(who)
        ctx = domain.Context(now=self.now, actor=domain.Actor.of(command.actor), ids=self._ids(),
                             packs=self.packs, person=self.person, case=self.case_view(person_id, carers),
                             involved=self.involved(person_id), known_workers=dict(self.known_workers),
                             disabled_workers=frozenset(self.disabled_workers), locality_team=self.locality_team)
        requests = [r for r in self.requests.values() if step is not None and r.step_id == step.step_id]
        person_steps = [s for s in self.steps.values() if s.person_id == person_id]
        assignments = [h.details for h in reversed(self.history)
                       if step is not None and h.step_id == step.step_id
                       and h.what in ("step.assigned", "step.started")]
        decision = domain.decide(ctx, command, step=step, requests=requests, request=request,
                                 person_steps=person_steps, new_workflow_id=next(self._ids()),
                                 assignments=assignments)
        self._apply(decision)
        return decision

    def listed(self, who: dict[str, Any], active: bool = True) -> None:
        """R-RQ9, R-RQ10: the desk's directory lists the account (with `active`)."""
        self.known_workers[who["worker_id"]] = domain.Actor(
            who["worker_id"], frozenset(who["roles"]), frozenset(who.get("team_ids", ())))
        self.listed_ids.add(who["worker_id"])
        (self.disabled_workers.discard if active else self.disabled_workers.add)(who["worker_id"])

    def saw(self, who: dict[str, Any]) -> None:
        """R-RQ9: as the handler does for every command, keep the roles and teams the worker acted with (a listed
        worker's stay as the directory says)."""
        if who.get("roles") and who["worker_id"] not in self.listed_ids:
            self.known_workers[who["worker_id"]] = domain.Actor(
                who["worker_id"], frozenset(who["roles"]), frozenset(who.get("team_ids", ())))

    def involved(self, person_id: str) -> frozenset[str]:
        """R-W13: what the handler loads: the person's relationships and whoever their steps are or were with."""
        steps = [s for s in self.steps.values() if s.person_id == person_id and s.state != "cancelled"]
        return frozenset(self.relationships | {f"{s.assignee_kind}:{s.assignee_id}" for s in steps}
                         | {f"worker:{s.updated_by}" for s in steps if s.updated_by})

    def given_step(self, step_type: str, who: dict[str, Any], person_id: str = PERSON["person_id"],
                   assignee: dict[str, str] | None = None) -> domain.Decision:
        """Test setup: the case already holds a new workflow whose first step is `step_type`, opened by
        `who` (for themselves unless `assignee`), as the earlier steps' next actions would have left it.
        The case rules of a new step apply (R-K2, R-K5, R-W11); Start > New's R-W12 is not what is tested."""
        self.now = self.now.replace(microsecond=(self.now.microsecond + 1) % 1_000_000)
        actor = cmd.StartNewStep.model_validate({"actor": who, "person_id": person_id, "step_type": step_type}).actor
        target = cmd.Target.model_validate(assignee or {"kind": "worker", "id": actor.worker_id})
        ctx = domain.Context(now=self.now, actor=domain.Actor.of(actor), ids=self._ids(), packs=self.packs,
                             person=self.person, case=self.case_view(person_id))
        decision = domain.open_workflow(ctx, step_type, person_id, target, workflow_id=next(self._ids()))
        self._apply(decision)
        return decision

    def given_step_refused(self, step_type: str, who: dict[str, Any], **data: Any) -> list[Reason]:
        """The reasons a case rule refuses the new step (fails the test if it is opened)."""
        with pytest.raises(RuleBroken) as caught:
            self.given_step(step_type, who, **data)
        return caught.value.reasons

    def refused(self, type_: str, who: dict[str, Any], **data: Any) -> list[Reason]:
        """The reasons a command is refused (fails the test if it is accepted)."""
        with pytest.raises(RuleBroken) as caught:
            self.send(type_, who, **data)
        return caught.value.reasons

    def _apply(self, decision: domain.Decision) -> None:
        for workflow in decision.workflows:
            self.workflows[workflow.workflow_id] = workflow
        for step in (*decision.created, *decision.finished_future):
            self.steps[step.step_id] = step
        if decision.step is not None:
            self.steps[decision.step.step_id] = decision.step
        for request in decision.requests:
            self.requests[request.request_id] = request
        for workflow_id in decision.closed_workflow_ids:
            self.workflows[workflow_id] = replace(self.workflows[workflow_id], status="closed")
        self.history += decision.history
        self.events += decision.events
        for key in decision.cancelled_timers:
            self.timers.pop(key, None)
        for timer in decision.timers:
            self.timers[timer.key] = timer

    def fire(self, key: str, at: datetime | None = None) -> domain.Decision:
        """The scheduler fires a timer (at its due time unless `at`): the handler's timer.due path."""
        timer = self.timers.pop(key)
        self.now = at or timer.due_at
        ctx = domain.Context(now=self.now, actor=domain.Actor("system:scheduler"), ids=self._ids(),
                             packs=self.packs)
        decision = domain.timer_due(ctx, self.steps[timer.step_id], timer.kind, timer.payload)
        self._apply(decision)
        return decision

    # --- expectations ---

    def of_type(self, step_type: str) -> list[domain.Step]:
        return [s for s in self.steps.values() if s.step_type == step_type]

    def only(self, step_type: str) -> domain.Step:
        [step] = self.of_type(step_type)
        return step

    def states(self) -> dict[str, list[str]]:
        """step type → states of its steps, in creation order."""
        out: dict[str, list[str]] = {}
        for s in sorted(self.steps.values(), key=lambda s: s.created_at):
            out.setdefault(s.step_type, []).append(s.state)
        return out

    def event_types(self, decision: domain.Decision) -> list[str]:
        return [type(e).TYPE for e in decision.events]

    def open_request(self, step_id: str) -> domain.Request:
        [request] = [r for r in self.requests.values() if r.step_id == step_id and r.state == "open"]
        return request


def codes(reasons: list[Reason]) -> list[str]:
    return [r.code for r in reasons]


# --- through the real broker ----------------------------------------------------------------------


@dataclass
class Outcome:
    """The single outcome of one command: its events, or one `command.rejected`."""

    command: Envelope
    seen: list[Seen]

    @property
    def types(self) -> list[str]:
        return [s.type or "" for s in self.seen]

    @property
    def rejected(self) -> bool:
        return self.types == ["command.rejected"]

    @property
    def rejection(self) -> dict[str, Any]:
        assert self.rejected, f"expected a rejection, got {self.types}"
        return self.seen[0].data

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return self.rejection["reasons"]

    def of(self, type_: str) -> dict[str, Any]:
        matches = [s.data for s in self.seen if s.type == type_]
        assert matches, f"no {type_} in {self.types}: {[s.data for s in self.seen]}"
        return matches[0]

    def all(self, type_: str) -> list[dict[str, Any]]:
        return [s.data for s in self.seen if s.type == type_]

    def ok(self) -> Outcome:
        assert not self.rejected, f"rejected: {self.seen[0].data}"
        return self


class Commands:
    """Publishes a command envelope to a service's commands topic and awaits its single outcome."""

    def __init__(self, producer: AIOKafkaProducer, events: EventLog, topic: str = topics.WORKFLOW_COMMANDS,
                 answers: str = topics.WORKFLOW_EVENTS, db: Any = None) -> None:
        self._db = db
        self._producer = producer
        self._events = events
        self._topic = topic
        self._answers = answers

    async def publish(self, type_: str, data: dict[str, Any], *, key: str | None = None) -> Envelope:
        envelope = new_message(type_, "test-front-end", data, subject=key)
        await self.publish_raw(envelope.to_bytes(), key=key)
        return envelope

    async def publish_raw(self, value: bytes, *, key: str | None = None) -> None:
        await (await self._producer.send(self._topic, value=value,
                                         key=key.encode() if key else None))

    async def outcome(self, envelope: Envelope, timeout: float = 30.0) -> Outcome:
        def mine(s: Seen) -> bool:
            return s.topic == self._answers and s.body.get("causationid") == str(envelope.id)

        first = await self._events.wait_for(mine, timeout)
        count = int(first[0].body.get("outcomecount", 1))
        return Outcome(envelope, await self._events.wait_for(mine, timeout, count=count))

    async def send(self, type_: str, who: dict[str, Any], *, key: str | None = None, timeout: float = 30.0,
                   **data: Any) -> Outcome:
        """One command, e.g. `await commands.send("step.start", so, step_id=...)`; its outcome."""
        return await self.outcome(await self.publish(type_, {"actor": who, **data}, key=key), timeout)

    async def triage_opened(self, hub: dict[str, Any], person_id: str, screening: str) -> str:
        """The hub screens the referral, sends it to triage and opens the triage with its values saved: its id."""
        async def ok(type_: str, **data: Any) -> Outcome:
            return (await self.send(type_, hub, key=person_id, **data)).ok()

        await ok("step.start", step_id=screening)
        await ok("step.save", step_id=screening, values=SCREENING_VALUES)
        await ok("step.add_next_action", step_id=screening, action=TRIAGE)
        triage: str = (await ok("step.finish", step_id=screening)).of("step.created")["step_id"]
        await ok("step.start", step_id=triage)
        await ok("step.save", step_id=triage, values=TRIAGE_VALUES)
        return triage

    async def given_step(self, who: dict[str, Any], person_id: str, step_type: str,
                         assignee: dict[str, str] | None = None) -> str:
        """`given_step` on the database these commands' workflow service uses: the new step's id."""
        assert self._db is not None, "given_step needs the commands fixture's database"
        return await given_step(self._db, who, person_id, step_type, assignee)


async def new_case(infra: Any, events: EventLog, **referral: Any) -> tuple[str, str]:
    """A wellbeing referral through intake (`source`: the system sending it): the person id and the first step's
    id."""
    from shared.testing import publish
    from tests.factories import referral_message, unique_referral

    source = referral.pop("source", None)
    data = unique_referral(**referral)
    envelope = referral_message(data, **({"source": source} if source else {}))
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(
        lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted", 30)
    person_id = accepted.data["person_id"]
    [created] = await events.wait_for(
        lambda s: s.type == "step.created" and s.data.get("workflow_id") == accepted.data["workflow_id"], 30)
    return person_id, created.data["step_id"]


# a work list is paged (R-W15): the newest first, a large page, finds the step a test just made among a session's
NEWEST_WORK = {"sort": "-waiting", "size": 200}


def today() -> date:
    return datetime.now(UTC).date()


async def given_step(db: Any, who: dict[str, Any], person_id: str, step_type: str,
                     assignee: dict[str, str] | None = None) -> str:
    """Test setup on the real database: the case already holds a new workflow whose first step is `step_type`,
    opened by `who` (for themselves unless `assignee`), as the earlier steps' next actions would have left it.

    Written through the workflow service's own domain (`open_workflow`: R-K2, R-K5, R-W11 apply) and store in
    one transaction, so later commands through the broker find it as they would. Start > New's R-W12 is not
    what these tests are about: a step type the guide reaches only by a next action is set up this way; no
    step.created event is published and fields from the person record are left empty.
    """
    from services.workflow import store

    actor = cmd.StartNewStep.model_validate({"actor": who, "person_id": person_id, "step_type": step_type}).actor
    target = cmd.Target.model_validate(assignee or {"kind": "worker", "id": actor.worker_id})
    async with db.acquire() as conn, conn.transaction():
        ctx = domain.Context(now=datetime.now(UTC), actor=domain.Actor.of(actor),
                             ids=(str(uuid.uuid4()) for _ in itertools.count()), packs=shipped_packs(),
                             case=await store.case_view(conn, person_id))
        decision = domain.open_workflow(ctx, step_type, person_id, target, workflow_id=str(uuid.uuid4()))
        for workflow in decision.workflows:
            await store.insert_workflow(conn, workflow)
        for step in decision.created:
            await store.insert_step(conn, step, history=False)
        await store.add_histories(conn, decision.history)
    return decision.created[0].step_id
