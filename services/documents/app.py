"""The documents service: documents of finished steps, PDFs and uploaded files."""

from pathlib import Path

from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("documents")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    description=__doc__ or "",
)
