"""Retry policy of message sends and the log-only SMS provider (R-T4): ids only, bounded attempts."""

import asyncio
import logging

import pytest

from services.notifications.senders import LogSmsProvider, SendFailed, with_retries


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


def test_R_T4_the_log_sms_provider_records_the_send_and_logs_the_message_id_only(caplog):
    provider = LogSmsProvider()
    with caplog.at_level(logging.INFO):
        reference = asyncio.run(provider.send("m-1", "07700 900123", "You are on the waiting list"))
    assert provider.sent == ["m-1"] and reference == "log-sms-m-1"
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "m-1" in logged and "07700" not in logged and "waiting list" not in logged


def test_an_sms_without_a_number_fails_permanently():
    with pytest.raises(SendFailed) as failed:
        asyncio.run(LogSmsProvider().send("m-2", "", "text"))
    assert (failed.value.code, failed.value.permanent) == ("no_number", True)
