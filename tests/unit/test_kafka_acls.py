"""The broker's ACLs in docker-compose are exactly who writes what (shared/producers.py) and who reads what (the
services' subscribers): issue #21 §4. The compose file and deploy/kafka/ have never run here (no Docker engine):
these checks read them."""

from pathlib import Path

import pytest
import yaml

from shared import producers, topics
from shared.signing import COMPONENTS, issuer_of
from tools import kafka_acls
from tools.kafka_acls import Acl

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
GRANTED = kafka_acls.parse(kafka_acls.ACLS_FILE.read_text())


def test_the_acl_and_topic_files_are_what_the_producers_table_and_the_subscribers_say():
    """Regenerate with `python -m tools.kafka_acls --write` after changing either."""
    assert kafka_acls.ACLS_FILE.read_text() == kafka_acls.render()
    assert kafka_acls.TOPICS_FILE.read_text().split() == topics.all_with_dlqs()


def writers_of(topic: str) -> set[str]:
    return {a.principal for a in GRANTED if (a.operation, a.kind, a.name) == ("Write", "topic", topic)}


@pytest.mark.parametrize("topic", sorted(producers.WRITERS))
def test_only_the_producers_the_table_names_may_write_a_signed_topic(topic):
    """A service writes its own *.events; the desk and the services named there each *.commands."""
    named = {w.removeprefix("tessera/") for writers in producers.WRITERS[topic].values() for w in writers}
    assert writers_of(topic) == named
    if topic.endswith(".events"):
        assert writers_of(topic) == {topic.removesuffix(".events")}


def test_an_outside_system_writes_only_its_own_topic_and_no_component_writes_it():
    assert writers_of(topics.REFERRALS_INTAKE) == {"intake"}
    assert writers_of(topics.BROKERAGE_EVENTS) == {"brokerage"}
    outside = {"intake", "brokerage", "finance"}
    assert {a.name for a in GRANTED if a.principal in outside and a.operation == "Write"} == {
        topics.REFERRALS_INTAKE, topics.BROKERAGE_EVENTS}


def test_each_service_reads_what_it_consumes_in_its_own_group_and_writes_its_dead_letters():
    consumed = kafka_acls.consumed()
    assert set(consumed) == set(COMPONENTS) - {"web"}
    for service, pairs in consumed.items():
        reads = {a.name for a in GRANTED if a.principal == service and a.operation == "Read" and a.kind == "topic"}
        assert reads == {t for _, t in pairs}, service
        for group, topic in pairs:
            assert Acl(service, "Read", "group", f"{group}.{topic}") in GRANTED
            assert Acl(service, "Write", "topic", topics.dlq(topic)) in GRANTED
    assert {a.name for a in GRANTED if a.principal == "web" and a.operation == "Read"} == set(
        producers.ANSWERS.values())  # the desk reads the outcomes of its commands, nothing else


def test_the_broker_asks_for_scram_and_allows_only_what_an_acl_allows():
    kafka = COMPOSE["services"]["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols["INTERNAL"] == protocols["EXTERNAL"] == "SASL_PLAINTEXT"
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    plain = {name for name, protocol in protocols.items() if protocol == "PLAINTEXT"}
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    assert all(listeners[name].startswith("127.0.0.1:") for name in plain), "the super user's listeners stay local"


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_signs_in_as_its_own_principal_once_the_setup_has_run(component):
    service = COMPOSE["services"][component]
    env = service["environment"]
    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    assert env["KAFKA_SASL_USERNAME"] == component
    assert env["KAFKA_SASL_PASSWORD"].startswith(f"${{KAFKA_PASSWORD_{component.upper()}:?")
    assert service["depends_on"]["kafka-setup"] == {"condition": "service_completed_successfully"}
    assert issuer_of(component) in {w for by_type in producers.WRITERS.values() for ws in by_type.values() for w in ws}


def test_the_setup_makes_a_credential_for_every_principal_the_acls_name():
    setup = COMPOSE["services"]["kafka-setup"]
    script = (ROOT / "deploy" / "kafka" / "setup.sh").read_text()
    [principals] = [line.split("=", 1)[1].strip('"').split() for line in script.splitlines()
                    if line.startswith("PRINCIPALS=")]
    assert set(principals) == {a.principal for a in GRANTED}
    assert set(setup["environment"]) == {f"KAFKA_PASSWORD_{p.upper()}" for p in principals}
    assert "./deploy/kafka:/kafka:ro" in setup["volumes"] and setup["network_mode"] == "service:kafka"
