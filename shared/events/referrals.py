"""Messages of the referrals service: referral intake (`referral.received`) and its outcomes."""

import re
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.bounds import BirthDate, HistoryDate, IdText, Items, NameText, SaneDatetime, Version
from shared.bounds import FreeText as BoundedFreeText
from shared.envelope import Envelope
from shared.events.base import Event

Service = Literal["adults", "children"]
Category = Literal[
    "wellbeing",
    "assessment",
    "review",
    "safeguarding",
    "carer",
    "hospital_discharge",
    "child_in_need",
    "significant_information",
]
Urgency = Literal["urgent", "normal"]

# Unicode's control characters (category Cc: U+0000-001F, U+007F-009F) and lone surrogates (Cs), and the bidi
# overrides and isolates that can make a name display as something else ("Trojan source"). One compiled class
# each: testing every character with unicodedata was a twentieth of a referral's handling.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_CONTROL_BUT_TAB_AND_NEWLINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError("control_characters", "contains control characters")
    return value


def _multi_line(value: str) -> str:
    # Upstream systems on Windows send CRLF; a bare CR is still refused.
    value = value.replace("\r\n", "\n")
    if _CONTROL_BUT_TAB_AND_NEWLINE.search(value):
        raise PydanticCustomError("control_characters", "contains control characters")
    return value


def _blank_to_none(value: object) -> object:
    # Upstream systems often send "" for "not known" in optional fields.
    return None if isinstance(value, str) and not value.strip() else value


def _compact_nhs_number(value: object) -> object:
    # NHS numbers are often written "943 476 5919"; the record keeps the digits.
    return _blank_to_none(value.replace(" ", "") if isinstance(value, str) else value)


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Identifier = Annotated[str, _text(200), AfterValidator(_single_line)]
Name = Annotated[str, _text(100), AfterValidator(_single_line)]
ShortText = Annotated[str, _text(200), AfterValidator(_single_line)]
FreeText = Annotated[str, _text(10_000), AfterValidator(_multi_line)]

OptionalIdentifier = Annotated[Identifier | None, BeforeValidator(_blank_to_none)]
OptionalName = Annotated[Name | None, BeforeValidator(_blank_to_none)]
OptionalShortText = Annotated[ShortText | None, BeforeValidator(_blank_to_none)]
OptionalPostcode = Annotated[
    Annotated[str, _text(16), AfterValidator(_single_line)] | None, BeforeValidator(_blank_to_none)
]
OptionalPhone = Annotated[
    Annotated[str, _text(40), AfterValidator(_single_line)] | None, BeforeValidator(_blank_to_none)
]
OptionalEmail = Annotated[
    Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    ]
    | None,
    BeforeValidator(_blank_to_none),
]
OptionalNhsNumber = Annotated[
    Annotated[str, _text(20), AfterValidator(_single_line)] | None,
    BeforeValidator(_compact_nhs_number),
]


class _Message(BaseModel):
    # Unknown fields are ignored: producers may add optional fields (docs/architecture.md "Style").
    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _null_means_default(cls, value: object, info: ValidationInfo) -> object:
        # An explicit null in a field with a default means "not given", not an error.
        field = cls.model_fields[info.field_name or ""]
        if value is None and not field.is_required() and field.default is not None:
            return field.get_default(call_default_factory=True)
        return value


class Address(_Message):
    """A postal address."""

    line1: OptionalShortText = None
    line2: OptionalShortText = None
    town: OptionalShortText = None
    postcode: OptionalPostcode = None


class PersonDetails(_Message):
    """A person as an upstream system describes them (R-P1); the NHS number is checked (R-P4)."""

    nhs_number: OptionalNhsNumber = None
    local_id: OptionalIdentifier = None
    first_name: Name
    last_name: Name
    date_of_birth: BirthDate
    gender: OptionalShortText = None
    address: Address | None = None
    phone: OptionalPhone = None
    email: OptionalEmail = None
    communication_needs: list[ShortText] = Field(default_factory=list, max_length=20)
    preferred_contact: OptionalShortText = None


class Referrer(_Message):
    """Who made the referral; every field is optional (anonymous referrals happen)."""

    name: OptionalName = None
    organisation: OptionalShortText = None
    role: OptionalShortText = None
    phone: OptionalPhone = None
    email: OptionalEmail = None


class ReferralReceived(_Message, Event):
    """An upstream system asks for help for a person: the `data` of `referral.received` v1."""

    TYPE: ClassVar[str] = "referral.received"
    VERSION: ClassVar[int] = 1

    referral_id: Identifier
    received_at: SaneDatetime
    service: Service
    category: Category
    urgency: Urgency = "normal"
    person: PersonDetails
    referrer: Referrer | None = None
    reason: FreeText
    consent_to_share: bool | None = None
    ordinarily_resident: bool = True
    cared_for_person: PersonDetails | None = None


class FieldError(BaseModel):
    """One reason a message was refused: the field at fault, a code and a plain sentence."""

    model_config = ConfigDict(frozen=True)

    field: IdText
    code: IdText
    message: BoundedFreeText


class ReferralAccepted(Event):
    """A referral was accepted: its person (found or created) and the workflow it starts."""

    # a v1 reader ignores the fields later versions add (additive-only schema evolution)
    model_config = ConfigDict(frozen=True, extra="ignore")
    TYPE: ClassVar[str] = "referral.accepted"
    VERSION: ClassVar[int] = 1

    referral_id: IdText
    person_id: IdText
    matched: bool
    workflow_id: IdText
    first_step_type: NameText
    service: Service | None = None
    category: Category | None = None
    urgency: Urgency = "normal"
    cared_for_person_id: IdText | None = None
    ordinarily_resident: bool = True


class ReferralAcceptedV2(ReferralAccepted):
    """`referral.accepted` v2 (dataschema `referral.accepted/2`): v1's fields plus who referred the person.

    Additive only: a v1 reader reads it as v1 (unknown fields are ignored). `referrer` is the
    referral's, kept so the referrer can be told what became of it (R-T4); it is personal data.
    """

    VERSION: ClassVar[int] = 2

    referrer: Referrer | None = None


class SchemaUnknown(ValueError):
    """A message's `dataschema` names another message type, or no version number."""


def schema_version(dataschema: str | None, message_type: str) -> int:
    """The version in `<type>/<n>`; a message without `dataschema` is version 1 (as before versions were named)."""
    if dataschema is None:
        return 1
    name, _, version = dataschema.rpartition("/")
    if name != message_type or not version.isdigit() or int(version) < 1:
        raise SchemaUnknown(f"dataschema is not a version of {message_type}")
    return int(version)


def upcast_referral_accepted(envelope: Envelope) -> ReferralAcceptedV2:
    """Any `referral.accepted` read as v2: a v1 message becomes v2 with no referrer.

    Versions only ever add optional fields, so a newer version than 2 reads as v2 (its new fields
    ignored). Raises `ValueError` (a pydantic `ValidationError` or `SchemaUnknown`) for a message
    that is no version of `referral.accepted`.
    """
    if schema_version(envelope.dataschema, ReferralAccepted.TYPE) < ReferralAcceptedV2.VERSION:
        v1 = ReferralAccepted.model_validate(envelope.data)
        return ReferralAcceptedV2.model_validate({**v1.model_dump(), "referrer": None})
    return ReferralAcceptedV2.model_validate(envelope.data)


class ReferralRejected(Event):
    """A referral was refused; every field at fault is listed, never with its value."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "referral.rejected"
    VERSION: ClassVar[int] = 1

    referral_id: IdText | None
    errors: list[FieldError]


class PersonCreated(Event):
    """A new person record was created from a referral (ids only: read the record by id)."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "person.created"
    VERSION: ClassVar[int] = 1

    person_id: IdText
    source_referral_id: IdText


class PersonRelationshipAdded(Event):
    """A personal relationship between two people was recorded, e.g. a main carer (R-P2)."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "person_relationship.added"
    VERSION: ClassVar[int] = 1

    relationship_id: IdText
    person_id: IdText
    other_person_id: IdText
    relationship: NameText
    is_main_carer: bool = False
    start_date: HistoryDate
    actor: IdText


class PersonUpdated(Event):
    """Fields of a person record changed; names only, read the record for the values (R-P1)."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "person.updated"
    VERSION: ClassVar[int] = 1

    person_id: IdText
    fields: Items[IdText]
    version: Version
    actor: IdText


class PersonRelationshipEnded(Event):
    """A personal relationship ended, with its date and reason (R-P2)."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "person_relationship.ended"
    VERSION: ClassVar[int] = 1

    relationship_id: IdText
    person_id: IdText
    other_person_id: IdText
    end_date: HistoryDate
    actor: IdText


class CaseNoteAdded(Event):
    """A case note was added (R-P3); the text stays in the record, not on the topic."""

    model_config = ConfigDict(frozen=True)
    TYPE: ClassVar[str] = "case_note.added"
    VERSION: ClassVar[int] = 1

    note_id: IdText
    person_id: IdText
    title: NameText
    type: NameText
    author: IdText
    notify_worker_ids: Items[IdText]
