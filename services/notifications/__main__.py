"""Run the notifications service: `python -m services.notifications`."""

from services.notifications.app import app, settings
from shared.service import serve

serve(app, settings)
