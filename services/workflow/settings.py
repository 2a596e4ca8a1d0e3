"""Settings of the workflow service, each read from the environment variable of the same name."""

from pathlib import Path

from services.workflow.pack import DEFINITIONS_DIR
from shared.settings import Settings


class WorkflowSettings(Settings):
    """The shared settings plus where the workflow packs are read from, and where the allocation service is: a
    death is recorded by a worker with grounds to act on the person, read from their relationships and trays
    (R-K8, issue #21 §6)."""

    # A council's own packs (validated at start-up as the shipped ones are); the shipped packs by default.
    workflow_definitions_dir: Path = DEFINITIONS_DIR
    # who is involved with a person (their relationships): activity logs such as WB Case Monitoring (R-W13)
    allocation_url: str = "http://127.0.0.1:8083"
