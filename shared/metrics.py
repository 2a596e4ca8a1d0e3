"""Prometheus metrics every service exposes on /metrics."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "tessera_messages_total",
    "Messages consumed, by outcome (handled, duplicate, dead_lettered, retried)",
    ["service", "topic", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "tessera_handler_seconds", "Time to handle one message", ["service", "topic"]
)
OUTBOX_PUBLISHED = Counter(
    "tessera_outbox_published_total", "Outbox rows published to Kafka", ["service"]
)
OUTBOX_BACKLOG = Gauge("tessera_outbox_backlog", "Outbox rows waiting to be published", ["service"])
