"""What a workflow-definition pack is: its pydantic models, and the registry of every loaded pack version."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, StringConstraints
from pydantic import Field as Constrained
from pydantic.types import NonNegativeInt, PositiveInt

from shared.teams import team_name

Role = Literal[
    "social_worker",
    "gso",
    "senior_officer",
    "team_manager",
    "assistant_team_manager",
    "team_leader",
    "head_of_service",
    "business_support",
    # seed 003 (Child in Need): team-specific roles; a worker also holds the generic
    # social_worker / team_manager role, which owns fields shared by two teams (R-W6).
    "response_social_worker",
    "response_manager",
    "locality_social_worker",
    "locality_manager",
    "lac_social_worker",
    "lac_manager",
    "fpt_social_worker",
    "fpt_manager",
    "preventative_services_manager",
    "fyps_worker",
    # seed 002: the short-term service and interim homecare domiciliary service officer (DSO)
    "domiciliary_service_officer",
]
RuleName = Literal[
    "case_closure_guard",
    "two_twr_limit",
    "cin_45_day_routing",
    "one_future_work",
    "carers_checklist",
    "budget_costs",
]
# R-W6: where the system takes a system-generated field's value from.
#   assignee       the worker the step is assigned to (the social worker's details)
#   authoriser     the manager of an authorising role who last saved or authorised the step
#   person_summary name, date of birth, gender and address from the person record
#   budget_total   the weekly total of the person's latest finished costed support plan (R-K10)
SystemValue = Literal["assignee", "authoriser", "person_summary", "budget_total"]
CaseCondition = Literal["case_closure_in_progress", "no_case_closure_in_progress"]
FieldType = Literal[
    "text",
    "textarea",
    "date",
    "datetime",
    "number",
    "bool",
    "select",
    "multiselect",
    "table",
    "person_ref",
]
Cog = Literal["blue", "yellow"]
PurchaseOrderKind = Literal[
    "brokerage", "direct_payment", "telecare", "purchase_services_children", "interim_homecare",
    "long_term_homecare",
]
AssigneeKind = Literal["worker", "team", "self", "none"]
SendImmediately = Literal["allowed", "required", "forbidden"]
TeamId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
PersonPath = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")]
Name = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
T = TypeVar("T")


class _Frozen(BaseModel):
    """Base for pack models: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Field(_Frozen):
    """One form field; a `table` field holds repeating rows described by `columns` (R-W8)."""

    key: FieldKey
    label: Name
    type: FieldType
    mandatory: bool = False
    cog: Cog | None = None
    prepopulate_from: PersonPath | None = None
    # R-W5: what a prepopulated value becomes (the referral's source system → the option it means); a value not
    # listed leaves the field empty. Only where the values read are not the field's own
    prepopulate_values: Mapping[str, Name] = {}
    owner_role: Role | None = None
    system_generated: bool = False
    options: tuple[Name, ...] = ()
    columns: tuple[Field, ...] = ()
    once_per: FieldKey | None = None
    rows_from: FieldKey | None = None
    system_value: SystemValue | None = None
    # R-K1: a check that must be answered "Yes" (true) before the step finishes, not merely answered
    must_be_yes: bool = False
    # R-W13: an activity log (a table with a system-generated `recorded_by`): every worker involved with the
    # person adds rows, each row keeps its author and nobody else changes or deletes it
    activity_log: bool = False
    # R-C5: a yes/no answered Yes on a new step where workflow holds a live purchase order of one of these kinds
    # for the person (a direct payment), the orders named on the step (`provenance.prefilled`); else left empty
    yes_from_orders: tuple[PurchaseOrderKind, ...] = ()

    def to_contract(self) -> dict[str, Any]:
        """The field as the step read endpoint shows it."""
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "mandatory": self.mandatory,
            "cog": self.cog,
            "owner_role": self.owner_role,
            "options": list(self.options),
            "columns": [column.to_contract() for column in self.columns],
            # beyond the fixed shape, optional: what a form needs to render tables right (R-W6, R-W8)
            "system_generated": self.system_generated,
            "once_per": self.once_per,
            "rows_from": self.rows_from,
            "activity_log": self.activity_log,  # R-W13: every involved worker adds rows; each keeps its author
            "yes_from_orders": list(self.yes_from_orders),  # R-C5: Yes where the person has such a live order
        }


class Section(_Frozen):
    """A numbered form section."""

    number: PositiveInt
    title: Name
    read_only: bool = False
    fields: tuple[Field, ...] = ()
    # R-C5: completed by whoever a request of the step of this name went to (a member of its team), and checked
    # only where that request is REQUIRED (the Adult Care (Area) team's direct payments checklist)
    answered_by: Name | None = None

    def to_contract(self) -> dict[str, Any]:
        """The section as the step read endpoint shows it."""
        return {
            "number": self.number,
            "title": self.title,
            "read_only": self.read_only,
            "answered_by": self.answered_by,  # R-C5: the request whose recipient completes this section
            "fields": [field.to_contract() for field in self.fields],
        }


class CarriedSections(_Frozen):
    """Sections `from_section`..`to_section` of an earlier step type, shown read-only (R-W7)."""

    from_step_type: Name
    from_section: PositiveInt
    to_section: PositiveInt


class FormDefinition(_Frozen):
    """An optional form or letter that can be added to a step (R-W9)."""

    name: Name
    kind: Literal["form", "letter"]
    sections: tuple[Section, ...] = ()


class PurchaseOrderDefinition(_Frozen):
    """R-F1: sending the next action asks for a purchase order (`purchase_order.requested`).

    `kind` unless the action's reason (`by_reason`) or its team (`by_team`) names another; the
    costs are those of the step's `planned_services` rows whose service is one of `services`
    (every row when empty), else of the step's own hourly rate and hours fields.
    """

    kind: PurchaseOrderKind
    by_reason: dict[Name, PurchaseOrderKind] = {}
    by_team: dict[TeamId, PurchaseOrderKind] = {}
    services: tuple[Name, ...] = ()
    # R-F6: the services of an order of this kind where they differ from `services` (an Interim Support
    # Plan's brokerage action sent to Direct Payments costs the direct payment lines)
    services_by_kind: dict[PurchaseOrderKind, tuple[Name, ...]] = {}
    # R-F6: a number field of the step holding a one-off payment the order carries (a carer's one-off DP)
    one_off_field: FieldKey | None = None


class NextActionDefinition(_Frozen):
    """A next action a step allows (R-NA2, R-NA4, R-NA5, R-NA6)."""

    action: Name
    nfa: bool = False
    target_step_type: Name | None = None
    assignee_kind: AssigneeKind = "none"
    default_team: TeamId | None = None
    # R-C5: the team by the person's locality team (allocation's team finder, R-A3); `default_team` where the
    # locality has none listed or is not known
    team_by_locality: Mapping[TeamId, TeamId] = {}
    # R-NA7: a select of the step's own form whose options are team names (shared/teams.yaml): the team chosen
    # there is the action's team unless the worker picks another (the Involved Team chosen in triage)
    team_from_field: FieldKey | None = None
    send_immediately: SendImmediately = "forbidden"
    scheduled_offset_days: NonNegativeInt | None = None
    reasons: tuple[Name, ...] = ()
    reason_required: bool = False
    requires_form: Name | None = None
    added_by_roles: tuple[Role, ...] = ()
    allowed_when: CaseCondition | None = None
    sends_to_role: Role | None = None
    # R-S2 initial review: the scheduled date must fall this many days [min, max] after the
    # date in `window_from_field` of the adding step (else after today); default: the minimum.
    scheduled_window_days: tuple[NonNegativeInt, NonNegativeInt] | None = None
    window_from_field: FieldKey | None = None
    # R-K4: a date field of the adding step holding the annual review date, used when the
    # person has no earlier Future Work whose due date can be kept.
    review_date_field: FieldKey | None = None
    # R-F1, R-F2: the action asks for a purchase order when it is sent (on finish or at once).
    purchase_order: PurchaseOrderDefinition | None = None

    def to_contract(self) -> dict[str, Any]:
        """The action as the step read endpoint shows it; `send_immediately` means allowed."""
        return {
            "action": self.action,
            "nfa": self.nfa,
            "target_step_type": self.target_step_type,
            "assignee_kind": self.assignee_kind,
            "default_team": self.default_team,
            # R-C5: sent without a team, the action goes to the team for the person's locality
            "team_by_locality": dict(self.team_by_locality),
            "team_from_field": self.team_from_field,
            "send_immediately": self.send_immediately != "forbidden",
            "scheduled_offset_days": self.scheduled_offset_days,
            "reasons": list(self.reasons),
            "reason_required": self.reason_required,
            "requires_form": self.requires_form,
        }


class Recipient(_Frozen):
    """Where a request or notification goes by default."""

    kind: Literal["worker", "team", "role"]
    id: Name


class RequestDefinition(_Frozen):
    """A request (needs a response) or notification (information only) a step can send (R-RQ)."""

    name: Name
    kind: Literal["request", "notification"]
    required: bool = False
    default_to: Recipient | None = None
    # REQUIRED only when this bool field of the step is true (R-F3: FABO where the person may co-fund), or when
    # every field named holds one of the values listed (R-C5: died or left the area, and had a direct payment)
    required_when: FieldKey | Mapping[FieldKey, tuple[bool | Name, ...]] | None = None
    # R-W10: a contributor of one of these roles sends it without the step being theirs.
    sent_by_roles: tuple[Role, ...] = ()

    def required_for(self, values: Mapping[str, Any]) -> bool:
        """REQUIRED always, or where the step's values meet `required_when`."""
        if self.required or self.required_when is None:
            return self.required
        when = {self.required_when: (True,)} if isinstance(self.required_when, str) else self.required_when
        return all(values.get(key) in allowed for key, allowed in when.items())

    def to_contract(self) -> dict[str, Any]:
        """The request as the step read endpoint shows it."""
        default_to = self.default_to.model_dump() if self.default_to else None
        when = {self.required_when: [True]} if isinstance(self.required_when, str) else self.required_when
        return {
            "name": self.name,
            "kind": self.kind,
            "required": self.required,
            # REQUIRED where every field named holds one of the values listed (R-F3, R-C5)
            "required_when": None if when is None else {key: list(allowed) for key, allowed in when.items()},
            "default_to": default_to,
        }


class StartGrant(_Frozen):
    """R-W12: who may start a step type from Start > New: a worker holding one of `roles` (as given, not
    the generic role of a team-specific one) and in one of `teams`; an empty list means any. The loader
    refuses a grant naming neither."""

    roles: tuple[Role, ...] = ()
    teams: tuple[TeamId, ...] = ()


class StepDefinition(_Frozen):
    """A step type: its form, optional forms, next actions, requests, authorisers and code rules."""

    step_type: Name
    description: Name
    default_team: TeamId | None = None
    sections: tuple[Section, ...] = ()
    carried_sections: tuple[CarriedSections, ...] = ()
    optional_forms: tuple[FormDefinition, ...] = ()
    next_actions: tuple[NextActionDefinition, ...] = ()
    requests: tuple[RequestDefinition, ...] = ()
    authorisers: tuple[Role, ...] = ()
    # R-W10: the roles of the workers a step of this type is assigned to (the pack's when empty).
    worked_by: tuple[Role, ...] = ()
    # R-W10: roles that write the fields they own, add the actions and send the requests named for
    # them on a step assigned to someone else (a shared step: Business Support's minutes).
    contributors: tuple[Role, ...] = ()
    # R-W11: only these roles finish a step of this type: the manager's decision it is sent to.
    finished_by: tuple[Role, ...] = ()
    # R-W13: created already started (Incomplete), never waiting as Incoming (WB Case Monitoring)
    opened_on_creation: bool = False
    # R-K11: once finished (signed off), the document goes to the person: its worker gets the task to send it
    sent_to_person: bool = False
    # R-W12: who may start a step of this type from Start > New (none: only an earlier step's next
    # action or a referral opens it)
    start_new: tuple[StartGrant, ...] = ()
    rules: tuple[RuleName, ...] = ()
    # R-K2: a step of this type is "Future Work": at most one open per person.
    future_work: bool = False
    # R-K4: the next Future Work is due this many months after the previous one's due date.
    review_interval_months: PositiveInt | None = None
    # R-K6: while open, a renewal falls due every this many days (Professional Support: 28).
    renewal_days: PositiveInt | None = None
    # R-K3: a finished step of this type means the person has ongoing services.
    ongoing_services: bool = False
    # R-F7: a new step of this type starts with the whole package of the person's last signed-off plan (its
    # service lines, totals and annual review date): the worker changes what changes, never lists it again.
    starts_from_package: bool = False
    # R-RQ6: the assignee authorises their own step (Review Planning's "green tick").
    self_authorise: bool = False
    # R-K5: a finished step of this type is one of the person's reviews, counted in order by
    # the `two_twr_limit` rule (a review that does not name the rule ends a run of them).
    review: bool = False
    # R-K9: a step of this type on a carer's own record is their separate carer's assessment.
    carers_assessment: bool = False
    _carried: tuple[Section, ...] = PrivateAttr(default=())

    @property
    def is_future_work(self) -> bool:
        """R-K2: Future Work by the pack's flag (or the older `one_future_work` rule)."""
        return self.future_work or "one_future_work" in self.rules

    @property
    def form_sections(self) -> tuple[Section, ...]:
        """The step's own sections and its carried read-only copies, in number order."""
        return tuple(sorted((*self.sections, *self._carried), key=lambda section: section.number))

    def next_action(self, action: str) -> NextActionDefinition:
        """The allowed next action of that name."""
        return _named(self.next_actions, action, lambda item: item.action)

    def request(self, name: str) -> RequestDefinition:
        """The allowed request or notification of that name."""
        return _named(self.requests, name, lambda item: item.name)

    def form(self, name: str) -> FormDefinition:
        """The optional form or letter of that name."""
        return _named(self.optional_forms, name, lambda item: item.name)

    @property
    def answered_sections(self) -> tuple[Section, ...]:
        """R-C5: the sections a request's recipient completes."""
        return tuple(s for s in self.sections if s.answered_by)

    @property
    def activity_logs(self) -> frozenset[str]:
        """R-W13: the keys of the step's activity-log tables."""
        return frozenset(f.key for s in self.form_sections for f in s.fields if f.activity_log)

    def field_map(self) -> dict[str, Field]:
        """Every top-level field of the form, carried ones included, by key."""
        return {field.key: field for section in self.form_sections for field in section.fields}

    def to_contract(self) -> dict[str, Any]:
        """The `form`, `next_actions` and `requests` of the step read endpoint (docs/contracts.md)."""
        return {
            "form": {"sections": [section.to_contract() for section in self.form_sections]},
            "next_actions": [action.to_contract() for action in self.next_actions],
            "requests": [request.to_contract() for request in self.requests],
            "authorisers": list(self.authorisers),  # R-RQ5: who may sign it (the desk's sign-off picker)
        }


# R-F5: what one unit of a service line is; its quantity is per week (hours, nights, sessions, weeks).
RateUnit = Literal["hour", "night", "session", "week"]
# R-F4: the most units of each kind a week holds (issue #20: 1e308 hours is not a care package).
# Not in the seeds: 3 sessions a day.
MOST_UNITS_A_WEEK: dict[str, Decimal] = {"hour": Decimal(168), "night": Decimal(7), "session": Decimal(21),
                                         "week": Decimal(1)}


class RateCardEntry(_Frozen):
    """R-F5: how a service type is costed: its unit and, where the guide fixes it, its rate (£ per unit).

    The rate is prefilled into a support plan's service line; a different rate needs a reason recorded.
    """

    service: Name
    unit: RateUnit | None = None  # None: the line says (per hour if it does not)
    rate: Annotated[Decimal, Constrained(gt=0, le=10_000, decimal_places=2)] | None = None


class Pack(_Frozen):
    """One versioned workflow pack: its teams, step types and rate card (R-F5)."""

    name: FieldKey
    version: PositiveInt
    teams: tuple[TeamId, ...] = ()  # named by the catalogue, shared/teams.yaml
    # R-W10: who works the pack's steps where a step names nobody itself
    worked_by: tuple[Role, ...] = ()
    steps: tuple[StepDefinition, ...] = ()
    rate_card: tuple[RateCardEntry, ...] = ()


def _named(items: Iterable[T], name: str, name_of: Callable[[T], str]) -> T:
    for item in items:
        if name_of(item) == name:
            return item
    raise KeyError(name)


class PackRegistry:
    """Every loaded pack version; a running step keeps the version it started with."""

    def __init__(self, packs: Sequence[Pack], steps: Mapping[str, Mapping[int, StepDefinition]]):
        self.packs = tuple(packs)
        self._steps = {step_type: dict(versions) for step_type, versions in steps.items()}
        self.teams: dict[str, str] = {tid: team_name(tid) for pack in packs for tid in pack.teams}
        # R-F5: the rate card by service type, from every pack (the loader refuses a service twice)
        self.rates: dict[str, RateCardEntry] = {
            entry.service: entry for pack in packs for entry in pack.rate_card
        }

    def step(self, step_type: str, version: int | None = None) -> StepDefinition:
        """The definition of a step type, at a pack version (the latest by default)."""
        versions = self._versions(step_type)
        chosen = self.latest_version(step_type) if version is None else version
        if chosen not in versions:
            raise KeyError(f"{step_type!r} has no pack version {chosen}")
        return versions[chosen]

    def latest_version(self, step_type: str) -> int:
        """The newest pack version defining the step type."""
        return max(self._versions(step_type))

    def step_types(self) -> frozenset[str]:
        """Every step type in any loaded pack."""
        return frozenset(self._steps)

    def team_name(self, team_id: str) -> str:
        """The display name of a team id."""
        return self.teams[team_id]

    def _versions(self, step_type: str) -> dict[int, StepDefinition]:
        if step_type not in self._steps:
            raise KeyError(f"unknown step type {step_type!r}")
        return self._steps[step_type]


# The fields (and request) a named rule works on: a step naming the rule must have them.
CARERS_FIELD, CARERS_TABLE = "has_informal_carers", "carers"
CARERS_COLUMNS = ("assessment_offered", "offer_accepted", "reason_not_accepted", "assessment_type",
                  "young_carer", "carer_person_id")
YOUNG_CARER_REFERRAL = "Referral to Children's and young person's services"
COSTED = ("hourly_rate", "weekly_cost", "annual_cost")


def costed_fields(fields: Iterable[Field]) -> bool:
    """R-K10: the fields hold an hourly rate, hours and the system-generated costs."""
    keys = {f.key: f for f in fields}
    return (all(k in keys for k in COSTED) and bool({"hours_per_week", "weekly_hours"} & set(keys))
            and keys["weekly_cost"].system_generated and keys["annual_cost"].system_generated)
