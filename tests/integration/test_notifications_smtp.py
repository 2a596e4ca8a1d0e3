"""Email over real SMTP (aiosmtpd in the test): accepted, refused recipient, server down (R-T4)."""

from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.notifications.senders import EmailSender, SendFailed, with_retries
from shared.testing import free_port


class Refusing:
    """An SMTP server that refuses one recipient and keeps the rest."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append(envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Any:
    handler = Refusing()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


async def test_R_T4_an_email_is_handed_to_the_smtp_server_with_the_message_id(smtp):
    handler, port = smtp
    sender = EmailSender("127.0.0.1", port, "Tessera <no-reply@tessera.invalid>", timeout=5)
    reference = await sender.send("m-1", "ada@example.org", "You are on the waiting list", "Dear Ada,\n")
    assert reference == "<m-1@tessera>"
    [raw] = handler.received
    assert b"Message-ID: <m-1@tessera>" in raw and b"Dear Ada," in raw


async def test_a_refused_recipient_fails_at_once_without_naming_the_address(smtp):
    _, port = smtp
    sender = EmailSender("127.0.0.1", port, "no-reply@tessera.invalid", timeout=5)
    with pytest.raises(SendFailed) as failed:
        await sender.send("m-2", "nobody@example.org", "s", "b")
    assert (failed.value.code, failed.value.permanent) == ("recipient_refused", True)
    assert "nobody" not in str(failed.value)


async def test_a_server_that_does_not_answer_is_retried_then_recorded_as_unavailable():
    sender = EmailSender("127.0.0.1", free_port(), "no-reply@tessera.invalid", timeout=2)
    tries, reference, error = await with_retries(lambda: sender.send("m-3", "a@example.org", "s", "b"), 2, 0)
    assert (tries, reference, error) == (2, None, "smtp_unavailable")
