"""Settings of the workflow service, each read from the environment variable of the same name."""

from shared.settings import Settings


class WorkflowSettings(Settings):
    """The shared settings plus where the allocation service is: a death is recorded by a worker with grounds
    to act on the person, read from their relationships and trays (R-K8, issue #21 §6)."""

    allocation_url: str = "http://127.0.0.1:8083"
