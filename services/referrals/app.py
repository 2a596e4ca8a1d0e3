"""The referrals service: people, their records and relationships, and referral intake."""

from pathlib import Path

from services.referrals import handlers, queries
from services.referrals.settings import ReferralsSettings
from shared.access import RelationshipReader
from shared.readers import ServiceReader
from shared.service import create_app

settings = ReferralsSettings(service_name="referrals")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    description=__doc__ or "",
)
# who may act on a person is read from allocation (relationships) and workflow (work), issue #11 §3
app.state.runtime.broker.context.set_global("access", RelationshipReader(
    ServiceReader(settings.allocation_url, settings.http_timeout_seconds),
    ServiceReader(settings.workflow_url, settings.http_timeout_seconds)))
