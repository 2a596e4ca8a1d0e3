"""Fixtures of the unit tests: the shipped packs and an engine over them; for those that sign and verify, a folder
of keys for every component and its verifier."""

from pathlib import Path

import pytest

from services.workflow.pack import PackRegistry
from shared import signing
from tests.workflow_harness import Engine, shipped_packs


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys") / "keys"
    signing.make_keys(folder)
    return folder


@pytest.fixture(scope="module")
def verifier(keys: Path) -> signing.Verifier:
    return signing.load_verifier(keys)


@pytest.fixture(scope="session")
def shipped() -> PackRegistry:
    """The shipped packs, loaded and checked once per run (a loaded registry is read-only)."""
    return shipped_packs()


@pytest.fixture
def e(shipped: PackRegistry) -> Engine:
    """The workflow engine in memory over the shipped packs, empty for each test."""
    return Engine(packs=shipped)
