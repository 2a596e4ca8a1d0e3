"""Settings of the notifications service, each read from the environment variable of the same name."""

from pathlib import Path

import yaml
from pydantic import Field, SecretStr, model_validator

from services.notifications.domain import PROVIDER_TEMPLATES, TeamDirectory
from shared import service_areas
from shared.settings import Settings
from shared.teams import teams


class NotificationsSettings(Settings):
    """The shared settings plus when requests fall due, and how email and SMS leave."""

    # R-S2: an open request without its own due date is overdue this many days after it was sent.
    request_due_days: int = 5
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "Tessera <no-reply@tessera.invalid>"
    smtp_starttls: bool = False
    # the CA that signed the SMTP server's certificate; unset: the system's CAs (the certificate is always verified)
    smtp_cafile: str | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    # GOV.UK Notify (issue #22 §8): with a key, email, SMS and letters all go through Notify; without one, email
    # goes over SMTP, letters to the print queue, and no SMS can be sent (an SMS falls back, R-T4).
    notify_api_key: SecretStr | None = None
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    # the Notify template id of each message template and channel, as JSON: {"pwt_waiting_list:email": "<id>", …}
    notify_templates: dict[str, str] = {}
    notify_timeout_seconds: float = 10.0
    # the bearer token Notify's delivery-status callback carries (set in Notify with POST /notify/receipts as its
    # URL); unset: receipts are refused and a sent message stays `sent`
    notify_callback_token: SecretStr | None = Field(default=None, min_length=10)
    message_send_attempts: int = 3
    message_retry_backoff_seconds: float = 0.5
    # Team names and numbers people are given (R-T4); the shipped table by default.
    teams_file: Path = Path(__file__).parent / "teams.yaml"

    @model_validator(mode="after")
    def _every_notify_template(self) -> "NotificationsSettings":
        """With Notify on, every message template and channel needs its Notify template id: name each missing."""
        missing = [key for key in PROVIDER_TEMPLATES if key not in self.notify_templates]
        if self.notify_api_key is not None and missing:
            raise ValueError(f"NOTIFY_TEMPLATES lacks a template id for: {', '.join(missing)}")
        return self

    def team_directory(self) -> TeamDirectory:
        """Each team's name (shared/teams.yaml) and number (TEAMS_FILE), and the Strategic Service Managers' team
        its service area escalates to (shared/service_areas.yaml, R-T6)."""
        numbers = yaml.safe_load(self.teams_file.read_text()) or {}
        return TeamDirectory.from_mapping({**numbers, "service_areas": service_areas.raw()["service_areas"]},
                                          teams())
