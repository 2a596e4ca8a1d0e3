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
READS = Counter(
    "tessera_reads_total", "Reads of another service's endpoints (shared/readers.py), by the first segment of the"
    " path read and the outcome (found, missing, unavailable)", ["resource", "outcome"],
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
# sampled every OPS_SAMPLE_SECONDS by the service itself (shared/watch.py)
OUTBOX_OLDEST_AGE = Gauge(
    "tessera_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet published (0 when none)", ["service"]
)
CONSUMER_LAG = Gauge(
    "tessera_consumer_lag_messages",
    "Messages after the group's committed offset, per partition this replica holds (end offset - committed)",
    ["service", "group", "topic", "partition"],
)
CONSUMER_ASSIGNED = Gauge(
    "tessera_consumer_assigned_partitions", "Partitions of the topic this replica's consumer holds",
    ["service", "group", "topic"],
)
DEAD_LETTERS_OPEN = Gauge(
    "tessera_dead_letters_open", "Dead letters neither re-driven nor discarded yet (tools/quarantine)",
    ["service", "job"],
)
READY = Gauge("tessera_ready", "1 while /readyz would answer 200 (sampled), else 0", ["service"])
START_TO_READY = Gauge(
    "tessera_start_to_ready_seconds",
    "Seconds from this process's start to ready (every consumer assigned): a restart's recovery", ["service"],
)
