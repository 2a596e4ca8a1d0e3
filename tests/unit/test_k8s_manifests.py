"""The Kubernetes manifests: every service deployed with probes, resources and a locked-down security context."""

from pathlib import Path

import pytest
import yaml

from shared.settings import HTTP_PORTS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = ("referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "web")


def _documents() -> list[dict]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


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
        if "valueFrom" in e and not e["valueFrom"]["secretKeyRef"].get("optional"):
            assert e["valueFrom"]["secretKeyRef"]["key"] in secret_keys


def test_the_config_map_asks_apache_kafka_for_durable_idempotent_writes():
    data = _of("ConfigMap")["tessera-config"]["data"]
    assert data["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert data["KAFKA_ACKS"] == "all"
    assert data["TOPIC_REPLICATION_FACTOR"] == "3"
    assert int(data["TOPIC_PARTITIONS"]) >= max(d["spec"]["replicas"] for d in _of("Deployment").values())
    assert data["KAFKA_BOOTSTRAP_SERVERS"] and "DATABASE_URL" not in data  # secrets stay out of the ConfigMap


def test_two_replicas_each_with_a_budget_that_keeps_one():
    for name, deployment in _of("Deployment").items():
        assert deployment["spec"]["replicas"] == 2, name
        assert _of("PodDisruptionBudget")[name]["spec"]["minAvailable"] == 1, name
