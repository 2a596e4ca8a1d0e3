"""Settings that would break a guarantee are refused at start, naming both values."""

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_an_inbox_retention_not_longer_than_the_outbox_window_is_refused():
    with pytest.raises(ValidationError) as refused:
        Settings(inbox_retention_days=1, outbox_retention_hours=24)
    assert "INBOX_RETENTION_DAYS (1 days)" in str(refused.value)
    assert "OUTBOX_RETENTION_HOURS (24 hours)" in str(refused.value)

