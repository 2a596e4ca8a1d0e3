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
BATCH_SIZE = Histogram(
    "tessera_batch_messages", "Messages handled and committed in one consumer transaction (one fetch, one partition)",
    ["service", "topic"], buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
OUTBOX_PUBLISHED = Counter(
    "tessera_outbox_published_total", "Outbox rows published to Kafka", ["service"]
)
OUTBOX_BACKLOG = Gauge("tessera_outbox_backlog", "Outbox rows waiting to be published", ["service"])
TIMER_LATENESS = Histogram(
    "tessera_timer_lateness_seconds",
    "Seconds from a timer's due_at to when the scheduler fired it (fired_at - due_at)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
DEAD_LETTERS = Counter(
    "tessera_dead_letters_total",
    "Messages and rows set aside with their error (dead_letters table and <topic>.dlq), by job",
    ["service", "job"],
)
JOB_FAILURES = Counter(
    "tessera_job_failures_total", "Failed runs of a background job (firing, relay, pruning)", ["service", "job"]
)
