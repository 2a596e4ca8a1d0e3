"""The clocks file (clocks.yaml) as validated models: which events start, stop, pause and resume each clock."""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared import topics
from shared.envelope import describe_errors

# the topics the service consumes: a clock started or stopped by anything else could never move
CONSUMED_TOPICS = (topics.WORKFLOW_EVENTS, topics.ALLOCATION_EVENTS)
DEFAULT_FILE = Path(__file__).with_name("clocks.yaml")
DATED_WARNINGS_WITHIN = 366  # a clock due on a date warns within the year before it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    """An event that moves a clock: its topic and type, what its data must hold, and the field naming the clock."""

    topic: Literal["workflow.events", "allocation.events"]
    type: str = Field(min_length=1, max_length=100)
    match: dict[str, str] = {}
    key: str = Field(min_length=1, max_length=100)

    def matches(self, topic: str, type_: str, data: dict[str, Any]) -> bool:
        return (topic, type_) == (self.topic, self.type) and all(
            field_at(data, path) == value for path, value in self.match.items())

    def key_of(self, data: dict[str, Any]) -> str | None:
        value = field_at(data, self.key)
        return str(value) if value not in (None, "") else None


class Start(Trigger):
    """The start event also names the team whose manager the clock concerns."""

    team: str = Field(min_length=1, max_length=100)

    def team_key_of(self, data: dict[str, Any]) -> str | None:
        """The team the field names; a list (the teams holding a worker's step, R-W14): its first."""
        value = field_at(data, self.team)
        if isinstance(value, list):
            value = value[0] if value else None
        return str(value) if value not in (None, "") else None


class Pause(Trigger):
    """A pause says why (a field of its event, or the text given)."""

    reason: str = Field(min_length=1, max_length=300)


class Length(_Strict):
    """Exactly one of `working_days`, `days` or `due_on`.

    `due_on` names a date field of the start event: the clock is due on that date however late it starts (an annual
    review kept on its original date, R-CL9), its warnings counted in days. `counted_from` names a date field of the
    start event that `working_days` or `days` count from (the day new care started, R-CL8); empty, they count from
    the event's own date."""

    working_days: int | None = Field(default=None, ge=1, le=3650)
    days: int | None = Field(default=None, ge=1, le=3650)
    due_on: str | None = Field(default=None, min_length=1, max_length=100)
    counted_from: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_unit(self) -> "Length":
        if sum(given is not None for given in (self.working_days, self.days, self.due_on)) != 1:
            raise ValueError("give exactly one of working_days, days or due_on")
        if self.due_on is not None and self.counted_from is not None:
            raise ValueError("counted_from goes with working_days or days: a clock due on a date counts from nothing")
        return self

    @property
    def unit(self) -> Literal["working_days", "days"]:
        return "working_days" if self.working_days is not None else "days"

    @property
    def count(self) -> int | None:
        """The length in its unit; None for a clock due on a date."""
        return self.working_days if self.working_days is not None else self.days

    @property
    def date_field(self) -> str | None:
        """The start event's field holding the date the clock is due on or counted from."""
        return self.due_on or self.counted_from


class Definition(_Strict):
    """One timescale (R-CL1)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$")
    title: str = Field(min_length=1, max_length=200)
    rule: str = Field(pattern=r"^R-[A-Z]+[0-9]+$")
    starts: Start
    stops: list[Trigger] = Field(min_length=1)
    pauses: list[Pause] = []
    resumes: list[Trigger] = []
    length: Length
    warnings: list[int] = []
    concerns: Literal["team_manager"]

    @model_validator(mode="after")
    def _warnings_inside_length(self) -> "Definition":
        longest = self.length.count if self.length.count is not None else DATED_WARNINGS_WITHIN
        outside = [w for w in self.warnings if not 0 < w < longest]
        if outside:
            raise ValueError(f"warnings must each be more than 0 and less than the length ({longest})")
        if bool(self.pauses) != bool(self.resumes):
            raise ValueError("a clock that pauses must also say what resumes it (and the other way round)")
        return self


class ClocksFile(_Strict):
    version: int = Field(ge=1)
    clocks: list[Definition] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "ClocksFile":
        names = [c.name for c in self.clocks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"clock names must be unique: {', '.join(twice)}")
        return self


class InvalidClocks(ValueError):
    """The clocks file is broken: the message names the file and every field at fault."""


def field_at(data: Any, path: str) -> Any:
    """The value at a dotted path (`assignee.id`), None where any part is missing."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def parse(text: str, where: str = "clocks.yaml") -> ClocksFile:
    try:
        return ClocksFile.model_validate(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError as exc:
        raise InvalidClocks(f"{where}: not YAML ({type(exc).__name__})") from None
    except ValidationError as exc:
        raise InvalidClocks(f"{where}: {describe_errors(exc)}") from None


def load(path: Path = DEFAULT_FILE) -> ClocksFile:
    return parse(path.read_text(), str(path))
