"""Issue #16 §3: one way to emit, one way to refuse, one policy for an invalid consumed message
(docs/architecture.md "Emitting and refusing"). Read from the source, so a new handler cannot drift."""

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted((ROOT / "services").rglob("*.py"))
# the desk publishes its commands itself and waits for their answer; the scheduler's timer.due has an id derived
# from the timer, so that a re-fire is the same message
BUILDS_ENVELOPES = {"services/web/commands.py": "new_message", "services/scheduler/jobs.py": "Envelope"}


@cache
def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of a module, parsed once for the three tests."""
    return tuple(ast.walk(ast.parse(path.read_text())))


def _calls(path: Path) -> list[str]:
    names = []
    for node in _nodes(path):
        if isinstance(node, ast.Call):
            func = node.func
            names.append(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_service_emits_through_the_outbox_emitter() -> None:
    """No service builds an envelope or an outbox row itself: outbox.Emitter does (with its dataschema)."""
    builders = {"new_message", "Envelope", "Outgoing"}
    found = {_where(p): sorted(builders & set(_calls(p))) for p in SERVICES}
    assert {p: names for p, names in found.items() if names} == {
        path: [name] for path, name in BUILDS_ENVELOPES.items()}


def test_no_service_defines_its_own_refusal() -> None:
    """RuleBroken (shared/commands/base.py) is the one exception that means "a rule is broken"."""
    own = []
    for path in SERVICES:
        for node in _nodes(path):
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Refused", "Invalid", "Broken", "Rejected")):
                own.append(f"{_where(path)}:{node.name}")
    assert own == []


def test_consumed_messages_are_validated_by_envelope_parse() -> None:
    """An invalid consumed event goes to the dead-letter topic naming its fields: through shared.envelope.parse,
    not a handler's own try/except around model_validate(envelope.data)."""
    own = []
    for path in SERVICES:
        for node in _nodes(path):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "model_validate" and node.args
                    and ast.unparse(node.args[0]).endswith("envelope.data")):
                own.append(f"{_where(path)}:{node.lineno}")
    assert own == []
