"""What a restarted service does before it handles messages again (issue #18 §3/§4): its retries notice a peer's
return within a second."""

from shared.broker import RETRY_BACKOFF_MAX_SECONDS, retry_backoff


def test_a_transient_failure_is_tried_again_soon_then_every_second_however_long_it_lasts():
    assert [retry_backoff(attempt) for attempt in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert retry_backoff(4) == retry_backoff(40) == RETRY_BACKOFF_MAX_SECONDS == 1.0
