"""Run the allocation service: `python -m services.allocation`."""

from services.allocation.app import app, settings
from shared.service import serve

serve(app, settings)
