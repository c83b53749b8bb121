"""A real Prometheus scrapes a real producer and processor: throughput > 0 and accuracy 1.0.

Prometheus runs with the project's own deploy/prometheus/prometheus.yml and rules (targets
swapped for this test's ports), so the scrape jobs and recording rules are the deployed ones.
"""

from __future__ import annotations

import pytest

from tests.integration.prometheus_fixtures import (
    PRODUCER_JOB,
    STREAM_JOB,
    ObservedRun,
    observed_pipeline,
)


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    yield from observed_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("prom"))


def test_both_jobs_were_scraped(run: ObservedRun) -> None:
    health = run.prometheus.target_health()
    assert health[STREAM_JOB] == ["up"]
    # The producer has exited by now; it was scraped while it sent (its last rows may have
    # gone out after its last scrape).
    sent = run.prometheus.scalar(
        f'max_over_time(xorstream_producer_rows_sent_total{{job="{PRODUCER_JOB}"}}[5m])'
    )
    assert sent is not None and 0 < sent <= run.rows


def test_throughput_is_positive(run: ObservedRun) -> None:
    prom = run.prometheus
    assert prom.scalar("sum(rate(xorstream_rows_consumed_total[1m]))") > 0
    assert prom.scalar("sum(rate(xorstream_predictions_total[1m]))") > 0
    assert prom.scalar("sum(rate(xorstream_producer_rows_sent_total[1m]))") > 0


def test_accuracy_is_one(run: ObservedRun) -> None:
    prom = run.prometheus
    assert prom.scalar("xorstream_accuracy_ratio") == 1.0
    correct = prom.scalar("sum(xorstream_predictions_correct_total)")
    incorrect = prom.scalar("sum(xorstream_predictions_incorrect_total)")
    assert (correct, incorrect) == (run.predictions, 0)
    # The recording rule the accuracy alert is written against agrees.
    prom.wait_for("min(model:xorstream_accuracy:ratio_rate5m)", lambda v: v is not None, timeout=30)
    assert prom.scalar("min(model:xorstream_accuracy:ratio_rate5m)") == 1.0


def test_pipeline_metrics_agree_with_the_run(run: ObservedRun) -> None:
    prom = run.prometheus
    assert prom.scalar("sum(xorstream_end_to_end_latency_seconds_count)") == run.predictions
    assert prom.scalar("sum(xorstream_inference_batch_size_sum)") == run.predictions
    assert prom.scalar("sum(xorstream_sequence_duplicates_total)") == 0
    assert prom.scalar("sum(xorstream_sequence_gaps_total)") == 0
    assert prom.scalar("sum(xorstream_dead_letters_total)") == 0
    assert prom.scalar('sum(xorstream_transactions_total{outcome="committed"})') > 0
    assert prom.scalar('sum(xorstream_transactions_total{outcome="aborted"})') == 0
    assert prom.scalar("sum(xorstream_consumer_lag_records)") == 0
    assert prom.scalar("count(xorstream_model_info)") == 1


def test_no_alert_fires_on_a_healthy_run(run: ObservedRun) -> None:
    firing = run.prometheus.query('ALERTS{alertstate="firing"}')
    assert firing == [], [a["metric"] for a in firing]
