"""Render the message contracts into docs/contracts.md, between its generated markers.

`python -m tools.contracts_doc --write` rewrites the generated blocks; without `--write` it
checks them and exits 1 when the page differs from what the code says (tests/unit/test_docs.py).

Sources, so the page cannot drift from the code:
- the envelope, every command and every event: their pydantic models in `shared/` (JSON schema:
  field names, types, required, defaults, descriptions, constraints; docstrings);
- the topics: `shared/topics.py`; who reads each one: the services' AsyncAPI documents;
- the read endpoints: the services' OpenAPI documents;
- the first step of a referral: `services/referrals/domain.py`.
"""

import argparse
import difflib
import functools
import importlib
import inspect
import json
import logging
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

import shared.commands
import shared.events
from shared import topics
from shared.commands.base import Actor, Command, CommandRejected, Target
from shared.envelope import Envelope

DOC = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"
WRITE_COMMAND = "python -m tools.contracts_doc --write"
SERVICES = ("referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "clocks")
PROBES = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}
BEGIN = re.compile(r"<!-- generated:([a-z0-9.-]+) .*?-->\n")
END = "<!-- end generated:{name} -->"


def _command_registries() -> dict[str, dict[str, type[Command]]]:
    """`shared/commands/<service>.py`'s COMMANDS travel on `<service>.commands`."""
    found = {}
    for info in pkgutil.iter_modules(shared.commands.__path__):
        module = importlib.import_module(f"shared.commands.{info.name}")
        if hasattr(module, "COMMANDS"):
            if f"{info.name}.commands" not in topics.ALL:
                raise KeyError(f"shared/commands/{info.name}.py: no topic {info.name}.commands in shared/topics.py")
            found[f"{info.name}.commands"] = module.COMMANDS
    return found


COMMANDS = _command_registries()
# each command topic's service answers on its events topic, `command.rejected` included
ANSWERED_ON = {topic: topic.replace(".commands", ".events") for topic in COMMANDS}
# the topic of each module's messages in shared/events, and the messages that go elsewhere
EVENTS_TOPIC = {
    "referrals": topics.REFERRALS_EVENTS,
    "workflow": topics.WORKFLOW_EVENTS,
    "allocation": topics.ALLOCATION_EVENTS,
    "notifications": topics.NOTIFICATIONS_EVENTS,
    "documents": topics.DOCUMENTS_EVENTS,
    "scheduler": topics.SCHEDULER_DUE,
    "clocks": topics.CLOCKS_EVENTS,
    "purchasing": topics.PURCHASING_ORDERS,
    "brokerage": topics.BROKERAGE_EVENTS,
    "web": topics.WEB_EVENTS,
}
TOPIC_OF_TYPE = {
    "referral.received": topics.REFERRALS_INTAKE,
    "timer.set": topics.SCHEDULER_TIMERS,
    "timer.cancel": topics.SCHEDULER_TIMERS,
}
# not in any code: who writes each topic (every producer is named in its service's README)
WRITTEN_BY = {
    topics.REFERRALS_INTAKE: "upstream systems (contact centre, hospital, `python -m tessera send-referral`)",
    topics.REFERRALS_EVENTS: "referrals",
    topics.REFERRALS_COMMANDS: "the desk (web); allocation (the case notes of its own commands)",
    topics.WORKFLOW_COMMANDS: "the desk (web); allocation (`step.assign` on allocating)",
    topics.WORKFLOW_EVENTS: "workflow",
    topics.ALLOCATION_COMMANDS: "the desk (web)",
    topics.ALLOCATION_EVENTS: "allocation",
    topics.NOTIFICATIONS_EVENTS: "notifications",
    topics.NOTIFICATIONS_COMMANDS: "the desk (web)",
    topics.DOCUMENTS_EVENTS: "documents",
    topics.SCHEDULER_TIMERS: "workflow, allocation, notifications, clocks",
    topics.SCHEDULER_DUE: "scheduler",
    topics.CLOCKS_EVENTS: "clocks",
    topics.PURCHASING_ORDERS: "workflow",
    topics.BROKERAGE_EVENTS: "the brokerage system (outside Tessera)",
    topics.WEB_EVENTS: "the desk (web): its staff directory",
}
# readers outside Tessera, beside the services' own subscribers
OUTSIDE_READERS = {
    topics.PURCHASING_ORDERS: ["finance and brokerage (e.g. `tools/finance_ledger.py`)"],
}
ENVELOPE_MEANINGS = {
    "specversion": "always `1.0`",
    "id": "the message's own id; consumers drop a second delivery of the same id (their inbox)",
    "type": "what happened (`step.finished`) or what is asked (`step.finish`)",
    "source": "who sent it: `tessera/<service>`, `tessera/web`, or the upstream system's name",
    "time": "when it was sent",
    "subject": "the person id the message is about, where there is one",
    "datacontenttype": "always `application/json`",
    "dataschema": "`<type>/<version>`, e.g. `referral.accepted/2`; absent means version 1",
    "correlationid": "shared by every message one referral or one command set off",
    "causationid": "the `id` of the message that caused this one; a command's outcome carries the command's id",
    "data": "the payload: the model of `type`, below",
}


# --- JSON schema → Markdown ------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}`"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _non_null(schema: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf") or [schema]
    kept = [o for o in options if o.get("type") != "null"]
    return kept, len(kept) < len(options)


def type_of(schema: dict[str, Any]) -> str:
    """A reader's name for a JSON schema's type: `string`, `uuid`, `list of Target`, `one of …`."""
    options, nullable = _non_null(schema)
    text = " or ".join(_single_type(o) for o in options)
    return f"{text} or null" if nullable else text


def _single_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "anyOf" in schema or "allOf" in schema or "oneOf" in schema:
        return type_of(schema)
    if "const" in schema:
        return _code(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_code(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "string":
        return {"uuid": "uuid", "date": "date", "date-time": "timestamp"}.get(schema.get("format", ""), "string")
    if kind == "array":
        return "list of " + type_of(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of string → " + type_of(schema["additionalProperties"])
    return {"integer": "integer", "number": "number", "boolean": "bool", "object": "object"}.get(kind, kind)


LIMITS = (
    ("minLength", "≥ {} chars"), ("maxLength", "≤ {} chars"), ("pattern", "matches `{}`"),
    ("minimum", "≥ {}"), ("maximum", "≤ {}"), ("exclusiveMinimum", "> {}"), ("exclusiveMaximum", "< {}"),
    ("minItems", "≥ {} items"), ("maxItems", "≤ {} items"),
    ("minProperties", "≥ {} keys"), ("maxProperties", "≤ {} keys"),
)


def constraints_of(schema: dict[str, Any]) -> list[str]:
    """Every bound the schema sets, on the value, its items, its keys and its values."""
    options, _ = _non_null(schema)
    found: list[str] = []
    for option in options:
        found += ["not empty" if (key, option[key]) == ("minLength", 1) else text.format(option[key])
                  for key, text in LIMITS if key in option]
        if option.get("type") == "array":
            found += [f"each {c}" for c in constraints_of(option.get("items", {}))]
        if isinstance(option.get("propertyNames"), dict):
            found += [f"each key {c}" for c in constraints_of(option["propertyNames"])]
        if isinstance(option.get("additionalProperties"), dict):
            found += [f"each value {c}" for c in constraints_of(option["additionalProperties"])]
    return found


def _required(name: str, schema: dict[str, Any], prop: dict[str, Any]) -> str:
    if name in schema.get("required", ()):
        return "yes"
    return f"no (default {_code(prop['default'])})" if "default" in prop else "no"


def fields_table(schema: dict[str, Any], meanings: dict[str, str] | None = None) -> str:
    """One row per field: name, type, required (with default), constraints, description."""
    rows = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        description = prop.get("description") or (meanings or {}).get(name, "")
        rows.append(f"| `{name}` | {_cell(type_of(prop))} | {_cell(_required(name, schema, prop))} | "
                    f"{_cell('; '.join(constraints_of(prop)))} | {_cell(description)} |")
    if len(rows) == 2:
        rows.append("| | | | | no fields of its own |")
    return "\n".join(rows)


def _docstring(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split()) if doc else ""


@dataclass(frozen=True)
class Shapes:
    """The nested models (`$defs`) the messages of one block refer to, each shown once."""

    defs: dict[str, dict[str, Any]]

    def add(self, schema: dict[str, Any]) -> None:
        for name, shape in schema.get("$defs", {}).items():
            if self.defs.get(name, shape) != shape:
                raise ValueError(f"two different shapes are both named {name}: rename one model")
            self.defs[name] = shape

    def render(self, skip: Iterable[str] = ()) -> str:
        parts = []
        for name in sorted(set(self.defs) - set(skip)):
            shape = self.defs[name]
            about = _cell(shape.get("description", ""))
            parts.append(f"##### `{name}`\n\n{about + chr(10) * 2 if about else ''}{fields_table(shape)}")
        return "\n\n".join(parts)


def message_section(model: type[BaseModel], shapes: Shapes, heading: str = "####") -> str:
    schema = model.model_json_schema(by_alias=True)
    shapes.add(schema)
    version = getattr(model, "VERSION", None)
    title = f"{heading} `{model.TYPE}`" + (f" v{version}" if version else "")  # type: ignore[attr-defined]
    schema_line = f"`dataschema`: `{model.TYPE}/{version}`. " if version else ""  # type: ignore[attr-defined]
    return (f"{title}\n\n{schema_line}{_docstring(model)} (`{model.__module__}.{model.__name__}`)\n\n"
            f"{fields_table(schema)}")


def messages_block(models: Iterable[type[BaseModel]], skip_shapes: Iterable[str] = ()) -> str:
    shapes = Shapes({})
    sections = [message_section(m, shapes) for m in models]
    nested = shapes.render(skip_shapes)
    return "\n\n".join(sections + ([f"#### Shapes used above\n\n{nested}"] if nested else []))


# --- what travels where ----------------------------------------------------------------------------


def _messages_of(module: ModuleType) -> list[type[BaseModel]]:
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == module.__name__
            and hasattr(v, "TYPE")]


def messages_by_topic() -> dict[str, list[type[BaseModel]]]:
    """Every message model of shared/commands and shared/events, under the topic it travels on."""
    found: dict[str, list[type[BaseModel]]] = {t: [] for t in topics.ALL}
    for commands_topic, commands in COMMANDS.items():
        found[commands_topic] += commands.values()
    for info in pkgutil.iter_modules(shared.events.__path__):
        if info.name == "base":  # the Event every event is, not an event itself
            continue
        if info.name not in EVENTS_TOPIC:
            raise KeyError(f"shared/events/{info.name}.py: add its topic to EVENTS_TOPIC in {__name__}")
        module = importlib.import_module(f"shared.events.{info.name}")
        for model in _messages_of(module):
            found[TOPIC_OF_TYPE.get(model.TYPE, EVENTS_TOPIC[info.name])].append(model)  # type: ignore[attr-defined]
    for events_topic in ANSWERED_ON.values():
        found[events_topic].append(CommandRejected)
    return found


@functools.cache
def _service_apps() -> dict[str, Any]:
    """Each service's app, as it runs (its AsyncAPI and OpenAPI documents come from it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return {name: importlib.import_module(f"services.{name}.app").app for name in SERVICES}
    finally:  # building an app configures JSON logging for a service: not this process's business
        root.handlers[:] = handlers
        root.setLevel(level)


def readers_by_topic() -> dict[str, list[str]]:
    """Who consumes each topic: the channels of every service's AsyncAPI document, and the desk."""
    from faststream.specification.asyncapi import AsyncAPI

    from services.web.commands import ANSWERS

    readers: dict[str, list[str]] = {t: [] for t in topics.ALL}
    for name, app in _service_apps().items():
        spec = AsyncAPI(app.state.runtime.broker, title=name).to_specification().to_jsonable()
        for channel in spec.get("channels", {}).values():
            readers.setdefault(channel["address"], []).append(name)
    for topic in ANSWERS:
        readers[topic].append("web (the outcome of its commands)")
    for topic, outside in OUTSIDE_READERS.items():
        readers[topic] += outside
    return {t: list(dict.fromkeys(r)) for t, r in readers.items()}


# --- the generated blocks ----------------------------------------------------------------------------


def envelope_block() -> str:
    schema = Envelope.model_json_schema(by_alias=True)
    missing = set(schema["properties"]) - set(ENVELOPE_MEANINGS)
    if missing:
        raise KeyError(f"say what envelope field(s) {sorted(missing)} mean in ENVELOPE_MEANINGS ({__name__})")
    return fields_table(schema, ENVELOPE_MEANINGS)


def topics_block() -> str:
    carried, readers = messages_by_topic(), readers_by_topic()
    rows = ["| topic | written by | read by | carries |", "|---|---|---|---|"]
    for topic in topics.ALL:
        types = ", ".join(dict.fromkeys(f"`{m.TYPE}`" for m in carried[topic]))  # type: ignore[attr-defined]
        rows.append(f"| `{topic}` | {_cell(WRITTEN_BY[topic])} | {_cell(', '.join(readers[topic]) or '—')} "
                    f"| {types} |")
    rows.append("| `<topic>.dlq` | any consumer of `<topic>` | operations (`python -m tools.redrive`) "
                "| the original message, untouched, with `dlq_*` headers |")
    return "\n".join(rows)


def first_steps_block() -> str:
    from services.referrals.domain import FIRST_STEPS

    rows = ["| `service` | `category` | first step (`first_step_type`) |", "|---|---|---|"]
    rows += [f"| `{service}` | `{category}` | {step} |" for (service, category), step in FIRST_STEPS.items()]
    return "\n".join(rows)


def commands_base_block() -> str:
    shapes = Shapes({})
    parts = [
        f"#### Every command's `data`\n\n{_docstring(Command)}\n\n{fields_table(Command.model_json_schema())}",
        f"#### `actor`: `Actor`\n\n{_docstring(Actor)}\n\n{fields_table(Actor.model_json_schema())}",
        f"#### `assignee` / `to` / `from`: `Target`\n\n{_docstring(Target)}\n\n"
        f"{fields_table(Target.model_json_schema())}",
        message_section(CommandRejected, shapes),
    ]
    return "\n\n".join(parts + [f"#### Shapes used above\n\n{shapes.render()}"])


def commands_block(topic: str) -> Callable[[], str]:
    def render() -> str:
        return messages_block(COMMANDS[topic].values(), skip_shapes=("Actor", "Target"))
    return render


def events_block(topic: str) -> Callable[[], str]:
    def render() -> str:
        return messages_block(m for m in messages_by_topic()[topic] if m is not CommandRejected)
    return render


def endpoints_block() -> str:
    parts = []
    for name, app in _service_apps().items():
        port = app.state.runtime.settings.port
        rows = ["| method | path | parameters | what it answers |", "|---|---|---|---|"]
        for path, operations in app.openapi()["paths"].items():
            if path in PROBES:
                continue
            for method, op in operations.items():
                params = ", ".join(f"`{p['name']}`" + ("" if p.get("required") else " (optional)")
                                   for p in op.get("parameters", []) if p["in"] == "query")
                about = op.get("description") or op.get("summary", "")
                rows.append(f"| {method.upper()} | `{path}` | {_cell(params)} | {_cell(about)} |")
        parts.append(f"#### {name} (port {port})\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def generators() -> dict[str, Callable[[], str]]:
    return {
        "envelope": envelope_block,
        "topics": topics_block,
        "first-steps": first_steps_block,
        "intake": lambda: messages_block(messages_by_topic()[topics.REFERRALS_INTAKE]),
        "commands": commands_base_block,
        **{f"commands.{t}": commands_block(t) for t in COMMANDS},
        **{f"events.{t}": events_block(t) for t in topics.ALL if t not in COMMANDS and t != topics.REFERRALS_INTAKE},
        "endpoints": endpoints_block,
    }


def render(text: str) -> str:
    """The page with every generated block rendered again from the code; prose is kept as it is."""
    blocks = generators()
    seen: list[str] = []
    out, position = [], 0
    for begin in BEGIN.finditer(text):
        name = begin.group(1)
        if name not in blocks:
            raise KeyError(f"docs/contracts.md has a generated block {name!r} that {__name__} does not know")
        end = text.index(END.format(name=name), begin.end())
        out += [text[position:begin.end()], blocks[name]().rstrip() + "\n"]
        position, seen = end, [*seen, name]
    missing = [n for n in blocks if n not in seen]
    if missing:
        raise KeyError(f"docs/contracts.md lacks the generated block(s) {missing}: add their markers")
    return "".join(out) + text[position:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the generated blocks of docs/contracts.md")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    wanted = render(current)
    if args.write:
        DOC.write_text(wanted)
        return 0
    if wanted == current:
        return 0
    diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "docs/contracts.md",
                                "generated", lineterm="", n=1)
    print("\n".join(list(diff)[:80]))
    print(f"\ndocs/contracts.md differs from the models, topics and endpoints; run: {WRITE_COMMAND}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
