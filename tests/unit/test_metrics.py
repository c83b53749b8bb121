"""StreamMetrics and ProducerMetrics: names, values, the batch histogram, the HTTP endpoint."""

from __future__ import annotations

import math
import socket
import urllib.request
from collections import Counter

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from producer.metrics import ProducerMetrics
from stream.codec import Reason
from stream.metrics import (
    LATENCY_BUCKETS_S,
    BatchHistogram,
    RollingAccuracy,
    StreamMetrics,
)
from stream.step import StepResult


def step(**fields) -> StepResult:
    return StepResult(**fields)


def value(m: StreamMetrics | ProducerMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_instance_has_its_own_registry() -> None:
    a, b = StreamMetrics(), StreamMetrics()
    a.observe_step(step(rows=3), "v1")
    assert value(a, "xorstream_rows_consumed_total") == 3
    assert value(b, "xorstream_rows_consumed_total") == 0


def test_observe_step_counts_everything_in_a_result() -> None:
    m = StreamMetrics()
    m.set_model("v7", "numpy")
    result = step(
        predictions=[("s-1", b"{}")] * 4,
        rows=10,
        duplicates=2,
        gaps=1,
        correct=3,
        incorrect=1,
        batch_size=4,
        inference_seconds=0.002,
        latencies_ms=[1, 20, 300, 4000],
        dead_reasons=Counter({"not_json": 2, "bad_bits": 1}),
    )
    m.observe_step(result, "v7")
    assert value(m, "xorstream_rows_consumed_total") == 10
    assert value(m, "xorstream_sequence_duplicates_total") == 2
    assert value(m, "xorstream_sequence_gaps_total") == 1
    assert value(m, "xorstream_predictions_correct_total", model="v7") == 3
    assert value(m, "xorstream_predictions_incorrect_total", model="v7") == 1
    assert value(m, "xorstream_accuracy_ratio") == pytest.approx(0.75)
    assert value(m, "xorstream_dead_letters_total", reason="not_json") == 2
    assert value(m, "xorstream_dead_letters_total", reason="bad_bits") == 1
    assert value(m, "xorstream_inference_batch_size_count") == 1
    assert value(m, "xorstream_inference_batch_size_sum") == 4
    assert value(m, "xorstream_inference_duration_seconds_sum") == pytest.approx(0.002)
    assert value(m, "xorstream_end_to_end_latency_seconds_count") == 4
    assert value(m, "xorstream_end_to_end_latency_seconds_sum") == pytest.approx(4.321)
    # Predictions made are not yet published: that waits for the broker.
    assert value(m, "xorstream_predictions_total") == 0
    m.predictions_published(4)
    assert value(m, "xorstream_predictions_total") == 4


def test_an_empty_step_observes_no_batch() -> None:
    m = StreamMetrics()
    m.observe_step(step(), "v1")
    assert value(m, "xorstream_inference_batch_size_count") == 0
    assert value(m, "xorstream_end_to_end_latency_seconds_count") == 0
    assert math.isnan(value(m, "xorstream_accuracy_ratio"))


def test_closed_label_sets_start_at_zero() -> None:
    """So increase() sees the first dead letter / abort and dashboards show 0, not no data."""
    m = StreamMetrics()
    for reason in Reason:
        assert value(m, "xorstream_dead_letters_total", reason=reason.value) == 0
    assert value(m, "xorstream_transactions_total", outcome="committed") == 0
    assert value(m, "xorstream_transactions_total", outcome="aborted") == 0


def test_model_info_has_one_series_for_the_current_model() -> None:
    m = StreamMetrics()
    m.set_model("v1", "numpy")
    m.set_model("v2", "tensorflow")
    assert value(m, "xorstream_model_info", version="v2", backend="tensorflow") == 1
    assert value(m, "xorstream_model_info", version="v1", backend="numpy") is None
    assert value(m, "xorstream_predictions_correct_total", model="v2") == 0


def test_a_new_model_restarts_the_rolling_accuracy() -> None:
    m = StreamMetrics()
    m.set_model("v1", "numpy")
    m.observe_step(step(correct=0, incorrect=10), "v1")
    assert value(m, "xorstream_accuracy_ratio") == 0
    m.set_model("v1", "numpy")  # same version: window kept
    assert value(m, "xorstream_accuracy_ratio") == 0
    m.set_model("v2", "numpy")
    assert math.isnan(value(m, "xorstream_accuracy_ratio"))
    m.observe_step(step(correct=10, incorrect=0), "v2")
    assert value(m, "xorstream_accuracy_ratio") == 1


def test_rolling_accuracy_forgets_old_batches_but_keeps_the_window() -> None:
    acc = RollingAccuracy(window=100)
    acc.add(0, 100)
    assert acc.ratio == 0
    acc.add(50, 0)  # 150 labelled; dropping the first batch would leave 50 < 100
    assert acc.ratio == pytest.approx(50 / 150)
    acc.add(50, 0)  # dropping the first leaves exactly 100
    assert acc.ratio == 1
    acc.add(0, 0)
    assert acc.ratio == 1


def test_lag_per_partition_and_forgetting_a_revoked_partition() -> None:
    m = StreamMetrics()
    m.set_lag(0, 12)
    m.set_lag(3, -1)  # a stale end offset must not show negative lag
    assert value(m, "xorstream_consumer_lag_records", partition="0") == 12
    assert value(m, "xorstream_consumer_lag_records", partition="3") == 0
    m.forget_partition(0)
    m.forget_partition(5)  # never assigned: no error
    assert value(m, "xorstream_consumer_lag_records", partition="0") is None


def test_gauges_transactions_and_restores() -> None:
    m = StreamMetrics()
    m.set_live_streams(42)
    m.transaction_committed()
    m.transaction_committed()
    m.transaction_aborted("KafkaTimeoutError")
    m.observe_restore(0.3, 1200)
    assert value(m, "xorstream_live_streams") == 42
    assert value(m, "xorstream_transactions_total", outcome="committed") == 2
    assert value(m, "xorstream_transactions_total", outcome="aborted") == 1
    assert value(m, "xorstream_transaction_aborts_total", reason="KafkaTimeoutError") == 1
    assert value(m, "xorstream_state_restore_duration_seconds_count") == 1
    assert value(m, "xorstream_state_restore_duration_seconds_sum") == pytest.approx(0.3)
    assert value(m, "xorstream_state_restore_records_total") == 1200


def test_batch_histogram_matches_the_client_histogram() -> None:
    """Same buckets, same counts and sum as observing each value with prometheus_client."""
    rng = np.random.default_rng(5)
    values_ms = np.concatenate(
        [
            rng.integers(0, 400_000, 3000),
            np.array([0, 1, 2, 5, 10, 1000, 2500, 300_000, 300_001]),  # on and past the bounds
        ]
    )
    ours = BatchHistogram("lat_seconds", "h", LATENCY_BUCKETS_S)
    ours.observe_many_ms(values_ms[:1000].tolist())
    ours.observe_many_ms(values_ms[1000:])
    reg = CollectorRegistry()
    ref = Histogram("ref_seconds", "h", buckets=LATENCY_BUCKETS_S, registry=reg)
    for v in values_ms.tolist():
        ref.observe(v / 1000)
    buckets, total = ours.snapshot()
    for le, count in buckets:
        assert reg.get_sample_value("ref_seconds_bucket", {"le": le}) == count, le
    assert total == pytest.approx(reg.get_sample_value("ref_seconds_sum"))


def test_batch_histogram_counts_clock_skew_as_zero_latency() -> None:
    h = BatchHistogram("lat_seconds", "h", (0.001, 1.0))
    h.observe_many_ms([-50, 0])
    h.observe_many_ms([])
    buckets, total = h.snapshot()
    assert buckets == [("0.001", 2.0), ("1.0", 2.0), ("+Inf", 2.0)]
    assert total == 0


def test_producer_metrics() -> None:
    p = ProducerMetrics()
    p.sent(100)
    p.sent(0)
    p.send_error(3, "KafkaTimeoutError")
    assert value(p, "xorstream_producer_rows_sent_total") == 100
    assert value(p, "xorstream_producer_send_errors_total", reason="KafkaTimeoutError") == 3


def test_serve_port_zero_does_not_serve() -> None:
    assert StreamMetrics().serve(0) == 0
    assert ProducerMetrics().serve(0) == 0


@pytest.mark.parametrize("cls", [StreamMetrics, ProducerMetrics])
def test_serve_exposes_valid_text_format(cls) -> None:
    m = cls()
    port = m.serve(free_port(), addr="127.0.0.1")
    try:
        if isinstance(m, StreamMetrics):
            m.set_model("v1", "numpy")
            m.observe_step(step(rows=5, correct=1, batch_size=1, latencies_ms=[3]), "v1")
        else:
            m.sent(5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        m.close()
    names = {f.name for f in text_string_to_metric_families(body)}
    if isinstance(m, StreamMetrics):
        assert {
            "xorstream_rows_consumed",
            "xorstream_end_to_end_latency_seconds",
            "xorstream_model_info",
            "process_cpu_seconds",
        } <= names
    else:
        assert "xorstream_producer_rows_sent" in names


def test_no_stream_id_labels() -> None:
    """Low cardinality: no metric of the processor has a per-stream label."""
    m = StreamMetrics()
    m.set_model("v1", "numpy")
    for family in m.registry.collect():
        for sample in family.samples:
            assert not {"stream", "stream_id", "key"} & set(sample.labels), sample
