"""Settings of the referrals service, each read from the environment variable of the same name."""

from shared.settings import Settings


class ReferralsSettings(Settings):
    """The shared settings plus where allocation and workflow are: person commands are checked against them."""

    workflow_url: str = "http://127.0.0.1:8082"
    allocation_url: str = "http://127.0.0.1:8083"
