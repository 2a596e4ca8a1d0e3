"""How messages leave: GOV.UK Notify (email, SMS, letters) where configured, else email over SMTP (development).

Log ids only, never an address or text.
"""

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate

from services.notifications.domain import Rendered

log = logging.getLogger(__name__)


class SendFailed(Exception):
    """A send that did not go; `code` names why (no address in it), `permanent` if retrying cannot help."""

    def __init__(self, code: str, *, permanent: bool) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent


class EmailSender:
    """Email over real SMTP (the stdlib client in a thread); the embedded default is the local catcher."""

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0, starttls: bool = False,
                 username: str | None = None, password: str | None = None, cafile: str | None = None) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._timeout, self._starttls = timeout, starttls
        self._username, self._password = username, password
        self._cafile = cafile

    def tls_context(self) -> ssl.SSLContext:
        """STARTTLS verifies the server's certificate and name (smtplib's own default checks neither)."""
        return ssl.create_default_context(cafile=self._cafile)

    async def send(self, message_id: str, to: str, subject: str, body: str) -> str:
        """Hand the mail to the SMTP server; returns its Message-ID. SendFailed if it was not accepted."""
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message_id}@tessera>"
        mail["X-Tessera-Message-Id"] = message_id
        mail.set_content(body)
        await asyncio.to_thread(self._deliver, mail)
        return mail["Message-ID"]

    def _deliver(self, mail: EmailMessage) -> None:
        # the exceptions' texts can name the recipient: only their type and code go further
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=self.tls_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise SendFailed("recipient_refused", permanent=True) from None
        except smtplib.SMTPSenderRefused:
            raise SendFailed("sender_refused", permanent=True) from None
        except smtplib.SMTPAuthenticationError:
            raise SendFailed("smtp_authentication", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise SendFailed(f"smtp_{exc.smtp_code}", permanent=500 <= exc.smtp_code < 600) from None
        except (smtplib.SMTPException, OSError):
            raise SendFailed("smtp_unavailable", permanent=False) from None


class NotifySender:
    """Email, SMS and letters through GOV.UK Notify (`notifications-python-client`), one template id per message
    template and channel. The blocking client runs in a thread, a fresh one per send (it is not thread-safe)."""

    def __init__(self, api_key: str, base_url: str, templates: Mapping[str, str], *, timeout: float = 10.0) -> None:
        self._api_key, self._base_url, self._timeout = api_key, base_url, timeout
        self._templates = dict(templates)
        # the client logs Notify's error text, which can quote what was sent: only our own log lines (ids) go out
        logging.getLogger("notifications_python_client").setLevel(logging.CRITICAL)

    async def send(self, message_id: str, template: str, rendered: Rendered) -> str:
        """Hand the message to Notify; returns Notify's notification id. SendFailed if it was not accepted."""
        template_id = self._templates.get(f"{template}:{rendered.channel}")
        if template_id is None:
            raise SendFailed("notify_template_missing", permanent=True)
        return await asyncio.to_thread(self._post, message_id, template_id, rendered)

    def _post(self, message_id: str, template_id: str, rendered: Rendered) -> str:
        # imported here, in the sending thread, not with the app: the client and requests were a third of the CPU
        # this service's own imports take, which a restart spends before it asks to join its consumer groups
        from notifications_python_client.errors import APIError, HTTPError
        from notifications_python_client.notifications import NotificationsAPIClient

        client = NotificationsAPIClient(self._api_key, base_url=self._base_url, timeout=self._timeout)
        # what the Notify template shows: the text made here, so wording and formats live in one place
        fields = {"subject": rendered.subject, "body": rendered.body}
        try:
            match rendered.channel:
                case "email":
                    answer = client.send_email_notification(rendered.to, template_id, fields, reference=message_id)
                case "sms":
                    answer = client.send_sms_notification(rendered.to, template_id, fields, reference=message_id)
                case _:
                    lines = {f"address_line_{n}": line for n, line in enumerate(rendered.address[:7], start=1)}
                    answer = client.send_letter_notification(template_id, {**fields, **lines}, reference=message_id)
        except HTTPError as exc:
            status = exc.status_code
            raise SendFailed(f"notify_{status}", permanent=400 <= status < 500 and status != 429) from None
        except (APIError, OSError):
            raise SendFailed("notify_unavailable", permanent=False) from None
        return str(answer["id"])


async def with_retries(send: Callable[[], Awaitable[str]], attempts: int,
                       backoff_seconds: float) -> tuple[int, str | None, str | None]:
    """Up to `attempts` tries, backing off between transient failures: (tries, reference, error code)."""
    tries, code = 0, "not_sent"
    while tries < attempts:
        tries += 1
        try:
            return tries, await send(), None
        except SendFailed as failed:
            code = failed.code
            if failed.permanent:
                break
        if tries < attempts:
            await asyncio.sleep(backoff_seconds * 2 ** (tries - 1))
    return tries, None, code
