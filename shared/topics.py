"""Topic names of docs/contracts.md."""

REFERRALS_INTAKE = "referrals.intake"
REFERRALS_EVENTS = "referrals.events"
REFERRALS_COMMANDS = "referrals.commands"
WORKFLOW_COMMANDS = "workflow.commands"
WORKFLOW_EVENTS = "workflow.events"
ALLOCATION_COMMANDS = "allocation.commands"
ALLOCATION_EVENTS = "allocation.events"
NOTIFICATIONS_EVENTS = "notifications.events"
NOTIFICATIONS_COMMANDS = "notifications.commands"
DOCUMENTS_EVENTS = "documents.events"
SCHEDULER_TIMERS = "scheduler.timers"
SCHEDULER_DUE = "scheduler.due"
CLOCKS_EVENTS = "clocks.events"
PURCHASING_ORDERS = "purchasing.orders"
BROKERAGE_EVENTS = "brokerage.events"
WEB_EVENTS = "web.events"

ALL = (
    REFERRALS_INTAKE,
    REFERRALS_EVENTS,
    REFERRALS_COMMANDS,
    WORKFLOW_COMMANDS,
    WORKFLOW_EVENTS,
    ALLOCATION_COMMANDS,
    ALLOCATION_EVENTS,
    NOTIFICATIONS_EVENTS,
    NOTIFICATIONS_COMMANDS,
    DOCUMENTS_EVENTS,
    SCHEDULER_TIMERS,
    SCHEDULER_DUE,
    CLOCKS_EVENTS,
    PURCHASING_ORDERS,
    BROKERAGE_EVENTS,
    WEB_EVENTS,
)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def all_with_dlqs() -> list[str]:
    return [*ALL, *(dlq(t) for t in ALL)]
