"""Settings of the allocation service, each read from the environment variable of the same name."""

from pathlib import Path

from shared.settings import Settings


class AllocationSettings(Settings):
    """The shared settings plus where the workflow service is and the teams' contact numbers."""

    workflow_url: str = "http://127.0.0.1:8082"
    # R-T4: the number a person on a tray is given, per team id, as JSON: {"locality-north": "0116 …"}
    team_contact_numbers: dict[str, str] = {}
    # R-A3 locality team finder: postcode districts, sectors or postcodes → locality team id
    localities_file: Path = Path(__file__).parent / "localities.yaml"
