"""The notifications service: worker and team inboxes, reminders and messages to people."""

from pathlib import Path

from shared.service import create_app
from shared.settings import load_settings

settings = load_settings("notifications")
app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    description=__doc__ or "",
)
