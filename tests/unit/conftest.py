"""Fixtures of the unit tests that sign and verify: a folder of keys for every component, and its verifier."""

from pathlib import Path

import pytest

from shared import signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys") / "keys"
    signing.make_keys(folder)
    return folder


@pytest.fixture(scope="module")
def verifier(keys: Path) -> signing.Verifier:
    return signing.load_verifier(keys)
