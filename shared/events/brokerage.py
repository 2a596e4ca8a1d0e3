"""Events the brokerage system publishes on brokerage.events; the workflow service consumes them (R-F2)."""

from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.bounds import SaneDate

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
# R-F4: a rate is more than nothing, at most £10,000 a unit, to at most 4 places
Rate = Annotated[Decimal, Field(gt=0, le=10_000, decimal_places=4, allow_inf_nan=False)]


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

    The workflow then asks for the long-term (PVI) purchase order with this provider at its `rate`
    (per unit of the order: per hour for home care; R-F6) and ends the brokerage order and the
    person's interim homecare purchase order the day before the start date.
    """

    TYPE: ClassVar[str] = "provider.confirmed"
    po_request_id: Text
    provider: Text
    start_date: SaneDate
    rate: Rate | None = None  # optional, added in v1 (R-F6): the provider's rate, as a decimal string
