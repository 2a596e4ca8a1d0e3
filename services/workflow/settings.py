"""Settings of the workflow service, each read from the environment variable of the same name."""

from shared.settings import Settings


class WorkflowSettings(Settings):
    """The shared settings plus where allocation is: who is involved with a person (R-W13)."""

    allocation_url: str = "http://127.0.0.1:8083"
