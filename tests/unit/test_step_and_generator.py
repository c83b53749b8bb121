"""The batch step with the real NumPy predictor, and the producer's row generator."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from model.data import stream_labels
from model.predictor import load_predictor
from producer.generator import RowGenerator
from stream.codec import encode_prediction, encode_row
from stream.step import BatchStep
from stream.windows import WindowStore


@dataclass
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class CountingPredictor:
    """The real predictor, counting calls: the step must call it once per batch."""

    def __init__(self) -> None:
        self.inner = load_predictor()
        self.version = self.inner.version
        self.calls: list[int] = []

    def predict(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        return self.inner.predict(windows)


def _records(gen: RowGenerator, n: int) -> list[Rec]:
    c = gen.chunk(n)
    return [
        Rec(0, i, gen.ids[s].encode(), encode_row(gen.ids[s], q, x, None if y < 0 else y, 1))
        for i, (s, q, x, y) in enumerate(
            zip(c.stream.tolist(), c.seq.tolist(), c.x.tolist(), c.y.tolist(), strict=True)
        )
    ]


def test_one_predictor_call_per_batch_and_every_prediction_right():
    pred = CountingPredictor()
    step = BatchStep(pred, lambda: 10)
    gen = RowGenerator(50, seed=1)
    stores = {0: WindowStore()}
    recs = _records(gen, 3000)
    res = step.run(recs, stores)
    assert pred.calls == [len(res.predictions)]
    assert len(res.predictions) == 3000 - 4 * 50
    assert res.incorrect == 0 and res.correct == len(res.predictions)
    assert res.next_offsets == {0: 3000}
    for stream, value in res.predictions:
        p = json.loads(value)
        assert p["stream"] == stream.decode() and p["y_hat"] == p["y"]


def test_bad_records_become_dead_letters_without_stopping_the_batch():
    step = BatchStep(CountingPredictor(), lambda: 10)
    recs = [Rec(0, i, b"s", encode_row("s", i, [1, 0, 0, 0], None, 1)) for i in range(5)]
    recs.insert(2, Rec(0, 99, b"s", b"garbage"))
    res = step.run(recs, {0: WindowStore()})
    assert [d.reason.value for d in res.dead_letters] == ["not_json"]
    assert len(res.predictions) == 1


def test_fast_path_writes_exactly_what_encode_prediction_writes():
    """Canonical rows skip the JSON parser and reuse their own bytes; a row in another JSON
    layout (spaces, other key order) goes the slow way: both must give encode_prediction's bytes."""
    pred = load_predictor()
    step = BatchStep(pred, lambda: 1764800000123)
    rows = [(i, [i & 1, 1, 0, (i >> 1) & 1], None if i < 4 else i & 1) for i in range(8)]
    recs = []
    for i, (seq, x, y) in enumerate(rows):
        if i % 2:
            value = encode_row("s-1", seq, x, y, 1764800000000 + seq)
        else:  # valid, but not the canonical layout
            value = json.dumps(
                {"ts": 1764800000000 + seq, "y": y, "x": x, "seq": seq, "stream": "s-1"}
            ).encode()
        recs.append(Rec(3, 100 + i, b"s-1", value))
    res = step.run(recs, {3: WindowStore()})
    assert len(res.predictions) == 4
    for key, value in res.predictions:
        d = json.loads(value)
        seq = d["seq"]
        want = encode_prediction(
            "s-1",
            seq,
            d["p"],
            rows[seq][2],
            pred.version,
            3,
            100 + seq,
            1764800000000 + seq,
            1764800000123,
        )
        assert key == b"s-1" and value == want


@pytest.mark.parametrize("rows_per_stream", [None, 37])
def test_generator_labels_follow_the_rule_across_chunks(rows_per_stream):
    gen = RowGenerator(7, seed=5, rows_per_stream=rows_per_stream)
    chunks = [gen.chunk(n) for n in (1, 13, 100, 200)]
    stream = np.concatenate([c.stream for c in chunks])
    seq = np.concatenate([c.seq for c in chunks])
    x1 = np.concatenate([c.x[:, 0] for c in chunks])
    y = np.concatenate([c.y for c in chunks])
    for s in range(7):
        mask = stream == s
        assert seq[mask].tolist() == list(range(mask.sum()))
        assert y[mask].tolist() == stream_labels(x1[mask]).tolist()
    if rows_per_stream:
        assert len(stream) == 7 * rows_per_stream
        assert np.bincount(stream).tolist() == [rows_per_stream] * 7


def test_generator_is_reproducible():
    a, b = RowGenerator(10, seed=3).chunk(500), RowGenerator(10, seed=3).chunk(500)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.stream, b.stream)


def test_unencoded_step_gives_the_same_rows_and_probabilities():
    """Replay's step (encode=False) scores from ``ready`` and ``probabilities``: they must be the
    rows and probabilities behind the encoded predictions, in the same order."""
    pred = load_predictor()
    recs = _records(RowGenerator(20, seed=4), 600)
    enc = BatchStep(pred, lambda: 10).run(recs, {0: WindowStore()})
    raw = BatchStep(pred, lambda: 10, encode=False).run(recs, {0: WindowStore()})
    assert raw.predictions == [] and len(raw.ready) == len(enc.predictions) == 600 - 4 * 20
    for (key, seq_b, y_b, ts_b, part, off), p, (_, value) in zip(
        raw.ready, raw.probabilities.tolist(), enc.predictions, strict=True
    ):
        d = json.loads(value)
        assert (key.decode(), int(seq_b), json.loads(y_b), int(ts_b), part, off) == (
            d["stream"],
            d["seq"],
            d["y"],
            d["ts"],
            d["partition"],
            d["offset"],
        )
        assert f"{p:.6f}" == f"{d['p']:.6f}"
