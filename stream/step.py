"""The batch step: records in -> (predictions, dead letters, stats) out, state changed in place.

Pure: no Kafka imports. Every window that becomes ready in one batch, across all streams, goes
through ONE predictor call, so the model cost is paid per batch, not per row.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from stream.codec import (
    BITS,
    LABEL_BYTES,
    Invalid,
    Reason,
    decode_row,
    match_canonical,
    prediction_template,
)
from stream.windows import DUPLICATE, GAP, WindowStore, codes_to_windows


class SourceRecord(Protocol):
    """What the step needs of a consumed record (kafka-python's ConsumerRecord fits)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Predictor(Protocol):
    version: str

    def predict(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(slots=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: Reason
    detail: str


@dataclass(slots=True)
class StepResult:
    """What one batch produced. ``next_offsets`` maps partition -> the NEXT offset to read."""

    predictions: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    prediction_partitions: list[int] = field(default_factory=list)  # source partition of each
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    duplicates: int = 0
    gaps: int = 0
    correct: int = 0
    incorrect: int = 0
    batch_size: int = 0
    inference_seconds: float = 0.0
    latencies_ms: list[int] = field(default_factory=list)
    dead_reasons: Counter[str] = field(default_factory=Counter)
    # Each prediction's source row (stream key, seq, y, ts as their JSON bytes; partition,
    # offset) and its probability, in the order of ``predictions``.
    ready: list[tuple[bytes, bytes, bytes, bytes, int, int]] = field(default_factory=list)
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


class BatchStep:
    """Turns a polled batch into predictions using per-partition window stores."""

    def __init__(
        self, predictor: Predictor, clock_ms: Callable[[], int], encode: bool = True
    ) -> None:
        """``encode=False`` (replay): results carry ``ready`` and ``probabilities`` only, and
        ``predictions``, ``prediction_partitions``, ``latencies_ms``, ``correct`` and
        ``incorrect`` stay empty; the caller scores the rows itself."""
        self.predictor = predictor
        self.clock_ms = clock_ms
        self.encode = encode

    def run(self, records: list[SourceRecord], stores: dict[int, WindowStore]) -> StepResult:
        """Decode, window, predict once, encode. ``stores`` must hold every record's partition.

        The hot path of the processor and of replay (a few microseconds a row matter: the
        Kafka client itself costs about 20), so it is one loop with its lookups hoisted: a
        canonical value (``codec.match_canonical``) is taken apart without building a row object
        and its seq, label and ts bytes go into the prediction as they came; anything else goes
        through ``decode_row``, which validates it and names what is wrong.
        """
        res = StepResult()
        now = self.clock_ms()
        ready = res.ready  # key, seq, y, ts (bytes), partition, offset
        codes: list[int] = []
        match = match_canonical
        bits_of = BITS
        next_offsets = res.next_offsets
        part = -1
        push = None
        rows = duplicates = gaps = 0
        for rec in records:
            if rec.partition != part:
                part = rec.partition
                push = stores[part].push
            offset = rec.offset
            next_offsets[part] = offset + 1
            key = rec.key
            value = rec.value
            m = match(value) if key and value is not None else None
            if m is not None:
                stream_b, seq_b, x_b, y_b, ts_b = m.groups()
            if m is not None and stream_b == key:
                status = push(key, int(seq_b), bits_of[x_b], now)
            else:
                row = decode_row(key, value)
                if type(row) is Invalid:
                    res.dead_letters.append(
                        DeadLetter(part, offset, key, value, row.reason, row.detail)
                    )
                    res.dead_reasons[row.reason.value] += 1
                    continue
                seq_b, y_b, ts_b = b"%d" % row.seq, LABEL_BYTES[row.y], b"%d" % row.ts
                status = push(key, row.seq, row.bits, now)
            rows += 1
            if status >= 0:
                codes.append(status)
                ready.append((key, seq_b, y_b, ts_b, part, offset))
            elif status == DUPLICATE:
                duplicates += 1
            elif status == GAP:
                gaps += 1
        res.rows, res.duplicates, res.gaps = rows, duplicates, gaps
        if not codes:
            return res
        res.batch_size = len(codes)
        t0 = time.perf_counter()
        probs = self.predictor.predict(codes_to_windows(np.fromiter(codes, np.uint32, len(codes))))
        res.inference_seconds = time.perf_counter() - t0
        res.probabilities = probs
        if not self.encode:
            return res
        processed = self.clock_ms()
        template = prediction_template(self.predictor.version, processed)
        preds = res.predictions
        parts = res.prediction_partitions
        lat = res.latencies_ms
        correct = labelled = 0
        for (key, seq_b, y_b, ts_b, part, offset), p in zip(ready, probs.tolist(), strict=True):
            y_hat = p >= 0.5
            preds.append(
                (
                    key,
                    template % (key, seq_b, p, y_hat, y_b, part, offset, ts_b),
                )
            )
            parts.append(part)
            lat.append(processed - int(ts_b))
            if y_b != b"null":
                labelled += 1
                correct += y_hat == (y_b == b"1")
        res.correct = correct
        res.incorrect = labelled - correct
        return res
