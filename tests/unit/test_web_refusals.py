"""Issue #19 §4 (R-W4): a form the desk refuses before sending it says what to do in the worker's words — never
pydantic's ("Field required") — for every command the desk sends, every field it names."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.web import refusals
from services.web.commands import ROUTES

COMMANDS = {type_: model for _, _, models in ROUTES.values() for type_, model in models.items()}
PYDANTIC_WORDS = ("Field required", "should", "Input", "Value error", "pattern", "valid ")
ACTOR = {"worker_id": "so", "roles": ["senior_officer"], "team_ids": ["wellbeing-service-management"]}


def refused(type_: str, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The desk's reasons, and pydantic's own errors, for one command's data."""
    with pytest.raises(ValidationError) as caught:
        COMMANDS[type_].model_validate({"actor": ACTOR, **data})
    return refusals.in_words(type_, caught.value), caught.value.errors(include_url=False)


def test_R_W4_a_return_with_an_empty_note_says_to_say_why_beside_the_note() -> None:
    reasons, _ = refused("step.return", {"step_id": "5f0e2a4e-3c1b-4f8e-9a51-0c2d9b7e6a10", "note": "   "})
    assert reasons == [{"code": "invalid", "field": "note",
                        "message": "Say why you are returning this step: the worker reads your note"}]


def test_R_W4_the_step_pages_dialogs_name_each_empty_field_in_the_forms_words() -> None:
    step = {"step_id": "5f0e2a4e-3c1b-4f8e-9a51-0c2d9b7e6a10"}
    said = {type_: {r["field"]: r["message"] for r in refused(type_, {**step, **data})[0]}
            for type_, data in (("step.cancel", {"reason": ""}), ("step.assign", {}),
                                ("step.add_next_action", {"action": ""}), ("step.send_request", {"name": ""}))}
    assert said == {
        "step.cancel": {"reason": "Say why this step is cancelled (only when there is no other option)"},
        "step.assign": {"to": "Choose the worker or team to assign this step to"},
        "step.add_next_action": {"action": "Choose the next action"},
        "step.send_request": {"name": "Choose the request to send"}}


def _wrong_everywhere(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each field missing, of the wrong kind, and far too long."""
    fields = [k for k in model.model_fields if k != "actor"]
    return [{}, {k: [1] for k in fields}, {k: "x" * 20_000 for k in fields}, {k: {"kind": "?"} for k in fields}]


@pytest.mark.parametrize("type_", sorted(COMMANDS))
def test_R_W4_no_refusal_of_a_command_the_desk_sends_is_in_pydantics_words(type_: str) -> None:
    for data in _wrong_everywhere(COMMANDS[type_]):
        try:
            COMMANDS[type_].model_validate({"actor": ACTOR, **data})
        except ValidationError:
            reasons, errors = refused(type_, data)
            said = " | ".join(r["message"] for r in reasons)
            assert not [w for w in PYDANTIC_WORDS if w in said], (type_, said)
            assert {r["field"].split(".")[0] for r in reasons} == {str(e["loc"][0]) for e in errors}, type_
