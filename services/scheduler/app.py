"""The scheduler service: durable timers."""

from pathlib import Path

from services.scheduler import handlers
from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("scheduler")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    description=__doc__ or "",
)
