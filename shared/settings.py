"""Settings shared by every service, read from environment variables of the same names."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HTTP_PORTS = {
    "referrals": 8081,
    "workflow": 8082,
    "allocation": 8083,
    "notifications": 8084,
    "documents": 8085,
    "scheduler": 8086,
    "clocks": 8087,
    "web": 8080,
}


class Settings(BaseSettings):
    """Broker, database and HTTP settings; every field has an environment variable."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str = "tessera"
    # `make run` sets development; anything else is production, whose defaults are the safe ones
    tessera_environment: Literal["development", "production"] = "production"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # The embedded Tansu broker rejects InitProducerId; Apache Kafka wants this on.
    kafka_enable_idempotence: bool = False
    kafka_acks: str = "all"
    # Failure detection: a member silent this long leaves its group and its partitions move on.
    kafka_session_timeout_ms: int = 6000
    kafka_heartbeat_interval_ms: int = 1500
    # Static membership (KIP-345): a stable name per replica (a StatefulSet pod name) lets a restarted
    # replica take its partitions back at once instead of waiting out the old session. Empty: dynamic.
    kafka_group_instance_id: str = ""
    # How a service's consumers get their partitions. "group": the group protocol shares them among the replicas,
    # and every start waits for a join (~6 s on the embedded broker, Tansu's fixed pauses). "all": this replica
    # reads every partition of its topics itself, with no join, its offsets committed under the same group names:
    # for a service run as one replica (make run, the fault suite, a supervisor), whose restart then waits for
    # nothing but its own start. A second replica in this mode would read the same records (the inbox drops the
    # copies), so scale with "group".
    kafka_assignment: Literal["group", "all"] = "group"
    # How long the broker may hold a fetch that finds nothing: from the minimum right after records came, growing
    # while none come, to the maximum (shared/fetch_wait.py). Tansu answers only when the wait runs out, so this
    # is each hop's latency and an idle consumer's fetch rate. Apache Kafka answers as data arrives: 500 for both.
    kafka_fetch_min_wait_ms: int = Field(default=2, ge=1, le=30000)
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=1, le=30000)
    # Transport to Apache Kafka (issue #21 §4): SASL (SCRAM) names this component to the broker's ACLs, TLS
    # verifies the broker against KAFKA_SSL_CAFILE (the system's CAs when unset). The embedded broker: PLAINTEXT.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # the most records of one partition a consumer handles in one transaction (shared/batching.py); 1: a
    # transaction per message, as before batching (for comparing, or if a handler ever needs it)
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    topic_partitions: int = 4
    topic_replication_factor: int = 1
    database_url: str = "postgresql://postgres@localhost/postgres"
    db_pool_min: int = 1
    db_pool_max: int = 5
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    log_level: str = "INFO"
    outbox_poll_seconds: float = 0.5
    outbox_batch_size: int = 500
    outbox_linger_seconds: float = 0.005
    # published rows kept this long, re-published if the broker loses its log (0: delete at once)
    outbox_retention_hours: float = 24.0
    outbox_log_check_seconds: float = 5.0
    # handled message ids kept this long: far beyond any window a producer may re-publish
    inbox_retention_days: float = 7.0
    inbox_prune_seconds: float = 3600.0
    # how often every audit chain's head is checkpointed (shared/audit.py): the most a cut-off tail can hide in
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    referrals_url: str = "http://127.0.0.1:8081"
    # a read of another service (its bearer token minted per request: shared/bearer.py)
    http_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # /readyz asks the broker this long before answering not ready; start-up waits this long for broker and database
    readiness_broker_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # how often a service measures its consumer lag, outbox backlog and open dead letters (shared/watch.py)
    ops_sample_seconds: float = Field(default=10.0, gt=0, le=300)
    startup_wait_seconds: int = Field(default=30, ge=1, le=3600)
    # this component's private key (<service>.pem) and the public keys it trusts (trusted.json): shared/signing.py
    signing_keys_dir: Path | None = None
    signature_lifetime_seconds: int = Field(default=300, ge=10, le=900)

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> "Settings":
        if self.kafka_security_protocol.startswith("SASL") and not (
                self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and"
                             " KAFKA_SASL_PASSWORD (this component's principal on the broker)")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (a client certificate and its key)")
        return self

    @model_validator(mode="after")
    def _fetch_waits_in_order(self) -> "Settings":
        if self.kafka_fetch_min_wait_ms > self.kafka_fetch_max_wait_ms:
            raise ValueError(f"KAFKA_FETCH_MIN_WAIT_MS ({self.kafka_fetch_min_wait_ms}) must not exceed"
                             f" KAFKA_FETCH_MAX_WAIT_MS ({self.kafka_fetch_max_wait_ms})")
        return self

    @model_validator(mode="after")
    def _inbox_outlives_outbox(self) -> "Settings":
        if self.inbox_retention_days * 24 <= self.outbox_retention_hours:
            raise ValueError(
                f"INBOX_RETENTION_DAYS ({self.inbox_retention_days:g} days) must be longer than"
                f" OUTBOX_RETENTION_HOURS ({self.outbox_retention_hours:g} hours): a message re-published"
                " from the outbox after a broker restart must still be recognised by every inbox")
        return self

    @property
    def development(self) -> bool:
        return self.tessera_environment == "development"

    @property
    def schema(self) -> str:  # type: ignore[override]  # shadows pydantic's deprecated BaseModel.schema()
        return self.service_name

    @property
    def port(self) -> int:
        return self.http_port or HTTP_PORTS.get(self.service_name, 8080)
