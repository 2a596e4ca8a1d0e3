"""The referrals service: people, their records and relationships, and referral intake."""

from pathlib import Path

from services.referrals import handlers, queries
from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("referrals")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    description=__doc__ or "",
)
