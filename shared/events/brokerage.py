"""Events the brokerage system publishes on brokerage.events; the workflow service consumes them (R-F2)."""

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.bounds import SaneDate

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class _Event(BaseModel):
    # Unknown fields are ignored: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class ProviderOffered(_Event):
    """A provider offered to deliver the care of a brokerage purchase order: the person leaves lack of provision."""

    TYPE: ClassVar[str] = "provider.offered"
    po_request_id: Text
    provider: Text
    start_date: SaneDate | None = None


class ProviderConfirmed(_Event):
    """Brokerage confirmed a provider and its start date for a brokerage purchase order (R-F2).

    The workflow then asks for the long-term (PVI) purchase order with this provider and ends
    the person's interim homecare purchase order on the start date.
    """

    TYPE: ClassVar[str] = "provider.confirmed"
    po_request_id: Text
    provider: Text
    start_date: SaneDate
