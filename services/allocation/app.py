"""The allocation service: worker and team relationships, allocations, Planned Work Trays and RAG."""

from pathlib import Path

from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("allocation")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    description=__doc__ or "",
)
