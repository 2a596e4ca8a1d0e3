"""What operations watch (issue #18 §6): the alert rules in deploy/prometheus/ and the dashboard in deploy/grafana/
name only metrics the services expose, parse as PromQL, and every alert points at a runbook that exists."""

import json
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, ProcessCollector

from shared import metrics, watch  # noqa: F401  registers every metric of the services

ROOT = Path(__file__).resolve().parents[2]
RULES = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())["groups"]
ALERTS = [rule for group in RULES for rule in group["rules"]]
DASHBOARD = json.loads((ROOT / "deploy/grafana/tessera.json").read_text())
PANEL_QUERIES = [(panel["title"], target["expr"]) for panel in DASHBOARD["panels"] for target in panel["targets"]]
# written by Prometheus itself for every target, not by a service
SCRAPE_SERIES = {"up", "scrape_duration_seconds"}
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}


def exposed_series() -> set[str]:
    """Every series name /metrics can show: the registry's families with their type's suffixes."""
    families = [*REGISTRY.collect(), *ProcessCollector(registry=None).collect()]
    return {family.name + suffix for family in families for suffix in SUFFIXES.get(family.type, ("",))}


def named_series(expr: str) -> set[str]:
    """The metric names an expression selects (a syntax error fails here)."""
    names: set[str] = set()
    pending = [promql_parser.parse(expr)]
    while pending:
        node = pending.pop()
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
        for part in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
            child = getattr(node, part, None)
            pending.extend(child if isinstance(child, list) else [child] if child is not None else [])
    return names


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_alert_names_metrics_the_services_expose_and_a_runbook_that_exists(rule):
    names = named_series(rule["expr"])
    assert names, "an alert that selects no metric"
    assert names <= exposed_series() | SCRAPE_SERIES, f"not exposed by any service: {names - exposed_series()}"
    assert (ROOT / rule["annotations"]["runbook"]).is_file()
    assert rule["labels"]["severity"] in {"warning", "critical"}


@pytest.mark.parametrize(("title", "expr"), PANEL_QUERIES, ids=[title for title, _ in PANEL_QUERIES])
def test_every_dashboard_panel_names_metrics_the_services_expose(title, expr):
    names = named_series(expr)
    assert names and names <= exposed_series(), f"{title}: not exposed: {names - exposed_series()}"


def test_the_alerts_cover_what_the_issue_asks_operations_to_watch():
    """Consumer lag, outbox backlog and age, dead-letter growth, timer lateness, readiness and recovery."""
    watched = set().union(*(named_series(rule["expr"]) for rule in ALERTS))
    assert {"tessera_consumer_lag_messages", "tessera_outbox_oldest_age_seconds", "tessera_dead_letters_total",
            "tessera_timer_lateness_seconds_bucket", "tessera_ready", "tessera_start_to_ready_seconds"} <= watched


def test_a_misspelt_metric_is_caught():
    assert named_series('sum(rate(tessera_mesages_total{outcome="handled"}[5m]))') - exposed_series() == {
        "tessera_mesages_total"}
