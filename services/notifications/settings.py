"""Settings of the notifications service, each read from the environment variable of the same name."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from shared.settings import Settings


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
    # "log" records the send and logs its id; a real provider plugs in behind senders.SmsProvider.
    sms_provider: Literal["log"] = "log"
    message_send_attempts: int = 3
    message_retry_backoff_seconds: float = 0.5
    # Team names and numbers people are given (R-T4); the shipped table by default.
    teams_file: Path = Path(__file__).parent / "teams.yaml"
