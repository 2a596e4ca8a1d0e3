"""Run the documents service: `python -m services.documents`."""

from services.documents.app import app, settings
from shared.service import serve

serve(app, settings)
