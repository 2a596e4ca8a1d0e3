"""Retry policy of message sends (R-T4): bounded attempts, permanent failures not retried."""

import asyncio

from services.notifications.senders import SendFailed, with_retries


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
