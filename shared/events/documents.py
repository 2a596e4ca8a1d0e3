"""Events the documents service publishes on documents.events: references only, never bytes or names."""

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from shared.bounds import Count, IdText, NameText
from shared.events.base import Event


class _Event(Event):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")

    def envelope_data(self) -> dict[str, Any]:
        """Optional fields never set are left out: a form's event reads as it did before they existed."""
        return self.model_dump(mode="json", exclude_unset=True)


class DocumentRendered(_Event):
    """A document of the person was made; its PDF is `GET /documents/{id}.pdf`.

    kind `form`: a finished step's form was kept (R-D1), with `step_id` and `step_type`.
    kind `letter`: a letter queued for print by notifications was rendered (R-T4), with `message_id`.
    """

    TYPE: ClassVar[str] = "document.rendered"
    document_id: IdText
    person_id: IdText
    step_id: IdText | None = None
    step_type: NameText | None = None
    kind: Literal["form", "letter"] = "form"
    message_id: IdText | None = None


class DocumentAttached(_Event):
    """A file made outside the system was uploaded to a person or a step; `GET /documents/{id}` serves it (R-D2).

    No bytes and no filename (it may carry personal data): the sha256 lets a consumer check what it fetches.
    """

    TYPE: ClassVar[str] = "document.attached"
    document_id: IdText
    person_id: IdText
    step_id: IdText | None = None
    document_type: NameText
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: NameText
    size: Count = Field(ge=1)
    actor: IdText | None = None  # the worker who uploaded it (absent from older producers); audited as theirs
