"""Events the workflow service publishes on purchasing.orders (docs/contracts.md "Purchase orders")."""

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shared.bounds import BoundedJson, FreeText, HistoryDate, IdText
from shared.events.base import Event

PurchaseOrderKind = Literal[
    "brokerage", "direct_payment", "telecare", "purchase_services_children", "interim_homecare",
    "long_term_homecare",
]
RateUnit = Literal["hour", "night", "session", "week"]
# An amount or quantity as a decimal string, pence exact for money ("7752.38"), never a float; 24 digits hold
# any cost of the bounded hours and rates of a form (shared/bounds.py), 6 places any recorded fraction.
DecimalString = Annotated[str, StringConstraints(pattern=r"^-?\d{1,24}(\.\d{1,6})?$")]


class _Event(Event):
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PurchaseOrderRequested(_Event):
    """A purchase order is asked for (R-F1, R-F2): published once per next action, keyed by person id.

    Decimals are strings, pence exact (ROUND_HALF_UP): weekly_cost = hourly_rate × weekly_hours,
    weeks_per_year = 52 − respite weeks, annual_cost = weekly_cost × weeks_per_year (R-K10). A value
    the step did not record is null and the note says so. Care costed per night, session or week
    (R-F5) has null hours and hourly rate: `unit`, `unit_rate` and `units_per_week` say it, and
    weekly_cost = unit_rate × units_per_week.
    """

    TYPE: ClassVar[str] = "purchase_order.requested"
    po_request_id: IdText
    person_id: IdText
    step_id: IdText
    kind: PurchaseOrderKind
    service_description: FreeText
    provider: FreeText | None = None
    start_date: HistoryDate | None = None
    weekly_hours: DecimalString | None = None
    hourly_rate: DecimalString | None = None
    weeks_per_year: DecimalString | None = None
    weekly_cost: DecimalString | None = None
    annual_cost: DecimalString | None = None
    requested_by: IdText
    note: FreeText = ""
    # optional, added in v1 (R-F5): the unit the care is costed in, its rate and the units a week; null
    # where the order's lines are in different units
    unit: RateUnit | None = None
    unit_rate: DecimalString | None = None
    units_per_week: DecimalString | None = None
    # optional, added in v1 (R-F6): a one-off payment (a carer's one-off direct payment), pence exact
    one_off_amount: DecimalString | None = None


class PurchaseOrderAmended(_Event):
    """A requested purchase order changed: its id and only what changed (R-F7).

    `changes` maps each changed field of `purchase_order.requested` to `{"from": …, "to": …}`;
    `weekly_cost` and `annual_cost` also carry `"difference"` (to − from, pence exact, signed).
    """

    TYPE: ClassVar[str] = "purchase_order.amended"
    po_request_id: IdText
    changes: BoundedJson = Field(default_factory=dict)
    # optional, added in v1 (R-F7): the plan or review that changed the package, and from when
    step_id: IdText | None = None
    effective_date: HistoryDate | None = None


class PurchaseOrderEndRequested(_Event):
    """A purchase order is to end on `end_date` (R-F2: the interim homecare PO when the PVI one starts)."""

    TYPE: ClassVar[str] = "purchase_order.end_requested"
    po_request_id: IdText
    end_date: HistoryDate
    reason: FreeText
