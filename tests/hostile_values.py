"""Hypothesis strategies for messages with hostile values (issue #20), shared by the unit and integration tests.

`data_for(model)` reads the model's JSON schema and draws data of its shape: mostly plausible values
of each field's kind (so that many messages validate and reach the domain), mixed with the values
issue #20 names: NaN, infinities, 1e308, year 1 and 9999, DST-gap local times in Europe/London,
100 kB strings, deep nesting, wrong types and nulls. Every drawn string may carry CANARY, so a test
can check that no error echoes a value.
"""

import functools
import math
import uuid
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from shared import bounds

CANARY = "CANARY7f3"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_SCALARS: list[Any] = [
    math.nan, math.inf, -math.inf, 1e308, -1e308, 10**30, -(10**30), 2**63, 0, -1, True, None, "",
    "0001-01-01", "9999-12-31", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-03-30T01:30:00",
    "2025-03-30T01:30:00+01:00", "1879-12-31", "2200-01-01", "2199-12-31T23:59:59+00:00", "1e308", "NaN",
    "x" * 100_000, CANARY + "\r\n\x1b[31m", "'; DROP TABLE inbox; --", "\u202eevil",
]
HOSTILE_CONTAINERS: list[Any] = [nested(50), nested(9), [1] * 2_000, {f"k{i}": i for i in range(1_100)},
                                 {"k" * 300: 1}, [], {}]


def hostile() -> st.SearchStrategy[Any]:
    return st.sampled_from(HOSTILE_SCALARS + HOSTILE_CONTAINERS)


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Free-form JSON with hostile leaves: what step.save values and payloads may hold."""
    leaves = st.one_of(hostile(), st.integers(-(10**15), 10**15), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=20).map(lambda s: CANARY + s), st.booleans(), st.none(),
                       dates().map(str), datetimes().map(lambda d: d.isoformat()))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
        max_leaves=max_leaves)


def dates() -> st.SearchStrategy[date]:
    return st.one_of(st.dates(), st.dates(min_value=date(1870, 1, 1), max_value=date(2210, 12, 31)),
                     st.sampled_from([date(1, 1, 1), date(9999, 12, 31), date(1880, 1, 1), date(2199, 12, 31),
                                      date(2000, 1, 1), date(2200, 1, 1), date(1999, 12, 31)]))


def datetimes() -> st.SearchStrategy[datetime]:
    return st.one_of(
        st.datetimes(timezones=st.sampled_from([UTC, bounds.LONDON])),
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2210, 1, 1),
                     timezones=st.sampled_from([UTC, bounds.LONDON])),
        st.sampled_from([datetime(2025, 3, 30, 1, 30), datetime(2025, 10, 26, 1, 30, tzinfo=bounds.LONDON),
                         datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC),
                         datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)]),
    )


class _Schema:
    def __init__(self, model: type[BaseModel]) -> None:
        self.schema = model.model_json_schema(by_alias=True)
        self.defs = self.schema.get("$defs", {})

    def strategy(self, node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
        plausible = self._plausible(node, depth)
        return st.one_of(plausible, plausible, plausible, hostile())

    def _plausible(self, node: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if "$ref" in node:
            return self.strategy(self.defs[node["$ref"].rsplit("/", 1)[-1]], depth)
        if "anyOf" in node:
            return st.one_of([self._plausible(option, depth) for option in node["anyOf"]])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        if "const" in node:
            return st.just(node["const"])
        kind = node.get("type")
        if kind == "object" and "properties" in node and depth < 4:
            return self.object(node, depth + 1)
        if kind == "object":
            return st.dictionaries(st.text(max_size=12), json_values(), max_size=4)
        if kind == "array":
            items = self.strategy(node.get("items", {}), depth + 1)
            return st.lists(items, max_size=3)
        if kind == "string":
            return self._string(node)
        if kind in ("integer", "number"):
            return st.one_of(st.integers(-5, 2_000), st.integers(), st.floats(allow_nan=True, allow_infinity=True))
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return json_values()

    def _string(self, node: dict[str, Any]) -> st.SearchStrategy[Any]:
        match node.get("format"):
            case "uuid":
                return st.uuids().map(str)
            case "date":
                return dates().map(str)
            case "date-time":
                return datetimes().map(lambda d: d.isoformat())
            case "email":
                return st.just("a@example.org")
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True)
        size = node.get("maxLength", 50)
        return st.one_of(st.text(min_size=1, max_size=min(size, 30)), st.just("y" * (size + 1)),
                         st.text(min_size=1, max_size=20).map(lambda s: CANARY + s))

    def object(self, node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {name: self.strategy(properties[name], depth) for name in properties if name in required},
            optional={name: self.strategy(properties[name], depth) for name in properties if name not in required})


@functools.cache
def data_for(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Data of `model`'s shape with hostile values mixed in (built once per model: building the JSON
    schema and the strategy tree costs more than drawing from it)."""
    schema = _Schema(model)
    return schema.object(schema.schema)


def envelope_for(type_: str, data: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A CloudEvent body of `type_` carrying `data`; its own time and subject may be hostile too."""
    times = st.one_of(st.just(datetime.now(UTC).isoformat()), st.just(datetime.now(UTC).isoformat()),
                      datetimes().map(lambda d: d.isoformat()), hostile())
    return st.builds(
        lambda data, time, subject: {"specversion": "1.0", "id": str(uuid.uuid4()), "type": type_,
                                     "source": "tests/hypothesis", "time": time, "subject": subject, "data": data},
        data, times, st.one_of(st.none(), st.uuids().map(str), st.text(max_size=10)))


def within_bounds(value: Any, where: str = "") -> list[str]:
    """Where a validated model's dump holds a value beyond shared/bounds.py (empty when none)."""
    faults: list[str] = []
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        if len(value) > bounds.MAX_ITEMS:
            faults.append(where)
        for key, child in value.items():
            faults += within_bounds(child, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        if len(value) > bounds.MAX_ITEMS:
            faults.append(where)
        for index, child in enumerate(value):
            faults += within_bounds(child, f"{where}[{index}]")
    elif isinstance(value, str):
        if len(value) > bounds.MAX_TEXT:
            faults.append(where)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > bounds.MAX_NUMBER:
            faults.append(where)
    elif isinstance(value, datetime):
        if value.tzinfo is None or not bounds.EARLIEST_TIME <= value < bounds.LATEST_TIME:
            faults.append(where)
    elif isinstance(value, date) and not bounds.EARLIEST_BIRTH <= value <= bounds.LATEST_DATE:
        faults.append(where)
    return faults


