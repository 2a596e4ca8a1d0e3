"""Person details (R-P1): the record's fields edited in one form, and recording a death (R-K8) on the record.

The desk sends only the fields the worker changed, with the version the page showed: a change made by
someone else in between is refused as a conflict rather than overwritten.
"""

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from services.web.auth import User
from services.web.pages import (
    NoAccess,
    access_reason,
    back,
    checked_form,
    checked_uuid,
    current_user,
    form_value,
    inputs_at_fault,
    readers,
    render,
    report,
    send,
    set_flash,
    why_allowed,
)

router = APIRouter()

TEXT_FIELDS = ("first_name", "last_name", "date_of_birth", "gender", "nhs_number", "phone", "email",
               "preferred_contact", "employment_status")
LIST_FIELDS = ("communication_needs", "health_conditions", "legal_status", "service_user_groups", "warnings")
ADDRESS_LINES = ("line1", "line2", "town", "postcode")
CLASSES = ("service user", "carer", "next of kin", "representative", "appointee", "deputy")
PREFERRED_CONTACT = {"": "Not recorded", "phone": "Telephone call", "sms": "Text message", "email": "Email",
                     "letter": "Letter"}
# issue #19 §4: each change a refusal names (person.update's `changes.<field>`) and the input that makes it
CHANGE_INPUTS = {f"changes.{name}": name for name in (*TEXT_FIELDS, *LIST_FIELDS, "classes", "ordinarily_resident",
                                                      "date_of_death")}
CHANGE_INPUTS |= {f"changes.address.{line}": f"address.{line}" for line in ADDRESS_LINES}
CHANGE_INPUTS["changes.address"] = "address.line1"
EMPLOYMENT = ("Employed full time", "Employed part time", "Self-employed", "Unemployed and seeking work",
              "Not seeking work", "Retired", "In education or training", "Volunteering", "Not known")


async def _opened(request: Request, user: User, person_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """The person's record, after the same access check as opening the person page."""
    person_id = checked_uuid(person_id)
    why = await why_allowed(request, user, person_id)
    if why is None:
        raise NoAccess(person_id)
    record = await readers(request).referrals.person(person_id)
    if record is None:
        raise HTTPException(404, "no such person")
    return person_id, access_reason(why), record


@router.get("/people/{person_id}/details")
async def details(request: Request, person_id: str) -> HTMLResponse:
    user = await current_user(request)
    person_id, _, record = await _opened(request, user, person_id)
    return await render(request, "person_details.html", user, person=record, title="Person details",
                        **inputs_at_fault(user.flash, CHANGE_INPUTS),
                        classes=CLASSES, preferred_contact=PREFERRED_CONTACT, employment=EMPLOYMENT,
                        today=date.today().isoformat(),
                        lines={name: "\n".join(record.get(name) or []) for name in LIST_FIELDS})


@router.post("/people/{person_id}/details")
async def save_details(request: Request, person_id: str) -> Response:
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id, reason, record = await _opened(request, user, person_id)
    changes = changed_fields(record, form)
    if not changes:
        await set_flash(request, {"kind": "ok", "message": "Nothing was changed.", "scope": "details"})
        return back(f"/people/{person_id}/details")
    outcome = await send(request, user, "person.update", key=person_id, person_id=person_id, changes=changes,
                         expected_version=_version(form), access_reason=reason)
    await report(request, outcome, "Person details saved.", scope="details")
    return back(f"/people/{person_id}/details")


@router.post("/people/{person_id}/death")
async def record_death(request: Request, person_id: str) -> Response:
    """The date of death on the record: workflow closes future work and lists the open steps (R-K8)."""
    user = await current_user(request)
    form = await checked_form(request, user)
    person_id, reason, _ = await _opened(request, user, person_id)
    if form_value(form, "confirm") != "yes" or not form_value(form, "date_of_death"):
        raise HTTPException(400, "give the date of death and confirm it")
    outcome = await send(request, user, "person.update", key=person_id, person_id=person_id,
                         changes={"date_of_death": form_value(form, "date_of_death")},
                         expected_version=_version(form), access_reason=reason)
    await report(request, outcome, "The death is recorded. Open work of this person is listed in the tasks of"
                                   " the worker who recorded it.", scope="details")
    return back(f"/people/{person_id}/details")


def changed_fields(record: dict[str, Any], form: FormData) -> dict[str, Any]:
    """Only what the worker changed against the record as it is now; a cleared field becomes None."""
    wanted: dict[str, Any] = {name: form_value(form, name) for name in TEXT_FIELDS}
    wanted |= {name: _lines(form, name) for name in LIST_FIELDS}
    wanted["classes"] = [c for c in CLASSES if c in form.getlist("classes")]
    wanted["address"] = _address(form)
    resident = form_value(form, "ordinarily_resident")
    wanted["ordinarily_resident"] = None if resident is None else resident == "yes"
    return {name: value for name, value in wanted.items() if value != _shown(record, name)}


def _shown(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if name in LIST_FIELDS or name == "classes":
        return list(value or [])
    if name == "address":
        return {line: (value or {}).get(line) for line in ADDRESS_LINES} if value else None
    return value or None if isinstance(value, str) or value is None else value


def _address(form: FormData) -> dict[str, str | None] | None:
    lines = {line: form_value(form, f"address.{line}") for line in ADDRESS_LINES}
    return lines if any(lines.values()) else None


def _lines(form: FormData, name: str) -> list[str]:
    return [line.strip() for line in str(form.get(name, "")).splitlines() if line.strip()]


def _version(form: FormData) -> int | None:
    version = form_value(form, "version")
    return int(version) if version and version.isdigit() else None
