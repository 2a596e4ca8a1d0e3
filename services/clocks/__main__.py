"""Run the clocks service: `python -m services.clocks`."""

from services.clocks.app import app, settings
from shared.service import serve

serve(app, settings)
