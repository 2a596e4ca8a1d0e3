"""The notifications service: worker and team inboxes, overdue reminders and messages to people."""

from pathlib import Path

from services.notifications import handlers, queries, receipts
from services.notifications.senders import EmailSender, NotifySender
from services.notifications.settings import NotificationsSettings
from shared.readers import PersonReader
from shared.service import create_app

settings = NotificationsSettings(service_name="notifications")
outbound = handlers.Outbound(
    people=PersonReader(settings.referrals_url, settings.http_timeout_seconds),
    email=EmailSender(
        settings.smtp_host, settings.smtp_port, settings.smtp_from, timeout=settings.smtp_timeout_seconds,
        starttls=settings.smtp_starttls, username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        cafile=settings.smtp_cafile),
    notify=NotifySender(settings.notify_api_key.get_secret_value(), settings.notify_base_url,
                        settings.notify_templates, timeout=settings.notify_timeout_seconds)
    if settings.notify_api_key else None,
    teams=settings.team_directory(),
    request_due_days=settings.request_due_days,
    send_attempts=settings.message_send_attempts,
    retry_backoff_seconds=settings.message_retry_backoff_seconds,
)


app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    description=__doc__ or "",
)
app.state.outbound = outbound
app.state.notify_callback_token = (settings.notify_callback_token.get_secret_value()
                                   if settings.notify_callback_token else None)
app.include_router(receipts.router)  # Notify's own bearer token, not a reader's
app.state.runtime.broker.context.set_global("outbound", outbound)
