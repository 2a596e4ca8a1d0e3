"""The state workflow rules read and decide: workflows, steps, next actions, requests, the case.

Also what every rule shares: the Context a decision reads, the Decision it returns, RuleBroken with
every reason, and the helpers that record a change to a step (new version, history line, event base).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from services.workflow.pack import PackRegistry
from shared.actor import Actor
from shared.calendar import london_date
from shared.events.base import Event
from shared.events.workflow import Assignee

Priority = Literal["normal", "high", "urgent"]
OPEN_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation"})
WORKING_STATES = frozenset({"incomplete", "returned", "awaiting_authorisation"})


@dataclass(frozen=True)
class Workflow:
    """A chain of steps about one person (R-W1)."""

    workflow_id: str
    person_id: str
    origin: dict[str, Any]
    started_at: datetime
    started_by: str
    status: Literal["open", "closed"] = "open"


@dataclass(frozen=True)
class NextAction:
    """A next action added to a step (R-NA2); `created_step_id` once its step exists."""

    next_action_id: str
    action: str
    nfa: bool
    target_step_type: str | None
    assignee_kind: str  # worker | team | self | none
    assignee_id: str | None
    send_immediately: bool
    scheduled_date: date | None
    reason: str | None
    note: str | None
    priority: Priority
    added_by: str
    added_at: datetime
    created_step_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "next_action_id": self.next_action_id, "action": self.action, "nfa": self.nfa,
            "target_step_type": self.target_step_type, "assignee_kind": self.assignee_kind,
            "assignee_id": self.assignee_id, "send_immediately": self.send_immediately,
            "scheduled_date": self.scheduled_date.isoformat() if self.scheduled_date else None,
            "reason": self.reason, "note": self.note, "priority": self.priority,
            "added_by": self.added_by, "added_at": self.added_at.isoformat(),
            "created_step_id": self.created_step_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NextAction:
        return cls(
            next_action_id=raw["next_action_id"], action=raw["action"], nfa=raw["nfa"],
            target_step_type=raw["target_step_type"], assignee_kind=raw["assignee_kind"],
            assignee_id=raw["assignee_id"], send_immediately=raw["send_immediately"],
            scheduled_date=date.fromisoformat(raw["scheduled_date"]) if raw["scheduled_date"] else None,
            reason=raw["reason"], note=raw["note"], priority=raw["priority"],
            added_by=raw["added_by"], added_at=datetime.fromisoformat(raw["added_at"]),
            created_step_id=raw.get("created_step_id"),
        )


@dataclass(frozen=True)
class Step:
    """One workflow step: its type, state, assignee and form values (R-W2, R-W3)."""

    step_id: str
    workflow_id: str
    person_id: str
    step_type: str
    pack_version: int
    state: str
    assignee_kind: Literal["worker", "team"]
    assignee_id: str
    priority: Priority
    created_at: datetime
    created_by: str
    provenance: dict[str, Any]
    due_date: date | None = None
    linked_person_id: str | None = None
    version: int = 1
    values: dict[str, Any] = field(default_factory=dict)
    completed_sections: tuple[int, ...] = ()
    next_actions: tuple[NextAction, ...] = ()
    forms: tuple[str, ...] = ()
    return_note: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def assignee(self) -> Assignee:
        return Assignee(kind=self.assignee_kind, id=self.assignee_id)


@dataclass(frozen=True)
class Request:
    """A request or notification sent from a step (R-RQ1); a request is open until completed."""

    request_id: str
    step_id: str
    person_id: str
    name: str
    kind: Literal["request", "notification"]
    required: bool
    to_kind: Literal["worker", "team"]
    to_id: str
    note: str | None
    state: Literal["open", "completed", "returned", "cancelled", "sent"]
    sent_by: str
    sent_at: datetime
    completed_by: str | None = None
    completed_at: datetime | None = None
    completion_note: str | None = None


@dataclass(frozen=True)
class OtherStep:
    """A step of the same person, as case-level rules see it (R-K1, R-NA6)."""

    step_id: str
    step_type: str
    state: str
    pack_version: int
    workflow_id: str
    due_date: date | None = None


@dataclass(frozen=True)
class LatestStep:
    """The person's latest step of a type: when it was created (a London date) and its values."""

    step_id: str
    created_on: date
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """What case-level rules need: the person's other steps and latest finished values.

    `finished_due_dates`: step type → due date of its latest finished step that had one (R-K4).
    """

    other_steps: tuple[OtherStep, ...] = ()
    finished_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    workflow_ids: tuple[str, ...] = ()
    finished_due_dates: Mapping[str, date] = field(default_factory=dict)
    # R-K5: the step types of the person's finished steps, in the order they finished.
    finished_sequence: tuple[str, ...] = ()
    # R-K7: step type → the person's latest step of that type that was not cancelled.
    latest: Mapping[str, LatestStep] = field(default_factory=dict)
    # R-K9: of the carers the step lists (`carer_person_id`), those whose own record has a step
    # of a `carers_assessment` type (Carers Assessment, On-going Carer Review) not cancelled.
    carers_assessed: frozenset[str] = frozenset()
    # R-C5: the person's live (not ended) purchase orders, kind → their ids
    live_orders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """One line of a step's history: who, when, what (R-W2 audit)."""

    step_id: str
    at: datetime
    actor: str
    what: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Involvement:
    """An open relationship of the person in allocation: a worker's (with the team it was made for, if any) or a
    team's (organisational). Read where a rule needs it (R-W13 activity logs, the R-K1 closure guard)."""

    kind: Literal["worker", "team"]
    id: str
    team_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Context:
    """Everything a decision may read besides the step: time, actor, ids, packs, person, case."""

    now: datetime
    actor: Actor
    ids: Iterator[str]
    packs: PackRegistry
    person: Mapping[str, Any] | None = None
    case: CaseView = CaseView()
    # R-W13: who is involved with the person ("worker:<id>", "team:<id>"): their relationships and the
    # assignees of their steps; loaded only where a rule reads it (an activity log)
    involved: frozenset[str] = frozenset()
    # R-RQ9: workers as the desk's staff directory lists them (or, not yet listed, as last seen acting with their
    # signed roles and teams): a request's recipient and their teams; R-RQ10: the disabled accounts among them
    known_workers: Mapping[str, Actor] = field(default_factory=dict)
    disabled_workers: frozenset[str] = frozenset()
    # R-K1: the person's open relationships in allocation, where a closure step finishes; None when allocation
    # could not answer (the closure's warning says so)
    relationships: tuple[Involvement, ...] | None = ()
    # R-C5: the person's locality team (allocation's team finder), where an action goes by locality
    locality_team: str | None = None

    @property
    def today(self) -> date:
        """The date in Europe/London at `now` (dates are local, timestamps UTC)."""
        return london_date(self.now)


@dataclass(frozen=True)
class Timer:
    """A `timer.set` the handler sends to the scheduler (owner workflow) for a step."""

    key: str
    due_at: datetime
    step_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What a command decided: the changed step, new steps and requests, history and events."""

    events: tuple[Event, ...]
    step: Step | None = None
    created: tuple[Step, ...] = ()
    workflows: tuple[Workflow, ...] = ()
    requests: tuple[Request, ...] = ()
    history: tuple[History, ...] = ()
    closed_workflow_ids: tuple[str, ...] = ()
    finished_future: tuple[Step, ...] = ()
    timers: tuple[Timer, ...] = ()
    cancelled_timers: tuple[str, ...] = ()


# --- recording a change to a step ---------------------------------------------------------


def bump(step: Step, ctx: Context, **changes: Any) -> Step:
    return replace(step, version=step.version + 1, updated_at=ctx.now, updated_by=ctx.actor.worker_id,
                   **changes)


def history_entry(step: Step, ctx: Context, what: str, **details: Any) -> History:
    return History(step.step_id, ctx.now, ctx.actor.worker_id, what, details)


def event_base(step: Step, ctx: Context) -> dict[str, Any]:
    return {"step_id": step.step_id, "person_id": step.person_id, "actor": ctx.actor.worker_id,
            "version": step.version}
