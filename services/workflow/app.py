"""The workflow service: workflows, steps, next actions, requests and case closure."""

from pathlib import Path

from services.workflow import handlers, queries
from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("workflow")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    description=__doc__ or "",
)
