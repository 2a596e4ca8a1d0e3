"""Run the scheduler service: `python -m services.scheduler`."""

from services.scheduler.app import app, settings
from shared.service import serve

serve(app, settings)
