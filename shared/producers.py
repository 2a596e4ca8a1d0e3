"""Which producer may write which topic, and send which command: the one table every consumer checks.

A producer is named as it signs (`iss`): the desk `tessera/web`, a service `tessera/<name>`. Messages on
`referrals.intake` and `brokerage.events` come from outside systems, unsigned; broker ACLs keep impostors
off them (deploy/README.md).
"""

from shared import topics

DESK = "tessera/web"
ANY_TYPE = "*"
UNSIGNED_TOPICS = frozenset({topics.REFERRALS_INTAKE, topics.BROKERAGE_EVENTS})
COMMAND_TOPICS = frozenset({topics.REFERRALS_COMMANDS, topics.WORKFLOW_COMMANDS, topics.ALLOCATION_COMMANDS,
                            topics.NOTIFICATIONS_COMMANDS})
# where a command's outcome (its events or `command.rejected`) is published
ANSWERS = {
    topics.REFERRALS_COMMANDS: topics.REFERRALS_EVENTS,
    topics.WORKFLOW_COMMANDS: topics.WORKFLOW_EVENTS,
    topics.ALLOCATION_COMMANDS: topics.ALLOCATION_EVENTS,
    topics.NOTIFICATIONS_COMMANDS: topics.NOTIFICATIONS_EVENTS,
}


def _service(name: str) -> str:
    return f"tessera/{name}"


TIMER_OWNERS = frozenset({_service("workflow"), _service("allocation"), _service("notifications"), _service("clocks")})

# topic -> message type (or ANY_TYPE) -> the producers that may send it
WRITERS: dict[str, dict[str, frozenset[str]]] = {
    topics.REFERRALS_EVENTS: {ANY_TYPE: frozenset({_service("referrals")})},
    topics.WORKFLOW_EVENTS: {ANY_TYPE: frozenset({_service("workflow")})},
    topics.ALLOCATION_EVENTS: {ANY_TYPE: frozenset({_service("allocation")})},
    topics.NOTIFICATIONS_EVENTS: {ANY_TYPE: frozenset({_service("notifications")})},
    topics.DOCUMENTS_EVENTS: {ANY_TYPE: frozenset({_service("documents")})},
    topics.PURCHASING_ORDERS: {ANY_TYPE: frozenset({_service("workflow")})},
    topics.SCHEDULER_DUE: {ANY_TYPE: frozenset({_service("scheduler")})},
    topics.CLOCKS_EVENTS: {ANY_TYPE: frozenset({_service("clocks")})},
    topics.WEB_EVENTS: {ANY_TYPE: frozenset({DESK})},  # the staff directory (R-RQ9)
    topics.SCHEDULER_TIMERS: {ANY_TYPE: TIMER_OWNERS},
    topics.REFERRALS_COMMANDS: {
        ANY_TYPE: frozenset({DESK}),
        # the case notes of tray.add, tray.review and the tray timers, whose actor allocation checked (R-T1, R-T5, R-T6)
        "case_note.add": frozenset({DESK, _service("allocation")}),
    },
    topics.WORKFLOW_COMMANDS: {
        ANY_TYPE: frozenset({DESK}),
        # allocating a case assigns its open steps to the allocated worker (R-A3)
        "step.assign": frozenset({DESK, _service("allocation")}),
    },
    topics.ALLOCATION_COMMANDS: {ANY_TYPE: frozenset({DESK})},
    topics.NOTIFICATIONS_COMMANDS: {ANY_TYPE: frozenset({DESK})},
}


def may_write(producer: str, topic: str, message_type: str) -> bool:
    by_type = WRITERS.get(topic, {})
    return producer in by_type.get(message_type, by_type.get(ANY_TYPE, frozenset()))


def writer_of(topic: str, message_type: str) -> str:
    """The producer that normally sends this: the desk for a command, the owning service for an event."""
    if topic in COMMAND_TOPICS:
        return DESK
    by_type = WRITERS[topic]
    return min(by_type.get(message_type, by_type[ANY_TYPE]))


def is_signed(topic: str) -> bool:
    return topic in WRITERS
