"""Issue #18 §7 (docs/profile.md): every consumer handler's parameters resolve on the event loop. fast_depends runs
a synchronous resolver in a worker thread; faststream's own Context is synchronous, a thread hop per parameter."""

import importlib
import inspect
from typing import Annotated, get_args, get_origin, get_type_hints

import pytest
from fast_depends.library import CustomField

MODULES = ["services.allocation.handlers", "services.clocks.handlers", "services.documents.handlers",
           "services.notifications.handlers", "services.referrals.handlers", "services.scheduler.handlers",
           "services.workflow.handlers", "services.workflow.brokerage"]


def resolvers(module_name: str) -> list[tuple[str, CustomField]]:
    """(handler.parameter, its resolver) for every parameter of the module's functions filled from the context."""
    module = importlib.import_module(module_name)
    found = []
    for name, member in vars(module).items():
        function = getattr(member, "_original_call", member)  # a @subscriber handler: faststream's wrapper
        if not inspect.iscoroutinefunction(function) or function.__module__ != module_name:
            continue
        hints = get_type_hints(function, include_extras=True)
        for parameter in inspect.signature(function).parameters.values():
            fields = [parameter.default] if isinstance(parameter.default, CustomField) else []
            hint = hints.get(parameter.name)
            if get_origin(hint) is Annotated:
                fields += [m for m in get_args(hint)[1:] if isinstance(m, CustomField)]
            found += [(f"{name}.{parameter.name}", field) for field in fields]
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_every_handler_parameter_from_the_context_resolves_without_a_thread(module_name):
    found = resolvers(module_name)
    assert found, "no handler takes anything from the context: the check sees nothing"
    in_a_thread = [where for where, field in found if not inspect.iscoroutinefunction(field.use)]
    assert in_a_thread == [], "use shared.broker's Context and KafkaMessage"
