"""The CloudEvents 1.0 envelope (structured JSON) every Tessera message travels in."""

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from shared.bounds import MAX_ENVELOPE_DEPTH, SaneDatetime, nests_deeper_than

MAX_MESSAGE_BYTES = 1_000_000


def _shallow(data: dict[str, Any]) -> dict[str, Any]:
    if nests_deeper_than(data, MAX_ENVELOPE_DEPTH):
        raise PydanticCustomError("too_deep", "must nest at most {max_depth} levels", {"max_depth": MAX_ENVELOPE_DEPTH})
    return data


class Envelope(BaseModel):
    """A CloudEvent: what happened or what is asked, about whom, caused by what."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: uuid.UUID
    type: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    time: SaneDatetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(default=None, max_length=200)
    correlationid: str | None = Field(default=None, max_length=200)
    causationid: str | None = Field(default=None, max_length=200)
    data: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Undecodable(Exception):
    """A message that is not JSON or not a CloudEvent: it goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(raw: bytes | None) -> Envelope:
    """Parse a message value, naming every field at fault without echoing values."""
    if raw is None:
        raise Undecodable("empty message value")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Undecodable(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if b"\x00" in raw or b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: refuse it whole
        raise Undecodable("contains a NUL character")
    try:
        body = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, a number of 4,300+ digits
        raise Undecodable(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise Undecodable("not a CloudEvent: the value is not a JSON object")
    try:
        return Envelope.model_validate(body)
    except ValidationError as exc:
        raise Undecodable("not a CloudEvent: " + describe_errors(exc)) from None


def _not_json(constant: str) -> float:
    raise ValueError("NaN and Infinity are not JSON")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):  # 1e400 reads as infinity: no store or sum can hold it
        raise ValueError("a number beyond the range of a double")
    return value


def describe_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def new_message(
    type: str,
    source: str,
    data: BaseModel | dict[str, Any],
    *,
    subject: str | None = None,
    cause: Envelope | None = None,
    dataschema: str | None = None,
) -> Envelope:
    """An envelope for an event or command, carrying on the cause's correlation."""
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    correlation = None
    if cause is not None:
        correlation = cause.correlationid or str(cause.id)
    return Envelope(
        specversion="1.0",
        id=uuid.uuid4(),
        type=type,
        source=source,
        time=datetime.now(UTC),
        subject=subject,
        dataschema=dataschema,
        correlationid=correlation,
        causationid=str(cause.id) if cause is not None else None,
        data=payload,
    )
