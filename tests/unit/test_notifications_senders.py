"""Retry policy of message sends (R-T4): bounded attempts, permanent failures not retried."""

import asyncio

import pytest
from pydantic import ValidationError

from services.notifications.senders import SendFailed, with_retries
from services.notifications.settings import NotificationsSettings


def failing(*codes: tuple[str, bool], then: str | None = None):
    calls = []

    async def send() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            code, permanent = codes[len(calls) - 1]
            raise SendFailed(code, permanent=permanent)
        assert then is not None
        return then

    return send, calls


def test_a_transient_failure_is_retried_and_the_attempts_counted():
    send, calls = failing(("smtp_unavailable", False), then="ref-1")
    assert asyncio.run(with_retries(send, attempts=3, backoff_seconds=0)) == (2, "ref-1", None)
    assert len(calls) == 2


def test_retries_stop_at_the_limit_with_the_last_error_code():
    send, calls = failing(*[("smtp_unavailable", False)] * 5)
    assert asyncio.run(with_retries(send, attempts=3, backoff_seconds=0)) == (3, None, "smtp_unavailable")


def test_a_permanent_failure_is_not_retried():
    send, calls = failing(("recipient_refused", True), then="never")
    assert asyncio.run(with_retries(send, attempts=3, backoff_seconds=0)) == (1, None, "recipient_refused")


def test_S8_with_a_notify_key_every_missing_template_id_is_named_and_the_service_refuses_to_start(monkeypatch):
    monkeypatch.setenv("NOTIFY_API_KEY", "test-key")
    monkeypatch.setenv("NOTIFY_TEMPLATES", '{"pwt_waiting_list:email": "t-1"}')
    with pytest.raises(ValidationError) as refused:
        NotificationsSettings()
    for missing in ("pwt_waiting_list:sms", "pwt_waiting_list_large_print:letter", "pwt_waiting_list_referrer:sms"):
        assert missing in str(refused.value)
    assert "pwt_waiting_list:email," not in str(refused.value) and "test-key" not in str(refused.value)
    monkeypatch.delenv("NOTIFY_API_KEY")
    assert NotificationsSettings().notify_api_key is None  # development: SMTP and the print queue
