"""The workflow service: workflows, steps, next actions, requests and case closure."""

from pathlib import Path

from services.workflow import brokerage, handlers, queries
from services.workflow.pack import load_packs
from services.workflow.settings import WorkflowSettings
from shared.access import RelationshipReader
from shared.readers import PersonReader, ServiceReader
from shared.service import create_app

settings = WorkflowSettings(service_name="workflow")
# a broken pack stops start-up here, with a PackError naming the file, the step and the field
packs = load_packs(settings.workflow_definitions_dir)
queries.router.include_router(brokerage.queries)  # R-F2: the lack-of-provision list, a read like the others
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router, brokerage.router],
    queries=queries.router,
    description=__doc__ or "",
)
app.state.packs = packs
app.state.runtime.broker.context.set_global("packs", packs)
people = PersonReader(settings.referrals_url, settings.http_timeout_seconds)
app.state.runtime.broker.context.set_global("people", people)
# who is involved with a person (their relationships): activity logs such as WB Case Monitoring (R-W13), and
# the grounds of a worker recording a death (issue #21 §6)
allocation = ServiceReader(settings.allocation_url, settings.http_timeout_seconds)
app.state.runtime.broker.context.set_global("allocation", allocation)
app.state.allocation = allocation  # R-K1: GET /steps/{id}/blockers names other teams' involvement
app.state.runtime.broker.context.set_global("access", RelationshipReader(allocation, None))
