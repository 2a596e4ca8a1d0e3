"""Events the documents service publishes on documents.events: references only, never bytes or names."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class DocumentRendered(_Event):
    """A finished step's form was kept as a document of the person; its PDF is `GET /documents/{id}.pdf` (R-D1)."""

    TYPE: ClassVar[str] = "document.rendered"
    document_id: str
    person_id: str
    step_id: str
    step_type: str


class DocumentAttached(_Event):
    """A file made outside the system was uploaded to a person or a step; `GET /documents/{id}` serves it (R-D2).

    No bytes and no filename (it may carry personal data): the sha256 lets a consumer check what it fetches.
    """

    TYPE: ClassVar[str] = "document.attached"
    document_id: str
    person_id: str
    step_id: str | None = None
    document_type: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str
    size: int = Field(ge=1)
