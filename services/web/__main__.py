"""Run the web front end: `python -m services.web`."""

from services.web.app import app, settings
from shared.service import serve

serve(app, settings)
