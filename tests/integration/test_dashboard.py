"""Every query of the Grafana dashboard returns data from a real Prometheus after a short run.

So the dashboard cannot silently drift from the metric names: a renamed metric or label leaves
a panel empty, and this test fails naming the panel.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.integration.kafka_helpers import REPO
from tests.integration.prometheus_fixtures import ObservedRun, observed_pipeline

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "xorstream.json"
# Grafana's built-in variables, as Grafana would expand them for a 15-minute view at 1s scrapes.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "15m"}
BAD_RECORDS = 3


def panel_queries() -> list[tuple[str, str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            out.append((panel["title"], target["refId"], expr))
    return out


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    yield from observed_pipeline(
        kafka_bootstrap, tmp_path_factory.mktemp("dash"), bad_records=BAD_RECORDS
    )


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = " | ".join(t for t, _, _ in panel_queries()).lower()
    for word in (
        "throughput in",
        "throughput out",
        "accuracy",
        "latency",
        "lag",
        "batch size",
        "dead letters",
        "restore",
        "model version",
    ):
        assert word in titles, word


@pytest.mark.parametrize(
    ("title", "ref", "expr"), panel_queries(), ids=[f"{t}/{r}" for t, r, _ in panel_queries()]
)
def test_panel_query_returns_data(run: ObservedRun, title: str, ref: str, expr: str) -> None:
    result = run.prometheus.query(expr)
    assert result, f"panel {title!r} query {ref} returned no data: {expr}"
    values = [float(sample["value"][1]) for sample in result]
    assert any(math.isfinite(v) for v in values), f"panel {title!r} query {ref}: {values}"


def test_dead_letters_panel_shows_the_bad_records(run: ObservedRun) -> None:
    (expr,) = [e for t, _, e in panel_queries() if t == "Dead letters by reason"]
    rates = {r["metric"]["reason"]: float(r["value"][1]) for r in run.prometheus.query(expr)}
    assert rates["not_json"] > 0
    assert all(v == 0 for k, v in rates.items() if k != "not_json")


def test_restores_panel_counts_the_startup_restore(run: ObservedRun) -> None:
    (expr, _) = [e for t, _, e in panel_queries() if t == "State restores"]
    (sample,) = run.prometheus.query(expr)
    assert float(sample["value"][1]) >= 1


def test_latency_quantiles_are_ordered(run: ObservedRun) -> None:
    (panel,) = [
        p for p in json.loads(DASHBOARD.read_text())["panels"] if p["title"] == "End-to-end latency"
    ]
    values = []
    for target in panel["targets"]:
        expr = re.sub(r"\$__rate_interval", "1m", target["expr"])
        (sample,) = run.prometheus.query(expr)
        values.append(float(sample["value"][1]))
    assert values == sorted(values) and values[0] > 0, values


def test_the_dead_letter_alert_fires_in_the_real_prometheus(run: ObservedRun) -> None:
    """The deployed rule, evaluated by Prometheus on real metrics (pre-initialised at 0)."""
    expr = 'ALERTS{alertname="XorstreamDeadLetters", alertstate="firing"}'
    run.prometheus.wait_for(f"count({expr})", lambda v: v == 1, timeout=30)
    (alert,) = run.prometheus.query(expr)
    assert alert["metric"]["reason"] == "not_json"
