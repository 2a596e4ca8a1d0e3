"""Events the desk publishes on web.events: its staff directory, the accounts it owns."""

from typing import ClassVar

from pydantic import ConfigDict, Field

from shared.bounds import IdText, NameText, SaneDatetime
from shared.events.base import Event


class AccountListed(Event):
    """An account of the desk as it is now (created, its roles or teams changed, disabled or enabled, or the
    whole directory said again at the desk's start-up): who may act in Tessera and with which roles and teams.
    `as_of` orders two listings of one account; a reader keeps the latest (R-RQ9)."""

    TYPE: ClassVar[str] = "account.listed"
    # Consumers ignore fields they do not know: the producer may add optional ones.
    model_config = ConfigDict(frozen=True, extra="ignore")
    worker_id: IdText
    roles: list[IdText] = Field(max_length=50)
    team_ids: list[IdText] = Field(max_length=200)
    active: bool
    as_of: SaneDatetime
    # issue #22 §9: the name people know the worker by, for what prints who did something (a form's PDF)
    display_name: NameText | None = None
