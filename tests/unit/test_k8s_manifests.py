"""The Kubernetes manifests: every service deployed with probes, resources and a locked-down security context."""

import functools
from pathlib import Path

import pytest
import yaml

from shared.settings import HTTP_PORTS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = ("referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "clocks", "web")


@functools.cache
def _documents() -> tuple[dict, ...]:
    """Parsed once per run: the manifests do not change while the tests read them."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(d for f in sorted(K8S.glob("*.yaml")) for d in yaml.load_all(f.read_text(), Loader=loader) if d)


def _of(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == kind}


def test_every_manifest_loads_and_has_a_kind_and_name():
    docs = _documents()
    assert docs
    assert all(d.get("apiVersion") and d.get("kind") and d["metadata"].get("name") for d in docs)


def test_every_service_has_a_deployment_a_service_and_a_disruption_budget():
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert set(_of(kind)) == set(SERVICES), kind


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_has_probes_resources_and_a_locked_down_security_context(name):
    deployment = _of("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == [f"services.{name}"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http", probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 30


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_listens_where_its_service_points(name):
    deployment, service = _of("Deployment")[name], _of("Service")[name]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    port = HTTP_PORTS[name]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTP_PORT"]["value"] == str(port)
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert _of("PodDisruptionBudget")[name]["spec"]["selector"] == deployment["spec"]["selector"]


@pytest.mark.parametrize("name", SERVICES)
def test_settings_come_from_the_config_map_and_the_database_url_from_a_secret(name):
    [container] = _of("Deployment")[name]["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": "tessera-config"}} in container["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "tessera-secrets",
                                                                "key": f"{name}-database-url"}
    secret_keys = set(_of("Secret")["tessera-secrets"]["stringData"])
    for e in container["env"]:
        secret = e.get("valueFrom", {}).get("secretKeyRef")
        if secret and not secret.get("optional"):
            assert secret["key"] in secret_keys


CONSUMERS = [name for name in SERVICES if name != "web"]


@pytest.mark.parametrize("name", CONSUMERS)
def test_a_consumer_is_a_static_group_member_under_its_pod_name(name):
    """A container restarted after a crash keeps its pod's name, so it takes its partitions back at once."""
    [container] = _of("Deployment")[name]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KAFKA_GROUP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_the_config_map_asks_apache_kafka_for_durable_idempotent_writes():
    data = _of("ConfigMap")["tessera-config"]["data"]
    assert data["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert data["KAFKA_ACKS"] == "all"
    assert data["TOPIC_REPLICATION_FACTOR"] == "3"


def test_the_config_map_lets_apache_kafka_hold_fetches_it_answers_as_data_arrives():
    """The embedded broker's short, traffic-following fetch wait (shared/fetch_wait.py) would only add empty
    fetches on Apache Kafka, which answers a fetch as soon as data arrives."""
    data = _of("ConfigMap")["tessera-config"]["data"]
    assert data["KAFKA_FETCH_MIN_WAIT_MS"] == data["KAFKA_FETCH_MAX_WAIT_MS"] == "500"
    assert int(data["TOPIC_PARTITIONS"]) >= max(d["spec"]["replicas"] for d in _of("Deployment").values())
    assert data["KAFKA_BOOTSTRAP_SERVERS"] and "DATABASE_URL" not in data  # secrets stay out of the ConfigMap


def test_two_replicas_each_with_a_budget_that_keeps_one():
    for name, deployment in _of("Deployment").items():
        assert deployment["spec"]["replicas"] == 2, name
        assert _of("PodDisruptionBudget")[name]["spec"]["minAvailable"] == 1, name


# --- issue #21 §4: transport and network -----------------------------------------------------------------

# who reads whom over HTTP: the *_URL settings each component's app hands to its readers
READS = {"web": {"referrals", "workflow", "allocation", "notifications", "documents", "clocks"},
         "referrals": {"allocation", "workflow"}, "workflow": {"referrals", "allocation"},
         "allocation": {"referrals", "workflow"}, "notifications": {"referrals"},
         "documents": {"referrals", "workflow"}, "scheduler": set(), "clocks": set()}


def _reads_of_code(name: str) -> set[str]:
    app = (Path(__file__).resolve().parents[2] / "services" / name / "app.py").read_text()
    return {target for target in SERVICES if f"settings.{target}_url" in app}


def test_the_reads_table_is_what_the_code_reads():
    assert {name: _reads_of_code(name) for name in SERVICES} == READS


@pytest.mark.parametrize("name", SERVICES)
def test_a_pod_accepts_its_port_only_from_who_reads_it_monitoring_and_for_the_desk_the_ingress(name):
    policies = _of("NetworkPolicy")
    deny = policies["tessera-default-deny"]["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "tessera"}}
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny  # nothing, unless a policy below says so
    [rule] = policies[f"{name}-ingress"]["spec"]["ingress"]
    assert rule["ports"] == [{"port": HTTP_PORTS[name], "protocol": "TCP"}]
    pods = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule["from"] if "podSelector" in p}
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in rule["from"] if "namespaceSelector" in p}
    assert all(p.keys() <= {"podSelector", "namespaceSelector"} and p for p in rule["from"])  # no open "from"
    assert pods == {reader for reader, targets in READS.items() if name in targets}
    assert namespaces == ({"monitoring", "ingress-nginx"} if name == "web" else {"monitoring"})


@pytest.mark.parametrize("name", SERVICES)
def test_each_component_is_its_own_principal_on_kafka_over_tls(name):
    data = _of("ConfigMap")["tessera-config"]["data"]
    assert (data["KAFKA_SECURITY_PROTOCOL"], data["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    [container] = _of("Deployment")[name]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KAFKA_SASL_USERNAME"]["value"] == name
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "tessera-secrets",
                                                                      "key": f"{name}-kafka-password"}
    url = _of("Secret")["tessera-secrets"]["stringData"][f"{name}-database-url"]
    assert "sslmode=verify-full" in url  # the database's certificate and name are checked
