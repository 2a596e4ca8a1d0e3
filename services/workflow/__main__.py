"""Run the workflow service: `python -m services.workflow`."""

from services.workflow.app import app, settings
from shared.service import serve

serve(app, settings)
