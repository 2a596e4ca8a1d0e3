"""The allocation service: worker and team relationships, allocations, Planned Work Trays and RAG."""

from pathlib import Path

from services.allocation import handlers, queries
from services.allocation.clients import WorkReader
from services.allocation.localities import load as load_localities
from services.allocation.settings import AllocationSettings
from shared.readers import PersonReader
from shared.service import create_app

settings = AllocationSettings(service_name="allocation")
readers = handlers.Readers(
    people=PersonReader(settings.referrals_url, settings.http_timeout_seconds),
    work=WorkReader(settings.workflow_url, settings.http_timeout_seconds),
    team_contact_numbers=settings.team_contact_numbers,
    localities=load_localities(settings.localities_file),
)
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    description=__doc__ or "",
)
app.state.readers = readers
app.state.runtime.broker.context.set_global("readers", readers)
