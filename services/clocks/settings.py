"""Settings of the clocks service, each read from the environment variable of the same name."""

from pathlib import Path

from services.clocks.definitions import DEFAULT_FILE
from shared.settings import Settings


class ClocksSettings(Settings):
    """The shared settings plus the clocks file (a council's own timescales, checked at start-up)."""

    clocks_file: Path = DEFAULT_FILE
