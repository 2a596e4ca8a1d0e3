"""What every event shares: its type, the version of its schema, and the data it carries."""

from typing import Any, ClassVar

from pydantic import BaseModel


class Event(BaseModel):
    """Something a service says happened. Every envelope names `<TYPE>/<VERSION>` as its `dataschema`;
    a new optional field is additive (same VERSION), anything else is a new VERSION (docs/contracts.md)."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @classmethod
    def dataschema(cls) -> str:
        return f"{cls.TYPE}/{cls.VERSION}"

    def envelope_data(self) -> dict[str, Any]:
        """The envelope's `data`."""
        return self.model_dump(mode="json")
