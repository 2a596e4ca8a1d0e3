"""How messages leave: email over SMTP, SMS through a provider. Log ids only, never an address or text."""

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

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


class SmsProvider(Protocol):
    """Sends one text message; returns the provider's reference. SendFailed if it was not taken."""

    async def send(self, message_id: str, to: str, text: str) -> str: ...


class LogSmsProvider:
    """The embedded SMS provider: records that a text would go, logging the message id only."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message_id: str, to: str, text: str) -> str:
        if not to:
            raise SendFailed("no_number", permanent=True)
        self.sent.append(message_id)
        reference = f"log-sms-{message_id}"
        log.info("sms recorded by the log provider", extra={"message_id": message_id, "provider_ref": reference})
        return reference


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
