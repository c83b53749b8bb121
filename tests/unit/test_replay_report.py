"""Replay report pieces: latency summary, per-stream summary, picture and HTML."""

from __future__ import annotations

import numpy as np

from stream.replay.evaluate import Evaluation
from stream.replay.report import (
    LATENCY_EDGES_MS,
    build_report,
    latency_summary,
    render_html,
    render_png,
)
from tests.unit.test_replay_evaluate import (
    Coin,
    Perfect,
    feed_interleaved,
    make_input,
    ranges_of,
    recorded_from,
)


def test_latency_summary_uses_observed_values_and_fixed_bins():
    lat = np.asarray([3, 3, 7, 12, 250, 70000], dtype=np.int64)
    s = latency_summary(lat)
    assert (s["count"], s["min"], s["p50"], s["max"]) == (6, 3, 7, 70000)
    counts = s["histogram"]["counts"]
    assert len(counts) == len(LATENCY_EDGES_MS) and sum(counts) == 6
    assert counts[-1] == 1  # >= 60 s
    assert latency_summary(np.zeros(0, np.int64))["count"] == 0


def test_report_picture_and_html():
    recs = make_input()
    ev = Evaluation(Coin(), ranges_of(recs), recorded_from(recs, Perfect()), bucket_ms=20)
    feed_interleaved(ev, recs)
    report = build_report(ev, {"input_topic": "in", "model": {"version": "coin"}})
    series = report["accuracy_over_time"]
    assert 1 < len(series["points"]) <= 240
    assert sum(p["windows"] for p in series["points"]) == report["windows_scored"]
    worst = report["per_stream_accuracy"]["worst"]
    assert [w["accuracy"] for w in worst] == sorted(w["accuracy"] for w in worst)
    png = render_png(report)
    assert png.startswith(b"\x89PNG")
    assert render_png(report) == png  # same report, same picture
    html = render_html(report, png)
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    assert "src='http" not in html  # self-contained


def test_empty_range_report():
    ev = Evaluation(Perfect(), [])
    report = build_report(ev, {"input_topic": "in", "model": {"version": "v"}})
    assert report["windows_scored"] == 0 and report["accuracy"] is None
    assert report["agreement"]["rate"] is None
    assert render_png(report).startswith(b"\x89PNG")
