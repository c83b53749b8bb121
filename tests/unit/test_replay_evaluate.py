"""Pure replay scoring: windows from BatchStep, metrics against a plain reference, determinism."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.data import window_labels
from producer.generator import RowGenerator
from stream.codec import encode_prediction, encode_row
from stream.replay.evaluate import Evaluation
from stream.replay.reader import PartitionRange
from stream.replay.recorded import RecordedPredictions
from stream.replay.report import build_report, to_json
from stream.step import BatchStep
from stream.windows import WindowStore


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple = ()


class Perfect:
    version = "perfect"

    def predict(self, windows):
        return (window_labels(windows) * 0.98 + 0.01).astype(np.float32)


class Coin:
    """A wrong model: y_hat is x1 of the last row (right half the time)."""

    version = "coin"

    def predict(self, windows):
        return (windows[:, -1, 0] * 0.8 + 0.1).astype(np.float32)


def make_input(streams=6, rows=40, partitions=2, seed=3, bad_every=17):
    """Records of ``partitions`` partitions, stream i in partition i % partitions, plus bad ones."""
    gen = RowGenerator(streams, seed)
    c = gen.chunk(streams * rows)
    out: dict[int, list[Rec]] = {p: [] for p in range(partitions)}
    for i, (s, seq, x, y) in enumerate(
        zip(c.stream.tolist(), c.seq.tolist(), c.x.tolist(), c.y.tolist(), strict=True)
    ):
        part = s % partitions
        name = gen.ids[s]
        value = encode_row(name, seq, x, None if y < 0 else y, 1_000_000 + i * 10)
        out[part].append(Rec(part, len(out[part]), name.encode(), value))
        if i % bad_every == 0:
            out[part].append(Rec(part, len(out[part]), name.encode(), b"{oops"))
    return out


def ranges_of(recs: dict[int, list[Rec]]) -> list[PartitionRange]:
    return [PartitionRange(p, 0, len(r), 0) for p, r in sorted(recs.items())]


def recorded_from(recs, predictor, flip_every=0) -> RecordedPredictions:
    """What a processor would have recorded, optionally with every n-th y_hat flipped."""
    step = BatchStep(predictor, lambda: 0)  # as the processor runs it: predictions encoded
    stores = {part: WindowStore() for part in recs}
    preds = []
    n = 0
    for part, rs in recs.items():
        res = step.run(rs, stores)
        for key, value in res.predictions:
            d = json.loads(value)
            stream = key.decode()
            p = d["p"]
            if flip_every and n % flip_every == 0:
                p = 1 - p
            n += 1
            v = encode_prediction(
                stream, d["seq"], p, d["y"], "recorded-v1", part, d["offset"], d["ts"], d["ts"] + 7
            )
            preds.append(Rec(0, len(preds), stream.encode(), v))
    preds.append(Rec(0, len(preds), b"x", b"garbage"))
    return RecordedPredictions.collect([preds], ranges_of(recs), "preds")


def feed_interleaved(ev, recs, batch=7):
    """Feed partitions interleaved in batches of ``batch`` records (as a poll might)."""
    iters = {p: list(r) for p, r in recs.items()}
    while any(iters.values()):
        out = []
        for p in sorted(iters):
            out.extend(iters[p][:batch])
            iters[p] = iters[p][batch:]
        ev.feed(out)


def reference(recs, predictor):
    """Plain per-stream windows and metrics, no WindowStore, no BatchStep."""
    ys, ps = [], []
    for rs in recs.values():
        history: dict[str, list] = {}
        for r in rs:
            try:
                row = json.loads(r.value)
            except ValueError:
                continue
            h = history.setdefault(row["stream"], [])
            h.append(row["x"])
            if len(h) >= 5:
                ys.append(row["y"])
                ps.append(float(predictor.predict(np.asarray([h[-5:]], np.uint8))[0]))
    ys, ps = np.asarray(ys), np.asarray(ps)
    acc = float(((ps >= 0.5) == (ys == 1)).mean())
    pc = np.clip(np.round(ps, 6), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(np.where(ys == 1, np.log(pc), np.log(1 - pc))))
    return len(ys), acc, loss


def test_perfect_model_accuracy_agreement_and_dead_letters():
    recs = make_input()
    recorded = recorded_from(recs, Perfect())
    ev = Evaluation(Perfect(), ranges_of(recs), recorded)
    feed_interleaved(ev, recs)
    r = build_report(ev, {"model": {"version": "perfect"}})
    n, acc, loss = reference(recs, Perfect())
    assert r["windows_scored"] == n == 6 * (40 - 4)
    assert r["accuracy"] == acc == 1.0
    assert math.isclose(r["log_loss"], loss, abs_tol=1e-6)
    assert r["agreement"]["joined"] == r["agreement"]["agree"] == n
    assert r["recorded"]["unreadable"] == 1
    assert r["recorded"]["models"] == {"recorded-v1": n}
    assert r["latency_ms"]["p50"] == r["latency_ms"]["max"] == 7
    assert r["dead_letters"]["total"] == r["dead_letters"]["by_reason"]["not_json"] > 0
    assert r["per_stream_accuracy"]["streams_scored"] == 6


def test_wrong_model_matches_reference_and_lists_first_diffs():
    recs = make_input()
    recorded = recorded_from(recs, Perfect())
    ev = Evaluation(Coin(), ranges_of(recs), recorded, max_diffs=4)
    feed_interleaved(ev, recs, batch=5)
    r = build_report(ev, {"model": {"version": "coin"}})
    n, acc, loss = reference(recs, Coin())
    assert r["accuracy"] == round(acc, 6) and 0.2 < acc < 0.8
    assert math.isclose(r["log_loss"], loss, abs_tol=1e-6)
    c = r["confusion"]
    assert c["tn"] + c["fp"] + c["fn"] + c["tp"] == n
    a = r["agreement"]
    assert a["agree"] == c["tn"] + c["tp"]
    assert len(a["rows"]) == 4 and a["rows_truncated"]
    coords = [(d["partition"], d["offset"]) for d in a["rows"]]
    assert coords == sorted(coords)
    assert coords[0][0] == 0


def test_flipped_recorded_predictions_are_found():
    recs = make_input()
    recorded = recorded_from(recs, Perfect(), flip_every=10)
    ev = Evaluation(Perfect(), ranges_of(recs), recorded, max_diffs=100)
    feed_interleaved(ev, recs)
    a = build_report(ev, {"model": {}})["agreement"]
    assert a["differ"] == math.ceil(a["joined"] / 10)
    assert len(a["rows"]) == a["differ"]


def test_gaps_and_duplicates_are_counted():
    rows = [(0, 0), (1, 0), (2, 1), (2, 1), (3, 0), (9, 1), (10, 0)]  # dup at 2, gap before 9
    recs = {
        0: [
            Rec(0, i, b"a", encode_row("a", seq, [x1, 0, 0, 0], None, 5))
            for i, (seq, x1) in enumerate(rows)
        ]
    }
    ev = Evaluation(Perfect(), ranges_of(recs))
    ev.feed(recs[0])
    r = build_report(ev, {"model": {}})
    assert r["sequence"] == {"gaps": 1, "duplicates": 1}
    assert r["windows_scored"] == 0
    assert r["accuracy"] is None


def test_warmup_rows_fill_windows_but_are_not_scored():
    recs = make_input(streams=2, rows=30, partitions=1, bad_every=1000)
    start = 10
    ranges = [PartitionRange(0, start, len(recs[0]), 0)]
    ev = Evaluation(Perfect(), ranges)
    ev.feed(recs[0])
    assert ev.t.warmup_records == start
    assert ev.t.records == len(recs[0]) - start
    assert ev.t.windows == len(recs[0]) - start  # every stream already had 4+ rows


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 50), st.integers(1, 50), st.booleans())
def test_report_does_not_depend_on_batching(batch_a, batch_b, flip):
    recs = make_input(streams=5, rows=25, partitions=3)
    recorded = recorded_from(recs, Perfect(), flip_every=3 if flip else 0)
    reports = []
    for batch in (batch_a, batch_b):
        ev = Evaluation(Coin(), ranges_of(recs), recorded, max_diffs=3, bucket_ms=50)
        feed_interleaved(ev, recs, batch=batch)
        reports.append(to_json(build_report(ev, {"model": {}})))
    assert reports[0] == reports[1]
