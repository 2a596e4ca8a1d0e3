"""The bounds on every value a message brings (issue #20): the one place the limits are set.

A consumed message whose value breaks a bound is refused naming the field and the limit, never the
value: a command gets `command.rejected` (code `invalid`), an event goes to `<topic>.dlq`, a referral
gets `referral.rejected`. The limits:

- Timestamps (`SaneDatetime`): RFC 3339 with an offset, from 2000-01-01T00:00Z to before
  2200-01-01T00:00Z. A naive date-time is refused. An offset makes the instant exact, so a
  Europe/London DST gap cannot arise in a message timestamp: "2025-03-30T01:30:00+01:00" is the
  instant 00:30Z and is kept as sent (consumers compare instants, and turn them into London dates
  with zoneinfo, which is defined for every instant).
- Dates that plan work (`SaneDate`: due, scheduled and review dates, a provider's start date):
  2000-01-01 to 2199-12-31.
- Dates in a person's history (`HistoryDate`: relationships, deaths, assessments, dates a form
  records such as a purchase order's start): 1880-01-01 to
  2199-12-31; dates of birth (`BirthDate`) from 1880-01-01 to today in Europe/London.
- A naive local date-time typed into a form (a step's `datetime` field) is Europe/London wall time:
  one that falls in a spring-forward gap (e.g. 2025-03-30 01:30) does not exist and is refused;
  one in the autumn overlap is read as its first occurrence (`local_time_problem`).
- Text: ids at most `MAX_ID` (200) characters, names (step types, actions, forms) at most `MAX_NAME`
  (300), free text (notes, reasons, case notes) at most `MAX_TEXT` (10,000); lists at most
  `MAX_ITEMS` (1,000) items unless a model says fewer; counts within ±`MAX_NUMBER` (10^12),
  versions from 0 to `MAX_VERSION` (2^31 - 1).
- Free-form JSON (`step.save` values, purchase order changes: `BoundedJson`): at most
  `MAX_JSON_DEPTH` (8) levels, `MAX_JSON_ITEMS` (1,000) entries in any one object or list,
  `MAX_JSON_BYTES` (200,000) as JSON, keys of at most `MAX_ID` characters, strings of at most
  `MAX_TEXT`, numbers finite and within ±`MAX_NUMBER` (10^12).
- An envelope's `data` (any type, known or not) nests at most `MAX_ENVELOPE_DEPTH` (32) levels;
  NaN and infinities are not JSON and make a message undecodable (`shared.envelope.decode`).
- Numbers a form records (a pack's `number` fields): finite, within ±`MAX_FORM_NUMBER` (10^9), at
  most `MAX_DECIMAL_PLACES` (6) decimal places; hours of care at most `MAX_WEEKLY_HOURS` (168) a week
  and an hourly rate at most `MAX_HOURLY_RATE` (£10,000) (R-K10); a one-off payment at most
  `MAX_ONE_OFF_AMOUNT` (£100,000); every amount, rate, hours and weeks more than nothing (R-F4).
"""

import json
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints
from pydantic_core import PydanticCustomError

from shared.calendar import LONDON

EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)
EARLIEST_BIRTH = date(1880, 1, 1)

MAX_ID = 200
MAX_NAME = 300
MAX_TEXT = 10_000
MAX_ITEMS = 1_000
MAX_JSON_DEPTH = 8
MAX_JSON_ITEMS = 1_000
MAX_JSON_BYTES = 200_000
MAX_NUMBER = 10**12
MAX_VERSION = 2**31 - 1  # a PostgreSQL integer
MAX_ENVELOPE_DEPTH = 32

MAX_FORM_NUMBER = Decimal(10**9)
MAX_DECIMAL_PLACES = 6
MAX_WEEKLY_HOURS = Decimal(168)
MAX_HOURLY_RATE = Decimal(10_000)
MAX_ONE_OFF_AMOUNT = Decimal(100_000)  # R-F4: a one-off payment (a carer's direct payment)


def _out_of_range(earliest: object, latest: object) -> PydanticCustomError:
    return PydanticCustomError("out_of_range", "must be between {earliest} and {latest}",
                               {"earliest": str(earliest), "latest": str(latest)})


def _time_in_window(value: datetime) -> datetime:
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise _out_of_range("2000-01-01T00:00:00Z", "2199-12-31T23:59:59Z")
    return value


def _date_in(earliest: date, latest: date) -> AfterValidator:
    def check(value: date) -> date:
        if not earliest <= value <= latest:
            raise _out_of_range(earliest, latest)
        return value

    return AfterValidator(check)


def london_today() -> date:
    return datetime.now(LONDON).date()


def _born_by_today(value: date) -> date:
    if not EARLIEST_BIRTH <= value <= london_today():
        raise _out_of_range(EARLIEST_BIRTH, "today")
    return value


SaneDatetime = Annotated[AwareDatetime, AfterValidator(_time_in_window)]
SaneDate = Annotated[date, _date_in(EARLIEST_DATE, LATEST_DATE)]
HistoryDate = Annotated[date, _date_in(EARLIEST_BIRTH, LATEST_DATE)]
BirthDate = Annotated[date, AfterValidator(_born_by_today)]


# text as sent (no trimming: producers' values are kept exactly), at most so many characters
IdText = Annotated[str, StringConstraints(max_length=MAX_ID)]
NameText = Annotated[str, StringConstraints(max_length=MAX_NAME)]
FreeText = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Count = Annotated[int, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
Version = Annotated[int, Field(ge=0, le=MAX_VERSION)]

_Item = TypeVar("_Item")
# a list of at most MAX_ITEMS items: Items[IdText]
Items = Annotated[list[_Item], Field(max_length=MAX_ITEMS)]


# --- free-form JSON ---------------------------------------------------------------------------------


class JsonTooBig(ValueError):
    """A JSON value beyond the bounds; the message names the bound, never the value."""


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a free-form JSON value breaks the bounds, or None."""
    try:
        _walk(value, 1, max_depth)
        size = len(json.dumps(value, allow_nan=False))
    except JsonTooBig as exc:
        return str(exc)
    except (ValueError, TypeError, RecursionError):
        return "must be plain JSON"
    if size > MAX_JSON_BYTES:
        return f"must be at most {MAX_JSON_BYTES} bytes as JSON"
    return None


def _walk(value: Any, depth: int, max_depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > max_depth:
            raise JsonTooBig(f"must nest at most {max_depth} levels")
        if len(value) > MAX_JSON_ITEMS:
            raise JsonTooBig(f"must have at most {MAX_JSON_ITEMS} entries in any object or list")
        children: Iterable[Any]
        if isinstance(value, dict):
            if any(not isinstance(k, str) or len(k) > MAX_ID for k in value):
                raise JsonTooBig(f"must have keys of at most {MAX_ID} characters")
            children = value.values()
        else:
            children = value
        for child in children:
            _walk(child, depth + 1, max_depth)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise JsonTooBig(f"must hold strings of at most {MAX_TEXT} characters")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise JsonTooBig(f"must hold finite numbers within ±{MAX_NUMBER}")
    else:
        raise JsonTooBig("must be plain JSON")


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value)
    if problem:
        raise PydanticCustomError("json_out_of_bounds", problem)
    return value


BoundedJson = Annotated[dict[str, Any], AfterValidator(_bounded_json)]


# --- values typed into forms ------------------------------------------------------------------------


def number_problem(number: Decimal) -> str | None:
    """Why a number a form records is out of bounds, or None (the number is finite)."""
    if abs(number) > MAX_FORM_NUMBER:
        return f"must be between -{MAX_FORM_NUMBER:,} and {MAX_FORM_NUMBER:,}"
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        return f"must have at most {MAX_DECIMAL_PLACES} decimal places"
    return None


def local_time_problem(value: datetime) -> str | None:
    """Why a form's date-time cannot be kept, or None: out of the window, or a Europe/London DST gap."""
    if value.tzinfo is None:
        if not EARLIEST_BIRTH <= value.date() <= LATEST_DATE:
            return f"must be between {EARLIEST_BIRTH} and {LATEST_DATE}"
        there_and_back = value.replace(tzinfo=LONDON).astimezone(UTC).astimezone(LONDON).replace(tzinfo=None)
        if there_and_back != value:
            return "does not exist in Europe/London (the clocks went forward then)"
        return None
    # an aware time is an exact instant; the window is that of the dates in a person's history
    earliest = datetime.combine(EARLIEST_BIRTH, time(0), UTC)
    latest = datetime.combine(LATEST_DATE + timedelta(days=1), time(0), UTC)
    if not earliest <= value < latest:
        return f"must be between {EARLIEST_BIRTH} and {LATEST_DATE}"
    return None


def date_problem(value: date) -> str | None:
    """Why a form's date is out of the window of a person's history, or None."""
    if not EARLIEST_BIRTH <= value <= LATEST_DATE:
        return f"must be between {EARLIEST_BIRTH} and {LATEST_DATE}"
    return None


def nests_deeper_than(value: Any, max_depth: int) -> bool:
    """Whether a JSON value has objects or lists more than `max_depth` levels deep (no recursion)."""
    level = [value]
    for _ in range(max_depth):
        level = [child for v in level if isinstance(v, dict | list)
                 for child in (v.values() if isinstance(v, dict) else v)]
        if not level:
            return False
    return any(isinstance(v, dict | list) for v in level)
