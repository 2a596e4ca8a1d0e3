"""Pure rules of documents: what a finished step keeps, how a form reads on paper, letters, upload checks."""

from __future__ import annotations

import hashlib
import io
import re
import string
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import filetype
from PIL import Image, UnidentifiedImageError

from shared.actor import who_did
from shared.calendar import LONDON
from shared.commands.base import RuleBroken, reason
from shared.teams import team_name

DocumentType = Literal["photo", "consent_form", "letter", "plan", "report", "other"]
DOCUMENT_TYPES: tuple[str, ...] = ("photo", "consent_form", "letter", "plan", "report", "other")
FINISH_EVENTS = ("step.finished", "step.authorised_and_finished")
TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}
NOT_RECORDED = "—"
BLANK = "____________________"


# --- documents of finished steps (R-D1) -------------------------------------------------------


class StepMismatch(ValueError):
    """The workflow's read endpoint answered for another step or person than the event names."""


@dataclass(frozen=True)
class StepDocument:
    """A finished step's form, kept as the person's document: the step as it read on finishing."""

    document_id: str
    person_id: str
    step_id: str
    step_type: str
    finished_at: datetime
    finished_by: str
    snapshot: Mapping[str, Any]


def keep_finished_step(*, document_id: str, step_id: str, person_id: str, step_type: str, actor: str,
                       finished_at: datetime, step: Mapping[str, Any]) -> StepDocument:
    """R-D1: the document of a finished step, from `step.finished` and the step as the workflow reads it."""
    if str(step.get("step_id")) != step_id or str(step.get("person_id")) != person_id:
        raise StepMismatch("the step read does not match the step.finished event")
    by, at = finished_by(step)
    return StepDocument(document_id=document_id, person_id=person_id, step_id=step_id,
                        step_type=step_type, finished_at=at or finished_at, finished_by=by or actor,
                        snapshot=dict(step))


def finished_by(step: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """Who finished the step and when, from its history (the last finishing entry)."""
    for entry in reversed(step.get("history") or []):
        if isinstance(entry, Mapping) and entry.get("what") in FINISH_EVENTS:
            return str(entry.get("actor")), _datetime(entry.get("time"))
    return None, None


# --- a form as it reads on paper --------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One field: its label and its value as text."""

    label: str
    value: str


@dataclass(frozen=True)
class Table:
    """A repeating table (R-W8): column labels and one row of texts per entry."""

    label: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SectionView:
    """A numbered section and its fields in order."""

    number: int | None
    title: str
    items: tuple[Line | Table, ...]


@dataclass(frozen=True)
class FormView:
    """What a form's PDF shows: the step, whose it is, its sections, next actions and whether it is final."""

    step_id: str
    step_type: str
    person_id: str
    person_name: str | None
    state: str
    draft: bool
    finished_at: datetime | None
    finished_by: str | None
    sections: tuple[SectionView, ...]
    forms: tuple[tuple[str, tuple[SectionView, ...]], ...] = ()
    next_actions: tuple[Line, ...] = ()
    printed_at: datetime | None = None


def form_view(step: Mapping[str, Any], *, person: Mapping[str, Any] | None, printed_at: datetime,
              finished_at: datetime | None = None, finished_by_actor: str | None = None) -> FormView:
    """R-D1: the step read (kept snapshot or live) as it prints; anything not finished is a DRAFT."""
    values = step.get("values") or {}
    names = worker_names(step)
    state = str(step.get("state") or "unknown")
    draft = state != "finished"
    by, at = finished_by(step)
    forms = tuple(
        (str(form.get("name")), tuple(_section(s, values) for s in form.get("sections") or []))
        for form in step.get("forms") or [] if isinstance(form, Mapping) and form.get("kind") == "form"
    )
    return FormView(
        step_id=str(step.get("step_id")), step_type=str(step.get("step_type")),
        person_id=str(step.get("person_id")), person_name=person_name(person), state=state, draft=draft,
        finished_at=None if draft else (finished_at or at),
        finished_by=None if draft else who_did(finished_by_actor or by, names) or None,
        sections=tuple(_section(s, values) for s in (step.get("form") or {}).get("sections") or []),
        forms=forms,
        next_actions=tuple(_next_action(a, names) for a in step.get("added_next_actions") or []
                           if isinstance(a, Mapping)),
        printed_at=printed_at,
    )


def _section(section: Mapping[str, Any], values: Mapping[str, Any]) -> SectionView:
    items: list[Line | Table] = []
    for f in section.get("fields") or []:
        value = values.get(f.get("key"))
        if f.get("type") == "table":
            columns = [c for c in f.get("columns") or [] if isinstance(c, Mapping)]
            rows = value if isinstance(value, list) else []
            items.append(Table(
                label=str(f.get("label")),
                columns=tuple(str(c.get("label")) for c in columns),
                rows=tuple(tuple(format_value(c, row.get(c.get("key"))) for c in columns)
                           for row in rows if isinstance(row, Mapping)),
            ))
        else:
            items.append(Line(str(f.get("label")), format_value(f, value)))
    number = section.get("number")
    return SectionView(number=number if isinstance(number, int) else None, title=str(section.get("title")),
                       items=tuple(items))


def worker_names(step: Mapping[str, Any]) -> Mapping[str, str]:
    """Issue #22 §9: the names of the workers the step names, as workflow read them from the desk's directory."""
    names = step.get("worker_names")
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, Mapping) else {}


def assignee_words(kind: Any, ident: Any, names: Mapping[str, str]) -> str:
    """A team by the name people know it by (shared/teams.yaml), a worker by their name (their id when unnamed)."""
    return team_name(str(ident)) if kind == "team" else who_did(str(ident), names)


def _next_action(action: Mapping[str, Any], names: Mapping[str, str]) -> Line:
    parts = []
    if action.get("assignee_id"):
        parts.append(f"to {assignee_words(action.get('assignee_kind'), action['assignee_id'], names)}")
    if action.get("scheduled_date"):
        parts.append(f"scheduled {format_date(str(action['scheduled_date']))}")
    if action.get("reason"):
        parts.append(f"reason: {action['reason']}")
    if action.get("note"):
        parts.append(f"note: {action['note']}")
    if action.get("priority") and action.get("priority") != "normal":
        parts.append(f"priority {action['priority']}")
    return Line(str(action.get("action")), "; ".join(parts) or NOT_RECORDED)


def format_value(f: Mapping[str, Any], value: Any) -> str:
    """A value as a worker reads it: Yes/No, dates in words, lists joined; nothing recorded is a dash."""
    if value is None or value == "" or value == []:
        return NOT_RECORDED
    kind = f.get("type")
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Mapping):
        return ", ".join(str(v) for v in value.values() if v not in (None, "")) or NOT_RECORDED
    if isinstance(value, list):
        return ", ".join(format_value({}, v) for v in value) or NOT_RECORDED
    if kind == "date":
        return format_date(str(value))
    if kind == "datetime":
        return format_datetime(str(value))
    return str(value)


def format_date(text: str) -> str:
    try:
        return _long_date(date.fromisoformat(text[:10]))
    except ValueError:
        return text


def format_datetime(text: str) -> str:
    """A date and time in words, UK time (one with an offset is shown as it was in Europe/London; one without
    is London wall time already)."""
    moment = _datetime(text)
    if moment is None:
        return format_date(text)
    return format_moment(moment, with_day=True)


def format_moment(moment: datetime, *, with_day: bool = False) -> str:
    """"3 June 2024, 10:30" (or "Monday 3 June 2024 at 10:30"), UK time."""
    local = moment.astimezone(LONDON) if moment.tzinfo else moment
    if with_day:
        return f"{local.strftime('%A')} {_long_date(local.date())} at {local.strftime('%H:%M')}"
    return f"{_long_date(local.date())}, {local.strftime('%H:%M')}"


def _long_date(day: date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def person_name(person: Mapping[str, Any] | None) -> str | None:
    if not person:
        return None
    name = " ".join(str(person[k]) for k in ("first_name", "last_name") if person.get(k))
    return name or None


def address_lines(person: Mapping[str, Any] | None) -> tuple[str, ...]:
    address = (person or {}).get("address")
    if not isinstance(address, Mapping):
        return ()
    return tuple(str(address[k]) for k in ("line1", "line2", "town", "postcode") if address.get(k))


# --- templated letters (R-W9, seed 003) --------------------------------------------------------


class LetterUnavailable(LookupError):
    """The step's pack does not offer this letter, or no template is shipped for it."""


@dataclass(frozen=True)
class LetterTemplate:
    """A letter's wording with $placeholders: the person, today, and the letter's own field keys."""

    name: str
    subject: str
    addressee_field: str | None
    paragraphs: tuple[str, ...]
    closing: str
    sender: str
    # the notifications message template this letter prints (R-T4), e.g. pwt_waiting_list
    for_message: str | None = None

    @classmethod
    def of(cls, name: str, raw: Mapping[str, Any]) -> LetterTemplate:
        return cls(name=name, subject=str(raw["subject"]), addressee_field=raw.get("addressee_field"),
                   paragraphs=tuple(str(p) for p in raw["paragraphs"]), closing=str(raw["closing"]),
                   sender=str(raw["sender"]), for_message=raw.get("for_message"))


@dataclass(frozen=True)
class LetterView:
    """A letter as it prints: sender, date, addressee and address, subject, paragraphs, closing."""

    name: str
    sender: str
    dated: str
    addressee: str
    address: tuple[str, ...]
    subject: str
    salutation: str
    paragraphs: tuple[str, ...]
    closing: str
    signed: str
    step_id: str
    person_id: str = ""
    missing: tuple[str, ...] = field(default=())
    reference: str = ""  # the footer's "what this is": a step, or a message to the person


def letter_view(step: Mapping[str, Any], letter: str, person: Mapping[str, Any] | None,
                templates: Mapping[str, LetterTemplate], today: date) -> LetterView:
    """R-W9: a letter the step's pack lists as an optional form of kind letter, filled from the
    person record and the step's values; a value not yet recorded is a blank line to fill by hand."""
    offered = {f.get("name") for f in step.get("optional_forms") or []
               if isinstance(f, Mapping) and f.get("kind") == "letter"}
    if letter not in offered:
        raise LetterUnavailable(f"the step's pack offers no letter named {letter!r}")
    template = templates.get(letter)
    if template is None:
        raise LetterUnavailable(f"no template is shipped for the letter {letter!r}")
    values = step.get("values") or {}
    fields = {f.get("key"): f for form in step.get("forms") or [] if isinstance(form, Mapping)
              for s in form.get("sections") or [] for f in s.get("fields") or []}
    name = person_name(person) or BLANK
    mapping = _person_mapping(person, name, today)
    missing = []
    for key in _placeholders(template):
        if key in mapping:
            continue
        value = values.get(key)
        if value in (None, "", []):
            missing.append(key)
            mapping[key] = BLANK
        else:
            mapping[key] = format_value(fields.get(key, {}), value)
    addressee = mapping.get(template.addressee_field or "", "")
    if not addressee or addressee == BLANK:
        addressee = name
    step_id = str(step.get("step_id"))
    return LetterView(
        name=letter, sender=template.sender, dated=_long_date(today), addressee=addressee,
        address=address_lines(person), subject=_fill(template.subject, mapping),
        salutation=f"Dear {addressee},", paragraphs=_paragraphs(template, mapping), closing=template.closing,
        signed=_signer(step), step_id=step_id, person_id=str(step.get("person_id")),
        missing=tuple(missing), reference=f"Step {step_id}",
    )


def template_for_message(templates: Mapping[str, LetterTemplate], message_template: str) -> LetterTemplate:
    """The letter that prints a notifications message template (R-T4), or LetterUnavailable."""
    found = next((t for t in templates.values() if t.for_message == message_template), None)
    if found is None:
        raise LetterUnavailable(f"no letter template prints the message template {message_template!r}")
    return found


def message_letter_view(template: LetterTemplate, person: Mapping[str, Any], params: Mapping[str, str | None],
                        today: date, *, person_id: str, message_id: str) -> LetterView:
    """R-T4: a letter queued for print, addressed to the person from their record, with the message's
    values (team name and number); a value the message lacks prints as a blank line to fill by hand."""
    name = person_name(person)
    mapping = _person_mapping(person, name or BLANK, today)
    missing = []
    for key in _placeholders(template, also=(template.sender,)):
        if key not in mapping:
            mapping[key] = params.get(key) or BLANK
            if mapping[key] == BLANK:
                missing.append(key)
    addressee = name or "Sir or Madam"
    return LetterView(
        name=template.name, sender=_fill(template.sender, mapping), dated=_long_date(today), addressee=addressee,
        address=address_lines(person), subject=_fill(template.subject, mapping),
        salutation=f"Dear {addressee},", paragraphs=_paragraphs(template, mapping), closing=template.closing,
        signed="", step_id="", person_id=person_id, missing=tuple(missing), reference=f"Message {message_id}",
    )


def _person_mapping(person: Mapping[str, Any] | None, name: str, today: date) -> dict[str, str]:
    return {
        "person_name": name,
        "person_first_name": str((person or {}).get("first_name") or name),
        "date_of_birth": format_date(str((person or {}).get("date_of_birth") or "")) or BLANK,
        "today": _long_date(today),
    }


def _fill(text: str, mapping: Mapping[str, str]) -> str:
    return string.Template(text).safe_substitute(mapping)


def _paragraphs(template: LetterTemplate, mapping: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(p for p in (_fill(t, mapping).strip() for t in template.paragraphs) if p and p != BLANK)


def _placeholders(template: LetterTemplate, also: Sequence[str] = ()) -> list[str]:
    keys: list[str] = []
    for text in (*also, template.subject, *template.paragraphs):
        for match in string.Template.pattern.finditer(text):
            key = match.group("named") or match.group("braced")
            if key and key not in keys:
                keys.append(key)
    if template.addressee_field and template.addressee_field not in keys:
        keys.append(template.addressee_field)
    return keys


def _signer(step: Mapping[str, Any]) -> str:
    assignee = step.get("assignee") or {}
    if not isinstance(assignee, Mapping) or not assignee.get("id"):
        return ""
    return assignee_words(assignee.get("kind"), assignee["id"], worker_names(step))


# --- uploads (R-D2) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedFile:
    """An upload that passed: its type from its bytes, size and digest."""

    content_type: str
    size: int
    sha256: str


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves say (magic numbers), whatever the name or header claims."""
    kind = filetype.guess(data[:8192])
    return kind.mime if kind is not None else None


def _refused(code: str, message: str) -> RuleBroken:
    return RuleBroken([reason(code, message, "file")])


def check_upload(data: bytes, *, allowed: Sequence[str], max_bytes: int, max_pixels: int) -> CheckedFile:
    """R-D2: size and type limits, the type sniffed from the bytes and the file checked to be what it says."""
    if not data:
        raise _refused("empty", "the file is empty")
    if len(data) > max_bytes:
        raise _refused("too_large", f"the file is larger than the {max_bytes}-byte limit")
    kinds = ", ".join(TYPE_NAMES.get(t, t) for t in allowed)
    found = sniff(data)
    if found is None or found not in allowed:
        what = f"{found} content" if found else "content of no recognised type"
        raise _refused("unsupported", f"the file's bytes are {what}, not one of the allowed types ({kinds});"
                                 " the file name and declared content type are not trusted")
    if found == "application/pdf":
        _check_pdf(data)
    else:
        _check_image(data, found, max_pixels)
    return CheckedFile(content_type=found, size=len(data), sha256=hashlib.sha256(data).hexdigest())


_PDF_ACTIVE = (b"/JavaScript", b"/JS", b"/Launch", b"/EmbeddedFile", b"/RichMedia", b"/XFA")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n.*?endstream", re.DOTALL)
# an object stream: its dictionary (up to the stream, never past the object's end) and its bytes
_PDF_OBJECT_STREAM = re.compile(
    rb"obj\s*<<((?:(?!endobj).)*?/Type\s*/ObjStm(?![A-Za-z])(?:(?!endobj).)*?)>>\s*stream\r?\n(.*?)endstream",
    re.DOTALL)
_PDF_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/\w+)")
# an object stream opened beyond this is refused: a small upload must not inflate into gigabytes
_PDF_MAX_INFLATED = 20 * 1024 * 1024


def _check_pdf(data: bytes) -> None:
    if not data.startswith(b"%PDF-"):
        raise _refused("unsupported", "the file does not start with a PDF header")
    if b"%%EOF" not in data[-2048:]:
        raise _refused("unsupported", "the PDF is truncated or malformed: no end-of-file marker")
    # Best effort, not a parser: look at the dictionaries (stream bytes left out, where random bytes could
    # spell /JS), and at the objects compressed into object streams (/ObjStm, PDF 1.5), which hold
    # dictionaries too.
    _refuse_active(_PDF_STREAM.sub(b"stream endstream", data))
    for match in _PDF_OBJECT_STREAM.finditer(data):
        _refuse_active(_inflated(match.group(1), match.group(2)))


def _refuse_active(dictionaries: bytes) -> None:
    """Refused when the bytes name active content, with #xx name escapes (/J#61vaScript) undone."""
    plain = _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), dictionaries)
    for marker in _PDF_ACTIVE:
        if re.search(re.escape(marker) + rb"(?![A-Za-z])", plain):
            raise _refused("unsupported",
                           f"the PDF carries active content ({marker.decode()[1:]}), which is not accepted")


def _inflated(dictionary: bytes, stream: bytes) -> bytes:
    """An object stream's objects; one that cannot be opened is refused (it could hide anything)."""
    found = _PDF_FILTER.search(dictionary)
    filters = re.findall(rb"/(\w+)", found.group(1)) if found else []
    if not filters:
        return stream
    if filters != [b"FlateDecode"] or b"/DecodeParms" in dictionary:
        raise _refused("unsupported", "the PDF has an object stream in an encoding this check cannot open,"
                                 " which is not accepted")
    inflater = zlib.decompressobj()
    try:
        objects = inflater.decompress(stream, _PDF_MAX_INFLATED)
    except zlib.error:
        raise _refused("unsupported", "the PDF has an object stream that cannot be opened (corrupt)") from None
    if inflater.unconsumed_tail:
        raise _refused("too_large", "the PDF has an object stream that opens to more than"
                                 f" {_PDF_MAX_INFLATED} bytes, which is not accepted")
    return objects


def _check_image(data: bytes, content_type: str, max_pixels: int) -> None:
    unreadable = f"the file starts like {TYPE_NAMES[content_type]} but is not a readable image"
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            fmt = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _refused("unsupported", unreadable) from None
    if {"PNG": "image/png", "JPEG": "image/jpeg"}.get(fmt or "") != content_type:
        raise _refused("unsupported", unreadable)
    if width * height > max_pixels:
        raise _refused("too_large", f"the image has {width}×{height} pixels, more than the {max_pixels}-pixel limit")


def safe_filename(name: str | None, content_type: str) -> str:
    """The base name only, without control or path characters, at most 200 characters; kept in the DB only."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base)
                   if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*').strip(" .")
    if not base:
        base = "upload." + {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(content_type, "bin")
    return base[:200]
