"""The fetch wait follows the traffic (shared/fetch_wait.py): short while records come, long when idle."""

import inspect

import pytest
from aiokafka.consumer.fetcher import Fetcher
from pydantic import ValidationError

from shared.fetch_wait import wait_ms
from shared.settings import Settings


def test_right_after_records_the_wait_is_the_minimum() -> None:
    assert wait_ms(0.0, 2, 50) == 2
    assert wait_ms(0.015, 2, 50) == 2


def test_the_wait_grows_with_the_time_without_records_up_to_the_maximum() -> None:
    assert wait_ms(0.1, 2, 50) == 10
    assert wait_ms(0.3, 2, 50) == 30
    assert wait_ms(0.5, 2, 50) == 50
    assert wait_ms(3600.0, 2, 50) == 50


def test_a_fixed_wait_when_both_are_the_same() -> None:
    assert wait_ms(0.0, 500, 500) == wait_ms(10.0, 500, 500) == 500


def test_aiokafka_still_reads_the_wait_where_follow_traffic_sets_it() -> None:
    """follow_traffic sets a private attribute of aiokafka's fetcher and wraps a private method: a new aiokafka
    that renamed either would leave every consumer at its start wait without a word, so this fails instead."""
    source = inspect.getsource(Fetcher)
    assert "def _get_actions_per_node(self, assignment)" in source
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher._get_actions_per_node)
    assert "self._records[tp] = FetchResult(" in source


def test_a_minimum_wait_above_the_maximum_is_refused_at_start_naming_both() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(kafka_fetch_min_wait_ms=60, kafka_fetch_max_wait_ms=50)
    assert "KAFKA_FETCH_MIN_WAIT_MS (60)" in str(refused.value) and "KAFKA_FETCH_MAX_WAIT_MS (50)" in str(refused.value)
