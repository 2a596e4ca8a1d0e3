"""Config lint: the delivery settings of docs/architecture.md "Delivery", read from the real objects the services build.

Each service's app module is imported in a child process (importing it configures logging and
builds the broker, which must not touch this test process) and its subscribers, broker and
outbox producer are described as JSON; the checks run here.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/app.py"))

DESCRIBE = r"""
import asyncio, importlib, json, sys
from shared.broker import DeadLetterMiddleware, make_producer

async def producer_of(settings):
    producer = make_producer(settings)  # the outbox relay's producer, as the service builds it
    return {"acks": producer._sender._acks, "idempotent": producer._txn_manager is not None}

out = {}
for name in sys.argv[1:]:
    module = importlib.import_module(f"services.{name}.app")
    runtime = module.app.state.runtime
    broker = runtime.broker
    subscribers = []
    for sub in broker.subscribers:
        subscribers.append({
            "topics": [t if isinstance(t, str) else t.name for t in sub.topics],
            "group_id": sub.group_id,
            "ack_policy": sub.ack_policy.name,
            "enable_auto_commit": sub._connection_args.get("enable_auto_commit"),
        })
    kwargs = broker._connection_kwargs
    out[name] = {
        "subscribers": subscribers,
        "middlewares": [m.__name__ for m in broker.config.broker_config.broker_middlewares],
        "broker": {"acks": kwargs.get("acks"), "idempotent": kwargs.get("enable_idempotence")},
        "relay": asyncio.run(producer_of(runtime.settings)),
    }
sys.stdout.write("\nCONFIG " + json.dumps(out) + "\n")
"""


def describe(idempotence: str) -> dict:
    env = {**os.environ, "KAFKA_ENABLE_IDEMPOTENCE": idempotence, "KAFKA_ACKS": "all", "LOG_LEVEL": "ERROR"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    done = subprocess.run([sys.executable, "-c", DESCRIBE, *SERVICES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("CONFIG ")]
    return json.loads(line.removeprefix("CONFIG "))


@pytest.fixture(scope="module")
def apache() -> dict:
    """Every service configured as for Apache Kafka (KAFKA_ENABLE_IDEMPOTENCE=true)."""
    return describe("true")


def consumed_topics(config: dict) -> dict[str, set[str]]:
    return {name: {t for s in c["subscribers"] for t in s["topics"]} for name, c in config.items()}


def test_every_service_is_described():
    assert {"referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "clocks"} <= set(SERVICES)


def test_no_consumer_commits_before_its_handler_has_run(apache):
    subscribers = [(name, s) for name, c in apache.items() for s in c["subscribers"]]
    assert subscribers
    for name, s in subscribers:
        # ACK_FIRST commits before the handler runs; ACK and REJECT_ON_ERROR commit a failed message too
        assert s["ack_policy"] in ("NACK_ON_ERROR", "MANUAL"), (name, s)
        assert s["enable_auto_commit"] is False, (name, s)
        assert s["group_id"] == f"{name}.{s['topics'][0]}", (name, s)  # one group per service and topic


def test_every_consumer_retries_then_dead_letters(apache):
    for name, c in apache.items():
        if c["subscribers"]:
            assert "DeadLetterMiddleware" in c["middlewares"], name
            # verified before the handler (and the audit of its cause) runs; a refusal is still dead-lettered
            assert c["middlewares"][:3] == ["DeadLetterMiddleware", "SignatureMiddleware", "CauseMiddleware"], name


def test_producers_wait_for_all_replicas_and_are_idempotent_on_apache_kafka(apache):
    for name, c in apache.items():
        assert c["broker"] == {"acks": "all", "idempotent": True}, name
        assert c["relay"]["acks"] == -1, name  # aiokafka's number for "all"
        assert c["relay"]["idempotent"] is True, name


def test_idempotence_follows_the_setting_for_the_embedded_broker():
    embedded = describe("false")  # Tansu refuses InitProducerId
    for name, c in embedded.items():
        assert c["broker"] == {"acks": "all", "idempotent": False}, name
        assert c["relay"] == {"acks": -1, "idempotent": False}, name


async def test_every_consumed_topic_has_a_dead_letter_topic(apache, infra):
    """The session's broker had ensure_topics run on it, as every service does at start-up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    for name, consumed in consumed_topics(apache).items():
        for topic in consumed:
            assert topic in existing, (name, topic)
            assert f"{topic}.dlq" in existing, (name, topic)


def test_compose_sets_idempotent_producers_with_acks_all():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shared_env = compose["x-tessera-env"]
    assert str(shared_env["KAFKA_ENABLE_IDEMPOTENCE"]).lower() == "true"
    assert str(shared_env["KAFKA_ACKS"]) == "all"
    assert str(shared_env["KAFKA_FETCH_MIN_WAIT_MS"]) == str(shared_env["KAFKA_FETCH_MAX_WAIT_MS"]) == "500"
    for name in ("referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "clocks"):
        env = compose["services"][name]["environment"]
        assert str(env["KAFKA_ENABLE_IDEMPOTENCE"]).lower() == "true", name
        assert str(env["KAFKA_ACKS"]) == "all", name


def test_kubernetes_config_sets_idempotent_producers_acks_all_and_three_replicas():
    documents = [d for f in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
                 for d in yaml.safe_load_all(f.read_text()) if d]
    [config] = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tessera-config"]
    assert config["data"]["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert config["data"]["KAFKA_ACKS"] == "all"
    assert config["data"]["TOPIC_REPLICATION_FACTOR"] == "3"


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _environ_reads(path: Path) -> list[int]:
    """Lines that read os.environ / os.getenv / os.putenv (the settings classes read the environment)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "putenv", "environb"):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ("environ", "getenv") for a in node.names):
            lines.append(node.lineno)
    return sorted(lines)


# shared/testing.py and shared/embedded.py start processes for tests and `make run`; no service imports them
ENVIRON_ALLOWED = {"settings.py", "app.py", "shared/testing.py", "shared/embedded.py"}


def test_no_service_reads_the_environment_outside_its_settings_and_app_modules():
    offenders = []
    for path in _python_files("services", "shared"):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ("settings.py", "app.py") or rel in ENVIRON_ALLOWED:
            continue
        offenders += [f"{rel}:{line}" for line in _environ_reads(path)]
    assert offenders == []


def test_the_environment_lint_finds_a_read(tmp_path):
    sample = tmp_path / "handlers.py"
    sample.write_text("import os\nfrom os import getenv\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert _environ_reads(sample) == [2, 3, 4]


def _print_calls(path: Path) -> list[int]:
    return [n.lineno for n in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]


def test_services_and_shared_log_and_never_print():
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _python_files("services", "shared")
                 for line in _print_calls(p)]
    assert offenders == []


QUERY_METHODS = {"fetch", "fetchrow", "fetchval", "execute", "executemany"}


def _database_calls(path: Path) -> list[int]:
    return [n.lineno for n in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in QUERY_METHODS]


def test_a_service_speaks_sql_only_in_its_store_module():
    """Issue #16 §4: one obvious place for a service's SQL (its store.py), so a reader finds every query there."""
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _python_files("services")
                 if p.name != "store.py" for line in _database_calls(p)]
    assert offenders == []
    assert _database_calls(ROOT / "services" / "workflow" / "store.py")  # the lint sees a query when there is one


def test_compose_points_every_service_url_at_that_service_and_runs_the_desk():
    """Reads of another service go over HTTP: in containers 127.0.0.1 is the caller itself."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "web" in services
    for name in ("referrals", "workflow", "allocation", "notifications", "documents"):
        url = compose["x-tessera-env"][f"{name.upper()}_URL"]
        port = services[name]["environment"]["HTTP_PORT"]
        assert url == f"http://{name}:{port}", (name, url)
