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

from stream.codec import Invalid, Reason, decode_row, encode_prediction
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

    predictions: list[tuple[str, bytes]] = field(default_factory=list)
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


class BatchStep:
    """Turns a polled batch into predictions using per-partition window stores."""

    def __init__(self, predictor: Predictor, clock_ms: Callable[[], int]) -> None:
        self.predictor = predictor
        self.clock_ms = clock_ms

    def run(self, records: list[SourceRecord], stores: dict[int, WindowStore]) -> StepResult:
        """Decode, window, predict once, encode. ``stores`` must hold every record's partition."""
        res = StepResult()
        now = self.clock_ms()
        ready_rows = []
        ready_src = []
        codes = []
        for rec in records:
            part = rec.partition
            res.next_offsets[part] = rec.offset + 1
            row = decode_row(rec.key, rec.value)
            if type(row) is Invalid:
                res.dead_letters.append(
                    DeadLetter(part, rec.offset, rec.key, rec.value, row.reason, row.detail)
                )
                res.dead_reasons[row.reason.value] += 1
                continue
            res.rows += 1
            status = stores[part].push(row.stream, row.seq, row.bits, now)
            if status >= 0:
                codes.append(status)
                ready_rows.append(row)
                ready_src.append((part, rec.offset))
            elif status == DUPLICATE:
                res.duplicates += 1
            elif status == GAP:
                res.gaps += 1
        if not codes:
            return res
        res.batch_size = len(codes)
        t0 = time.perf_counter()
        probs = self.predictor.predict(codes_to_windows(np.fromiter(codes, np.uint32, len(codes))))
        res.inference_seconds = time.perf_counter() - t0
        processed = self.clock_ms()
        version = self.predictor.version
        preds = res.predictions
        res.prediction_partitions = [part for part, _ in ready_src]
        lat = res.latencies_ms
        correct = 0
        labelled = 0
        for row, (part, off), p in zip(ready_rows, ready_src, probs.tolist(), strict=True):
            preds.append(
                (
                    row.stream,
                    encode_prediction(
                        row.stream, row.seq, p, row.y, version, part, off, row.ts, processed
                    ),
                )
            )
            lat.append(processed - row.ts)
            if row.y is not None:
                labelled += 1
                correct += (p >= 0.5) == (row.y == 1)
        res.correct = correct
        res.incorrect = labelled - correct
        return res
