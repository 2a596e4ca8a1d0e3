"""Events the brokerage system publishes on brokerage.events; the workflow service consumes them (R-F2)."""

from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import AfterValidator, ConfigDict, StringConstraints

from shared.bounds import SaneDate
from shared.events.base import Event

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


def _more_than_nothing(rate: str) -> str:
    if not 0 < Decimal(rate) <= 10_000:
        raise ValueError("a rate must be more than 0 and at most 10000 (R-F4)")
    return rate


# R-F4: a rate as a decimal string ("17.25"), more than nothing, at most £10,000 a unit, to at most 4 places
Rate = Annotated[str, StringConstraints(pattern=r"^\d{1,5}(\.\d{1,4})?$"), AfterValidator(_more_than_nothing)]


class _Event(Event):
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
