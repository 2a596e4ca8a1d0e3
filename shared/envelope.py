"""The CloudEvents 1.0 envelope every Tessera message travels in: structured JSON, or on the topics outside
systems write, also the Kafka binding's binary content mode (docs/cloudevents-binary-mode.md)."""

import json
import math
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from shared.bounds import MAX_ENVELOPE_DEPTH, SaneDatetime, nests_deeper_than

MAX_MESSAGE_BYTES = 1_000_000
M = TypeVar("M", bound=BaseModel)


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


def parse(model: type[M], envelope: Envelope) -> M:
    """A consumed message's data as `model`; Undecodable naming every field at fault otherwise, so that the
    message is set aside to the dead-letter topic (the one policy for an invalid consumed message)."""
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise Undecodable(f"invalid {envelope.type[:100]}: {describe_errors(exc)}") from None


def decode(raw: bytes | None) -> Envelope:
    """Parse a structured-mode message value, naming every field at fault without echoing values."""
    if raw is None:
        raise Undecodable("empty message value")
    problem = _unstorable(raw)
    if problem:
        raise Undecodable(problem)
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


def _unstorable(raw: bytes) -> str | None:
    if len(raw) > MAX_MESSAGE_BYTES:
        return f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}"
    if b"\x00" in raw or b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: refuse it whole
        return "contains a NUL character"
    return None


# --- binary content mode (CloudEvents Kafka protocol binding 1.0, section 3.2) ----------------------

Headers = Sequence[tuple[str, bytes | None]] | None
ATTRIBUTE_HEADER_PREFIX = "ce_"
STRUCTURED_CONTENT_TYPE = "application/cloudevents"
ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")
# carried by the content-type header and the message value in binary mode, never by a ce_ header
NOT_ATTRIBUTE_HEADERS = frozenset({"data", "datacontenttype"})


def is_binary_mode(headers: Headers) -> bool:
    """The binding's rule: a cloudevents content-type is structured; else a ce_specversion header is binary."""
    names = {name.lower(): value for name, value in headers or ()}
    content_type = (names.get("content-type") or b"").decode("utf-8", "replace").strip().lower()
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return False
    return f"{ATTRIBUTE_HEADER_PREFIX}specversion" in names


def decode_either_mode(raw: bytes | None, headers: Headers) -> Envelope:
    """A message in structured or binary content mode, for the topics outside systems write."""
    if not is_binary_mode(headers):
        return decode(raw)
    return decode_binary(raw, headers)


def decode_binary(raw: bytes | None, headers: Headers) -> Envelope:
    """Attributes from `ce_<name>` headers, data from the value (JSON); every fault named, no value echoed."""
    errors: list[str] = []
    attributes = _attributes(headers, errors)
    content_type = _content_type(headers, errors)
    data = _binary_data(raw, errors)
    try:
        envelope = Envelope.model_validate({**attributes, "data": data, "datacontenttype": content_type})
    except ValidationError as exc:
        errors += _binary_errors(exc)
    if errors:
        raise Undecodable("not a CloudEvent (binary mode): " + "; ".join(errors))
    return envelope


def _attributes(headers: Headers, errors: list[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for header, value in headers or ():
        if not header.lower().startswith(ATTRIBUTE_HEADER_PREFIX):
            continue
        name = header.lower().removeprefix(ATTRIBUTE_HEADER_PREFIX)
        if name in NOT_ATTRIBUTE_HEADERS:
            errors.append(f"{ATTRIBUTE_HEADER_PREFIX}{name}: not an attribute header in binary mode")
        elif not ATTRIBUTE_NAME.fullmatch(name):  # not named: the sender chose the name, it may hold anything
            errors.append(f"a {ATTRIBUTE_HEADER_PREFIX} header whose name is not 1-20 of a-z0-9")
        elif name in attributes:
            errors.append(f"{ATTRIBUTE_HEADER_PREFIX}{name}: given more than once")
        elif (text := _text(value)) is None:
            errors.append(f"{ATTRIBUTE_HEADER_PREFIX}{name}: not a UTF-8 string without NUL")
        else:
            attributes[name] = text
    return attributes


def _content_type(headers: Headers, errors: list[str]) -> str:
    """datacontenttype is the content-type header; absent, the data is taken as JSON."""
    given = [value for name, value in headers or () if name.lower() == "content-type"]
    if not given:
        return "application/json"
    media_type = (_text(given[-1]) or "").split(";", 1)[0].strip().lower()
    if len(given) > 1:
        errors.append("content-type: given more than once")
    elif media_type != "application/json":
        errors.append("content-type: binary-mode data must be application/json")
    return "application/json"


def _binary_data(raw: bytes | None, errors: list[str]) -> dict[str, Any]:
    if not raw:  # an event without data
        return {}
    problem = _unstorable(raw)
    if problem:
        errors.append(f"value: {problem}")
        return {}
    try:
        data = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        errors.append(f"value: not JSON: {type(exc).__name__}")
        return {}
    if not isinstance(data, dict):
        errors.append("value: the data is not a JSON object")
        return {}
    return data


def _binary_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors named as the sender wrote them: `ce_<attribute>` headers, the value for data."""
    named = []
    for e in exc.errors(include_input=False, include_url=False):
        first, rest = (str(e["loc"][0]), e["loc"][1:]) if e["loc"] else ("(root)", ())
        where = "value" if first == "data" else f"{ATTRIBUTE_HEADER_PREFIX}{first}"
        named.append(".".join([where, *(str(p) for p in rest)]) + f": {e['msg']}")
    return named


def _text(value: bytes | None) -> str | None:
    if value is None or b"\x00" in value or len(value) > MAX_MESSAGE_BYTES:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
