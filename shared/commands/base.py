"""What every command shares: the actor who sends it, and the one shape of a refusal (RuleBroken)."""

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.bounds import MAX_VERSION
from shared.events.base import Event

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# why a worker with no relationship to the person acts on their record anyway: recorded (break-glass)
AccessReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Actor(BaseModel):
    """Who sends a command: the signed-in worker, their roles and teams."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    worker_id: Id
    roles: list[Id] = Field(default_factory=list, max_length=50)
    team_ids: list[Id] = Field(default_factory=list, max_length=200)


class Target(BaseModel):
    """A worker or a team: the `assignee` / `to` of a command."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["worker", "team"]
    id: Id


class Command(BaseModel):
    """A command's `data`: its actor, and optionally the version it expects to change."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    TYPE: ClassVar[str]

    actor: Actor
    expected_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


class Reason(BaseModel):
    """One reason a command was refused or a step cannot finish."""

    code: str
    message: str
    section: int | None = None
    field: str | None = None
    request_id: str | None = None
    step_id: str | None = None


class CommandRejected(Event):
    """A command was refused; `reasons` lists every reason, not only the first."""

    TYPE: ClassVar[str] = "command.rejected"
    command_type: str
    code: str
    message: str
    reasons: list[Reason]

    @classmethod
    def because(cls, command_type: str, reasons: list[Reason]) -> "CommandRejected":
        return cls(command_type=command_type, code=RuleBroken(reasons).code,
                   message="; ".join(r.message for r in reasons), reasons=reasons)


class RuleBroken(Exception):
    """A command, request or upload that breaks one or more rules: the one way Tessera refuses.

    `reasons` names every rule broken, not only the first; `key` is the Kafka key of the answer when known.
    """

    def __init__(self, reasons: Sequence[Reason], key: str | None = None) -> None:
        super().__init__("; ".join(f"{r.code}: {r.message}" for r in reasons))
        self.reasons = list(reasons)
        self.key = key

    @property
    def code(self) -> str:
        """The one code all reasons share, else `rule_broken`."""
        codes = {r.code for r in self.reasons}
        return codes.pop() if len(codes) == 1 else "rule_broken"


def reason(code: str, message: str, field: str | None = None, **where: Any) -> Reason:
    """One reason; `field` (or `where`: section, request_id, step_id) names what is at fault."""
    return Reason(code=code, message=message, field=field, **where)


def check(reasons: list[Reason]) -> None:
    """RuleBroken naming every reason, if there is any."""
    if reasons:
        raise RuleBroken(reasons)


def invalid_reasons(exc: ValidationError) -> list[Reason]:
    """Every field at fault, without echoing the values sent."""
    return [
        Reason(code="invalid", field=".".join(str(p) for p in e["loc"]) or "data", message=e["msg"])
        for e in exc.errors(include_input=False, include_url=False)
    ]


def parse_command(commands: dict[str, type[Command]], type_: str, data: dict[str, Any]) -> Command:
    """The command model for `type_`, validated; RuleBroken naming every field otherwise."""
    model = commands.get(type_)
    if model is None:
        raise RuleBroken([Reason(code="unknown_command", message=f"no such command: {type_[:100]}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RuleBroken(invalid_reasons(exc)) from None
