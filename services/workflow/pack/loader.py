"""Reading the YAML packs, and the checks that stop a broken one: PackError names the file, step and field at fault."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from services.workflow.pack.models import (
    CARERS_COLUMNS,
    CARERS_FIELD,
    CARERS_TABLE,
    YOUNG_CARER_REFERRAL,
    CarriedSections,
    Field,
    FormDefinition,
    NextActionDefinition,
    Pack,
    PackRegistry,
    RequestDefinition,
    Role,
    Section,
    StepDefinition,
    costed_fields,
)
from shared.actor import MANAGER_ROLES, held_roles
from shared.teams import is_known, team_name, team_named

DEFINITIONS_DIR = Path(__file__).parents[1] / "definitions"
SELECT_TYPES = frozenset({"select", "multiselect"})

# libyaml's safe loader where the wheel has it: the packs load several times faster than in pure Python
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PackError(ValueError):
    """A pack that cannot be loaded, naming the file, the step and the field at fault."""

    def __init__(self, file: str, step: str | None, field: str | None, problem: str) -> None:
        self.file, self.step, self.field, self.problem = file, step, field, problem
        step_part = f"step {step!r}" if step else "pack"
        field_part = f"field {field}" if field else "(whole)"
        super().__init__(f"{file}: {step_part}: {field_part}: {problem}")


@dataclass(frozen=True)
class _Where:
    """The file and step a check is looking at, to name them in a PackError."""

    file: str
    step: str | None = None

    def fail(self, field: str | None, problem: str) -> PackError:
        return PackError(self.file, self.step, field, problem)


@dataclass(frozen=True)
class _Loaded:
    """A parsed pack and the file it came from."""

    path: Path
    pack: Pack


def load_packs(directory: Path = DEFINITIONS_DIR) -> PackRegistry:
    """Load and check every `*.yaml` pack under `directory`; any mistake raises PackError."""
    files = sorted(directory.rglob("*.yaml"))
    if not files:
        raise PackError(str(directory), None, None, "no *.yaml pack files found")
    loaded = [_Loaded(path, _parse(path)) for path in files]
    for item in loaded:
        _check_pack(item)
    index = _index_steps(loaded)
    teams = _merge_teams(loaded)
    for item in loaded:
        _check_references(item, index, teams)
    _check_rate_card(loaded)
    return PackRegistry([item.pack for item in loaded], _resolve(loaded, index))


# --- reading one file -------------------------------------------------------------------------


def _parse(path: Path) -> Pack:
    where = _Where(str(path))
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        raise where.fail(None, f"not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise where.fail(None, "a pack must be a mapping with name, version, teams and steps")
    try:
        pack = Pack.model_validate(raw)
    except ValidationError as error:
        raise _from_validation(where, raw, error) from error
    steps = tuple(step if step.worked_by else step.model_copy(update={"worked_by": pack.worked_by})
                  for step in pack.steps)
    return pack.model_copy(update={"steps": steps})


def _from_validation(where: _Where, raw: dict[str, Any], error: ValidationError) -> PackError:
    first = error.errors()[0]
    step, node, rest = _step_of(raw, tuple(first["loc"]))
    problem = first["msg"]
    if error.error_count() > 1:
        problem += f" (and {error.error_count() - 1} more)"
    return PackError(where.file, step, _path(node, rest), problem)


def _step_of(raw: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str | None, Any, tuple[Any, ...]]:
    if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], int):
        return None, raw, loc
    steps = raw.get("steps")
    entry = steps[loc[1]] if isinstance(steps, list) and loc[1] < len(steps) else None
    step_type = entry.get("step_type") if isinstance(entry, dict) else None
    label = f"{step_type} (steps[{loc[1]}])" if step_type else f"steps[{loc[1]}]"
    return label, entry, loc[2:]


def _path(node: Any, loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for token in loc:
        if isinstance(token, int):
            node = node[token] if isinstance(node, list) and token < len(node) else None
            parts.append(f"[{_label_of(node) or token}]")
        else:
            node = node.get(token) if isinstance(node, dict) else None
            parts.append(f".{token}")
    return "".join(parts).lstrip(".") or "(whole)"


def _label_of(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    if "number" in node:
        return f"#{node['number']}"
    for name_key in ("key", "action", "name"):
        if name_key in node:
            return repr(node[name_key])
    return None


# --- checks of one pack -----------------------------------------------------------------------


def _check_pack(item: _Loaded) -> None:
    seen: set[str] = set()
    for index, step in enumerate(item.pack.steps):
        where = _Where(str(item.path), step.step_type)
        if step.step_type in seen:
            raise where.fail(f"steps[{index}].step_type", "duplicate step type in this pack")
        seen.add(step.step_type)
        _check_step(where, step)


def _check_step(where: _Where, step: StepDefinition) -> None:
    _check_sections(where, step.sections, "sections")
    _check_unique_keys(where, step.sections, "sections")
    _check_carried(where, step)
    _check_forms(where, step.optional_forms)
    _check_unique(where, [a.action for a in step.next_actions], "next_actions", "action")
    _check_unique(where, [r.name for r in step.requests], "requests", "name")
    if not step.next_actions:
        raise where.fail("next_actions", "R-NA1: a step needs at least one next action to finish")
    if step.review_interval_months is not None and not step.is_future_work:
        raise where.fail("review_interval_months", "R-K4: only a future_work step type has a review interval")
    supervising = [role for role in step.authorisers if role.endswith("social_worker")]
    if supervising:
        raise where.fail("authorisers", f"R-RQ5: a social worker cannot authorise: {supervising}")
    form_names = {form.name for form in step.optional_forms}
    for action in step.next_actions:
        _check_action(where, action, form_names)
        _check_action_fields(where, step, action)
    for request in step.requests:
        _check_request(where, request, step)
    _check_answered_sections(where, step)
    _check_rule_contracts(where, step)
    _check_activity_logs(where, step)


def _check_activity_logs(where: _Where, step: StepDefinition) -> None:
    """R-W13: an activity log is a table whose rows name their author (a system-generated `recorded_by`)."""
    for section in step.sections:
        for f in section.fields:
            author = next((c for c in f.columns if c.key == "recorded_by"), None)
            if f.activity_log and (f.type != "table" or author is None or not author.system_generated):
                raise where.fail(f"sections.{f.key}", "R-W13: an activity log is a table with a system-generated"
                                 " recorded_by column")


def _check_rule_contracts(where: _Where, step: StepDefinition) -> None:
    fields = {f.key: f for s in step.sections for f in s.fields}
    if "carers_checklist" in step.rules:
        table = fields.get(CARERS_TABLE)
        columns = {c.key for c in table.columns} if table else set()
        if CARERS_FIELD not in fields or table is None or not set(CARERS_COLUMNS) <= columns:
            raise where.fail("rules", f"R-K9: carers_checklist needs the fields {CARERS_FIELD!r} and"
                             f" {CARERS_TABLE!r} with the columns {list(CARERS_COLUMNS)}")
        if YOUNG_CARER_REFERRAL not in {r.name for r in step.requests}:
            raise where.fail("rules", f"R-K9: carers_checklist needs the request {YOUNG_CARER_REFERRAL!r}")
    if "budget_costs" in step.rules:
        tables = [f for f in fields.values() if f.type == "table" and costed_fields(f.columns)]
        if not tables and not costed_fields(fields.values()):
            raise where.fail("rules", "R-K10: budget_costs needs an hourly_rate, hours_per_week (or"
                             " weekly_hours) and system-generated weekly_cost and annual_cost, as"
                             " fields or as the columns of a table")


def _check_sections(where: _Where, sections: Sequence[Section], at: str) -> None:
    for previous, section in pairwise(sections):
        if section.number <= previous.number:
            raise where.fail(
                f"{at}[#{section.number}].number",
                f"section numbers must strictly increase: {section.number} after {previous.number}",
            )
    for section in sections:
        for field in section.fields:
            _check_field(
                where, field, f"{at}[#{section.number}].fields[{field.key!r}]", column=False
            )


def _check_field(where: _Where, field: Field, at: str, *, column: bool) -> None:
    problem = _field_problem(field, column)
    if problem:
        raise where.fail(problem[0].format(at=at), problem[1])
    for column_field in field.columns:
        _check_field(where, column_field, f"{at}.columns[{column_field.key!r}]", column=True)
    _check_unique(where, [c.key for c in field.columns], f"{at}.columns", "key")
    siblings = {c.key for c in field.columns}
    for column_field in field.columns:
        if column_field.once_per and column_field.once_per not in siblings - {column_field.key}:
            raise where.fail(
                f"{at}.columns[{column_field.key!r}].once_per",
                f"once_per must name another column of the table, not {column_field.once_per!r}",
            )


def _field_problem(field: Field, column: bool) -> tuple[str, str] | None:
    checks: list[tuple[bool, str, str]] = [
        (
            field.cog is not None and not field.prepopulate_from,
            "{at}.prepopulate_from",
            f"R-W5: a {field.cog} cog field must say what it is prepopulated from",
        ),
        (
            field.prepopulate_from is not None and field.cog is None,
            "{at}.cog",
            "a prepopulated field needs a blue or yellow cog (R-W5)",
        ),
        (
            bool(field.prepopulate_values) and (not field.prepopulate_from
                                                or not set(field.prepopulate_values.values()) <= set(field.options)),
            "{at}.prepopulate_values",
            "R-W5: prepopulate_values maps a prepopulated field's values to its own options",
        ),
        (
            bool(field.yes_from_orders) and (field.type != "bool" or field.cog is not None),
            "{at}.yes_from_orders",
            "R-C5: only a yes/no field without a cog is answered Yes from the person's purchase orders",
        ),
        (
            field.type == "table" and not field.columns,
            "{at}.columns",
            "R-W8: a table field needs columns",
        ),
        (
            field.type != "table" and bool(field.columns),
            "{at}.columns",
            f"only a table has columns, not a {field.type}",
        ),
        (column and field.type == "table", "{at}.type", "a table column cannot be a table"),
        (
            field.type in SELECT_TYPES and not field.options,
            "{at}.options",
            f"a {field.type} field needs options",
        ),
        (
            field.type not in SELECT_TYPES and bool(field.options),
            "{at}.options",
            f"only select and multiselect fields have options, not a {field.type}",
        ),
        (
            not column and field.once_per is not None,
            "{at}.once_per",
            "once_per is for table columns only",
        ),
        (
            field.rows_from is not None and field.type != "table",
            "{at}.rows_from",
            "rows_from is for table fields only",
        ),
        (
            field.system_value is not None and not field.system_generated,
            "{at}.system_value",
            "R-W6: only a system_generated field takes a system_value",
        ),
    ]
    return next(((at, problem) for failed, at, problem in checks if failed), None)


def _check_unique_keys(where: _Where, sections: Sequence[Section], at: str) -> None:
    seen: dict[str, int] = {}
    for section in sections:
        for field in section.fields:
            if field.key in seen:
                raise where.fail(
                    f"{at}[#{section.number}].fields[{field.key!r}]",
                    f"duplicate field key: already in section {seen[field.key]}",
                )
            seen[field.key] = section.number


def _check_unique(where: _Where, names: Sequence[str], at: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise where.fail(f"{at}[{name!r}].{what}", f"duplicate {what} {name!r}")
        seen.add(name)


def _check_carried(where: _Where, step: StepDefinition) -> None:
    own = {section.number for section in step.sections}
    for index, carried in enumerate(step.carried_sections):
        at = f"carried_sections[{index}]"
        if carried.to_section < carried.from_section:
            raise where.fail(f"{at}.to_section", "to_section is before from_section")
        clash = own & set(range(carried.from_section, carried.to_section + 1))
        if clash:
            raise where.fail(at, f"carried section numbers {sorted(clash)} are also the step's own")


def _check_forms(where: _Where, forms: Sequence[FormDefinition]) -> None:
    _check_unique(where, [form.name for form in forms], "optional_forms", "name")
    for form in forms:
        at = f"optional_forms[{form.name!r}].sections"
        _check_sections(where, form.sections, at)
        _check_unique_keys(where, form.sections, at)


def _check_action(where: _Where, action: NextActionDefinition, form_names: set[str]) -> None:
    at = f"next_actions[{action.action!r}]"
    problem = _action_problem(action, form_names)
    if problem:
        raise where.fail(f"{at}.{problem[0]}", problem[1])
    unknown = set(action.purchase_order.by_reason) - set(action.reasons) if action.purchase_order else set()
    if unknown:
        raise where.fail(f"{at}.purchase_order.by_reason", f"R-F1: not reasons of the action: {sorted(unknown)}")


def _check_action_fields(where: _Where, step: StepDefinition, action: NextActionDefinition) -> None:
    """`window_from_field` and `review_date_field` must name date fields of the step's own form."""
    dates = {f.key for s in step.sections for f in s.fields if f.type == "date"}
    numbers = {f.key for s in step.sections for f in s.fields if f.type == "number"}
    one_off = action.purchase_order.one_off_field if action.purchase_order else None
    if one_off is not None and one_off not in numbers:
        raise where.fail(f"next_actions[{action.action!r}].purchase_order.one_off_field",
                         f"R-F6: {one_off!r} is not a number field of the step's own sections")
    if action.team_from_field is not None:
        _check_team_field(where, step, action, action.team_from_field)
    for name in ("window_from_field", "review_date_field"):
        key = getattr(action, name)
        if key is not None and key not in dates:
            raise where.fail(f"next_actions[{action.action!r}].{name}",
                             f"{key!r} is not a date field of the step's own sections")


def _check_team_field(where: _Where, step: StepDefinition, action: NextActionDefinition, key: str) -> None:
    """`team_from_field` names a select of the step's own form whose every option is a known team's name."""
    at = f"next_actions[{action.action!r}].team_from_field"
    field = next((f for s in step.sections for f in s.fields if f.key == key), None)
    if field is None or field.type != "select":
        raise where.fail(at, f"{key!r} is not a select field of the step's own sections")
    unknown = [option for option in field.options or () if team_named(option) is None]
    if unknown:
        raise where.fail(at, f"options of {key!r} that name no team of shared/teams.yaml: {unknown}")


def _action_problem(action: NextActionDefinition, forms: set[str]) -> tuple[str, str] | None:
    checks: list[tuple[bool, str, str]] = [
        (
            action.nfa and action.target_step_type is not None,
            "target_step_type",
            "R-NA4: an NFA action creates no step, so it cannot name a target step type",
        ),
        (
            action.nfa and action.assignee_kind != "none",
            "assignee_kind",
            "R-NA4: an NFA action needs no assignee: assignee_kind must be none",
        ),
        (
            action.nfa and action.send_immediately != "forbidden",
            "send_immediately",
            "an NFA action sends nothing: send_immediately must be forbidden",
        ),
        (
            action.nfa and action.scheduled_offset_days is not None,
            "scheduled_offset_days",
            "an NFA action creates no step to schedule",
        ),
        (
            not action.nfa and action.target_step_type is None,
            "target_step_type",
            "R-NA3: an action that is not NFA must name the step type it creates",
        ),
        (
            not action.nfa and action.assignee_kind == "none",
            "assignee_kind",
            "R-NA2: an action that creates a step needs an assignee kind (worker, team or self)",
        ),
        (
            action.default_team is not None and action.assignee_kind != "team",
            "default_team",
            "a default team needs assignee_kind team",
        ),
        (
            action.send_immediately == "required" and action.scheduled_offset_days is not None,
            "scheduled_offset_days",
            "an action that must be sent immediately cannot be scheduled",
        ),
        (
            action.nfa and action.scheduled_window_days is not None,
            "scheduled_window_days",
            "an NFA action creates no step to schedule",
        ),
        (
            action.scheduled_window_days is not None
            and action.scheduled_window_days[0] > action.scheduled_window_days[1],
            "scheduled_window_days",
            "the window's first day count must not be after its last",
        ),
        (
            action.window_from_field is not None and action.scheduled_window_days is None,
            "window_from_field",
            "window_from_field needs scheduled_window_days",
        ),
        (
            action.send_immediately == "required" and action.scheduled_window_days is not None,
            "scheduled_window_days",
            "an action that must be sent immediately cannot be scheduled",
        ),
        (
            action.reason_required and not action.reasons,
            "reason_required",
            "R-NA2: a reason is required but the action has no reasons to choose from",
        ),
        (
            action.requires_form is not None and action.requires_form not in forms,
            "requires_form",
            f"R-W9: the step has no optional form {action.requires_form!r}",
        ),
    ]
    return next(((at, problem) for failed, at, problem in checks if failed), None)


def _check_answered_sections(where: _Where, step: StepDefinition) -> None:
    """R-C5: a section answered by a request names a request (not a notification) of the step."""
    requests = {r.name: r.kind for r in step.requests}
    for section in step.answered_sections:
        if requests.get(section.answered_by or "") != "request":
            raise where.fail(f"sections[#{section.number}].answered_by",
                             f"{section.answered_by!r} is not a request of the step")


def _check_request(where: _Where, request: RequestDefinition, step: StepDefinition) -> None:
    at = f"requests[{request.name!r}]"
    keys = {f.key for s in step.sections for f in s.fields}
    when = [request.required_when] if isinstance(request.required_when, str) else list(request.required_when or ())
    unknown = sorted(set(when) - keys)
    if unknown:
        raise where.fail(f"{at}.required_when", f"not fields of the step's own sections: {unknown}")
    if request.kind == "notification" and request.required:
        raise where.fail(
            f"{at}.required", "a notification is information only and cannot be required"
        )
    prefixed = {"(R)": "request", "(N)": "notification"}.get(request.name[:3])
    if prefixed and prefixed != request.kind:
        raise where.fail(f"{at}.kind", f"the name says {prefixed} but kind is {request.kind}")
    recipient = request.default_to
    if recipient and recipient.kind == "role" and recipient.id not in get_args(Role):
        raise where.fail(f"{at}.default_to.id", f"unknown role {recipient.id!r}")


# --- checks across packs, and carried sections ------------------------------------------------


_Index = dict[str, dict[int, tuple[_Loaded, StepDefinition]]]


def _index_steps(loaded: Sequence[_Loaded]) -> _Index:
    index: _Index = {}
    owners: dict[str, _Loaded] = {}
    packs: dict[tuple[str, int], _Loaded] = {}
    for item in loaded:
        key = (item.pack.name, item.pack.version)
        if key in packs:
            raise _Where(str(item.path)).fail("version", f"pack {key} is also in {packs[key].path}")
        packs[key] = item
        for step in item.pack.steps:
            owner = owners.setdefault(step.step_type, item)
            if owner.pack.name != item.pack.name:
                raise _Where(str(item.path), step.step_type).fail(
                    "step_type", f"duplicate step type: already defined in {owner.path}"
                )
            index.setdefault(step.step_type, {})[item.pack.version] = (item, step)
    return index


def _check_rate_card(loaded: Sequence[_Loaded]) -> None:
    """R-F5: one rate card entry per service type across the packs."""
    seen: dict[str, Path] = {}
    for item in loaded:
        for index, entry in enumerate(item.pack.rate_card):
            if entry.service in seen:
                raise _Where(str(item.path)).fail(
                    f"rate_card[{index}].service", f"R-F5: {entry.service!r} is also costed in {seen[entry.service]}")
            seen[entry.service] = item.path


def _merge_teams(loaded: Sequence[_Loaded]) -> dict[str, str]:
    """Every pack's teams, each named by the catalogue (shared/teams.yaml), which must know it."""
    for item in loaded:
        for n, team_id in enumerate(item.pack.teams):
            if not is_known(team_id):
                raise _Where(str(item.path)).fail(f"teams[{n}]", f"team {team_id!r} is not in shared/teams.yaml")
    return {team_id: team_name(team_id) for item in loaded for team_id in item.pack.teams}


def _check_references(item: _Loaded, index: _Index, teams: Mapping[str, str]) -> None:
    for step in item.pack.steps:
        where = _Where(str(item.path), step.step_type)
        _require_team(where, "default_team", step.default_team, teams)
        for action in step.next_actions:
            at = f"next_actions[{action.action!r}]"
            _require_team(where, f"{at}.default_team", action.default_team, teams)
            for locality, team in action.team_by_locality.items():
                _require_team(where, f"{at}.team_by_locality[{locality!r}]", team, teams)
            if action.target_step_type and action.target_step_type not in index:
                raise where.fail(
                    f"{at}.target_step_type",
                    f"no loaded pack defines step type {action.target_step_type!r}",
                )
            for team in action.purchase_order.by_team if action.purchase_order else ():
                _require_team(where, f"{at}.purchase_order.by_team", team, teams)
        for request in step.requests:
            if request.default_to and request.default_to.kind == "team":
                at = f"requests[{request.name!r}].default_to.id"
                _require_team(where, at, request.default_to.id, teams)
        for n, grant in enumerate(step.start_new):
            if not grant.roles and not grant.teams:
                raise where.fail(f"start_new[{n}]", "R-W12: name the roles or teams that may start it")
            for team in grant.teams:
                _require_team(where, f"start_new[{n}].teams", team, teams)


def _require_team(where: _Where, at: str, team_id: str | None, teams: Mapping[str, str]) -> None:
    if team_id is not None and team_id not in teams:
        raise where.fail(at, f"team {team_id!r} is in no pack's teams map")


def _resolve(loaded: Sequence[_Loaded], index: _Index) -> dict[str, dict[int, StepDefinition]]:
    resolved: dict[str, dict[int, StepDefinition]] = {}
    for item in loaded:
        for step in item.pack.steps:
            full = _with_carried(item, step, index)
            _check_rows_from(_Where(str(item.path), step.step_type), full)
            _check_reachable(_Where(str(item.path), step.step_type), full, index)
            resolved.setdefault(step.step_type, {})[item.pack.version] = full
    return resolved


def _check_rows_from(where: _Where, step: StepDefinition) -> None:
    tables = {key for key, field in step.field_map().items() if field.type == "table"}
    for section in step.form_sections:
        for field in section.fields:
            if field.rows_from is not None and field.rows_from not in tables - {field.key}:
                raise where.fail(
                    f"sections[#{section.number}].fields[{field.key!r}].rows_from",
                    f"rows_from must name another table field of the step, not {field.rows_from!r}",
                )


def _with_carried(item: _Loaded, step: StepDefinition, index: _Index) -> StepDefinition:
    if not step.carried_sections:
        return step
    where = _Where(str(item.path), step.step_type)
    carried = tuple(
        copy
        for position, spec in enumerate(step.carried_sections)
        for copy in _carried_copies(
            where, position, spec, _source(item, spec, index, where, position)
        )
    )
    result = step.model_copy()
    result._carried = carried
    _check_unique_keys(where, result.form_sections, "sections")
    return result


def _source(
    item: _Loaded, spec: CarriedSections, index: _Index, where: _Where, position: int
) -> StepDefinition:
    versions = index.get(spec.from_step_type)
    if not versions:
        raise where.fail(
            f"carried_sections[{position}].from_step_type",
            f"no loaded pack defines step type {spec.from_step_type!r}",
        )
    same = versions.get(item.pack.version)
    if same and same[0].pack.name == item.pack.name:
        return same[1]
    return versions[max(versions)][1]


def _carried_copies(
    where: _Where, position: int, spec: CarriedSections, source: StepDefinition
) -> list[Section]:
    by_number = {section.number: section for section in source.sections}
    wanted = range(spec.from_section, spec.to_section + 1)
    missing = [number for number in wanted if number not in by_number]
    if missing:
        raise where.fail(
            f"carried_sections[{position}]",
            f"{spec.from_step_type!r} has no own section(s) {missing} to carry",
        )
    return [_read_only_copy(by_number[number]) for number in wanted]


def _read_only_copy(section: Section) -> Section:
    # carried values were checked when the earlier step finished; this step cannot write them
    fields = tuple(_optional_copy(field) for field in section.fields)
    return section.model_copy(update={"read_only": True, "fields": fields})


def _optional_copy(field: Field) -> Field:
    columns = tuple(_optional_copy(column) for column in field.columns)
    return field.model_copy(update={"mandatory": False, "columns": columns})


# --- R-W10: every field, action and sign-off is reachable by a role the step names ------------


def _reach(step: StepDefinition) -> frozenset[str]:
    return held_roles((*step.worked_by, *step.authorisers, *step.contributors, *step.finished_by))


def _check_reachable(where: _Where, step: StepDefinition, index: _Index) -> None:
    if not step.worked_by:
        raise where.fail("worked_by", "R-W10: name the roles that work this step (on the step or the pack)")
    reach = _reach(step)
    for n, grant in enumerate(step.start_new):
        for role in grant.roles:
            if role not in reach and not held_roles([role]) & MANAGER_ROLES:
                raise where.fail(f"start_new[{n}].roles", f"R-W12: a {role} who starts it can neither work it"
                                 " nor assign it on; add the role to worked_by")
    fields = [(f"sections.{f.key}", f) for s in step.sections for f in s.fields]
    fields += [(f"optional_forms[{form.name!r}].{f.key}", f) for form in step.optional_forms
               for s in form.sections for f in s.fields]
    for at, field in fields:
        if field.owner_role and field.owner_role not in reach:
            raise where.fail(at, f"R-W10: no role of the step can write it (owner {field.owner_role!r});"
                             " add the role to worked_by or contributors")
    for action in step.next_actions:
        if action.added_by_roles and not reach & set(action.added_by_roles):
            raise where.fail(f"next_actions[{action.action!r}].added_by_roles",
                             "R-W10: no role of the step may add it")
        if action.sends_to_role and action.target_step_type:
            _check_receiver(where, action.action, action.sends_to_role, index[action.target_step_type])
    for request in step.requests:
        at = f"requests[{request.name!r}]"
        if request.sent_by_roles and not reach & set(request.sent_by_roles):
            raise where.fail(f"{at}.sent_by_roles", "R-W10: no role of the step may send it")
        signs = request.kind == "request" and request.required and step.authorisers
        to = request.default_to
        if signs and to is not None and to.kind == "role" and not _may_sign(to.id, step.authorisers):
            raise where.fail(f"{at}.default_to.id", f"R-RQ5: {to.id!r} cannot authorise a {step.step_type}"
                             f" (authorisers: {', '.join(step.authorisers)})")


def _may_sign(role: str, authorisers: Sequence[str]) -> bool:
    return role in authorisers or any(held_roles([a]) >= {role} for a in authorisers)


def _check_receiver(
    where: _Where, action: str, role: str, versions: Mapping[int, tuple[_Loaded, StepDefinition]],
) -> None:
    _, target = versions[max(versions)]
    if role not in _reach(target) | MANAGER_ROLES and not held_roles([role]) & MANAGER_ROLES:
        raise where.fail(f"next_actions[{action!r}].sends_to_role",
                         f"R-W10: a {role} can neither work a {target.step_type} nor assign it on")
