"""The clocks service: statutory timescales as data, counted in working days, warned and breached once."""

from pathlib import Path

from services.clocks import definitions, handlers, insights, queries
from services.clocks.calendar import WorkingDays, bank_holidays
from services.clocks.settings import ClocksSettings
from shared.service import Runtime, create_app

settings = ClocksSettings(service_name="clocks")
# a broken clocks file stops start-up naming the file and every field at fault (R-CL1)
timescales = handlers.Timescales(definitions.load(settings.clocks_file), WorkingDays(bank_holidays()))


async def share_timescales(runtime: Runtime) -> None:
    runtime.broker.context.set_global("timescales", timescales)


app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router, insights.router],
    queries=queries.router,
    on_pool_ready=[share_timescales],
    description=__doc__ or "",
)
app.state.working_days = timescales.days
