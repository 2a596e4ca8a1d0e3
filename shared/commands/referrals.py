"""Commands of `referrals.commands`: person records, relationships and case notes (R-P1..R-P3)."""

import uuid
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.bounds import BirthDate, HistoryDate
from shared.commands.base import AccessReason, Command
from shared.events.referrals import (
    Address,
    FreeText,
    Name,
    OptionalEmail,
    OptionalNhsNumber,
    OptionalPhone,
    OptionalShortText,
    ShortText,
)

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class FinancialAssessment(BaseModel):
    """Outcome of the financial assessment: weekly contribution in pounds; 99999 full cost, 0 nil."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weekly_contribution: Annotated[str, StringConstraints(pattern=r"^\d{1,5}(\.\d{1,2})?$")]
    assessed_on: HistoryDate | None = None


class GeneralPractitioner(BaseModel):
    """The person's GP practice."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    practice: ShortText
    phone: OptionalPhone = None


def _one_of(*allowed: str) -> AfterValidator:
    def check(values: list[str]) -> list[str]:
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(f"must be among {', '.join(allowed)}")
        return values

    return AfterValidator(check)


class PersonChanges(BaseModel):
    """Fields of a person record (R-P1) a worker may change; unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: BirthDate | None = None
    date_of_death: HistoryDate | None = None
    gender: OptionalShortText = None
    address: Address | None = None
    phone: OptionalPhone = None
    email: OptionalEmail = None
    preferred_contact: OptionalShortText = None
    employment_status: OptionalShortText = None
    nhs_number: OptionalNhsNumber = None
    other_reference_numbers: dict[Label, Label] | None = Field(default=None, max_length=20)
    service_user_groups: list[Label] | None = Field(default=None, max_length=20)
    classes: Annotated[list[Label], _one_of("service user", "carer", "next of kin", "representative",
                                             "appointee", "deputy")] | None = None
    communication_needs: list[ShortText] | None = Field(default=None, max_length=20)
    health_conditions: list[ShortText] | None = Field(default=None, max_length=50)
    gp: GeneralPractitioner | None = None
    legal_status: list[Label] | None = Field(default=None, max_length=10)
    financial_assessment: FinancialAssessment | None = None
    warnings: list[ShortText] | None = Field(default=None, max_length=20)
    ordinarily_resident: bool | None = None


class PersonCommand(Command):
    """A command on one person's record: the actor needs a relationship or work with the person, a manager
    role above teams, or a recorded `access_reason` (break-glass; issue #11 §3)."""

    access_reason: AccessReason | None = None


class UpdatePerson(PersonCommand):
    """Change fields of a person record; only the fields sent change."""

    TYPE: ClassVar[str] = "person.update"
    person_id: uuid.UUID
    changes: PersonChanges

    def changed(self) -> dict[str, Any]:
        return self.changes.model_dump(mode="json", exclude_unset=True)


class AddPersonRelationship(PersonCommand):
    """Record a personal relationship, e.g. a main carer (R-P2)."""

    TYPE: ClassVar[str] = "person_relationship.add"
    person_id: uuid.UUID
    other_person_id: uuid.UUID
    relationship: Label
    is_main_carer: bool = False
    start_date: HistoryDate


class EndPersonRelationship(PersonCommand):
    """End a personal relationship with a date and a reason."""

    TYPE: ClassVar[str] = "person_relationship.end"
    relationship_id: uuid.UUID
    end_date: HistoryDate
    end_reason: Label


class AddCaseNote(PersonCommand):
    """A dated case note with a title and type, optionally notifying workers (R-P3)."""

    TYPE: ClassVar[str] = "case_note.add"
    person_id: uuid.UUID
    title: Label
    type: Label
    text: FreeText
    notify_worker_ids: list[Label] = Field(default_factory=list, max_length=50)


COMMANDS: dict[str, type[Command]] = {
    c.TYPE: c for c in (UpdatePerson, AddPersonRelationship, EndPersonRelationship, AddCaseNote)
}
