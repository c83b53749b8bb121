"""Pure scoring of a replayed range: the processor's own BatchStep builds the windows.

``Evaluation.feed(records)`` runs ``stream.step.BatchStep`` on each polled batch (so windows, gaps,
duplicates and dead letters are decided by exactly the code the live processor runs), decodes the
predictions it encodes, and folds them into aggregates whose size does not grow with the number of
rows: counters, per-stream tallies, time buckets, a bounded list of differing rows. No Kafka here.

Everything is order-independent across partitions (sums are integers, log-loss is summed in fixed
point, listed rows are the lowest (partition, offset)), so the same range and artifact give the
same report byte for byte, however the broker interleaved the partitions.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from stream.codec import LABELS
from stream.replay.reader import PartitionRange
from stream.replay.recorded import RangeMask, RecordedPredictions, key_crc, source_keys
from stream.step import BatchStep, Predictor
from stream.windows import WindowStore

# a row's y bytes -> label, -1 = none
_LABEL_CODE = {b: -1 if label is None else label for b, label in LABELS.items()}

EPS = 1e-7  # probabilities are clipped for log-loss (recorded p has 6 decimals and can be 0)
LOSS_SCALE = 10**9  # log-loss summed as integers of 1e-9: exact, so order never changes a digit


@dataclass(frozen=True, order=True, slots=True)
class DiffRow:
    """A row where the evaluated model and the recorded prediction disagree on y_hat."""

    partition: int
    offset: int
    stream: str
    seq: int
    y: int | None
    p: float
    recorded_p: float
    recorded_model: str


@dataclass(frozen=True, order=True, slots=True)
class DeadExample:
    partition: int
    offset: int
    reason: str
    detail: str


class _Lowest:
    """Keep the ``limit`` smallest items seen (a bounded max-heap), deterministic in any order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self._heap: list[tuple] = []

    def push(self, key: tuple, item: object) -> None:
        self.seen += 1
        if self.limit <= 0:
            return
        neg = tuple(-k for k in key)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, (neg, item))
        elif neg > self._heap[0][0]:
            heapq.heapreplace(self._heap, (neg, item))

    def items(self) -> list:
        return [item for _, item in sorted(self._heap, reverse=True)]


@dataclass
class Tallies:
    """Counters of one evaluation; all integers so they add up the same in any order."""

    records: int = 0
    rows: int = 0
    warmup_records: int = 0
    windows: int = 0
    labelled: int = 0
    correct: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))  # tn fp fn tp
    loss_fixed: int = 0
    duplicates: int = 0
    gaps: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    joined: int = 0
    agree: int = 0
    key_mismatch: int = 0
    max_abs_p_diff: float = 0.0


class Evaluation:
    """Feed polled input batches; read the aggregates (``report.build_report`` turns them to JSON)."""

    def __init__(
        self,
        predictor: Predictor,
        ranges: list[PartitionRange],
        recorded: RecordedPredictions | None = None,
        max_diffs: int = 50,
        bucket_ms: int = 1000,
    ) -> None:
        self.predictor = predictor
        self.ranges = ranges
        self.recorded = recorded if recorded is not None else RecordedPredictions()
        self.bucket_ms = bucket_ms
        # A constant clock: only the idle TTL reads it, and replay never evicts.
        self.step = BatchStep(predictor, lambda: 0, encode=False)
        self.stores: dict[int, WindowStore] = {r.partition: WindowStore() for r in ranges}
        self.t = Tallies()
        self._start = {r.partition: r.start for r in ranges}
        self._warm = any(r.read_from < r.start for r in ranges)
        self._in_range = RangeMask(ranges)
        self._stream_ix: dict[bytes, int] = {}  # stream id (the Kafka key) -> slot
        self._stream_crc: list[int] = []
        self._stream_correct = np.zeros(0, np.int64)
        self._stream_labelled = np.zeros(0, np.int64)
        self._buckets: dict[
            int, np.ndarray
        ] = {}  # bucket -> [windows, labelled, correct, joined, agree]
        self._matched = np.zeros(len(self.recorded), dtype=bool)
        self.diffs = _Lowest(max_diffs)
        self.dead_examples = _Lowest(max_diffs)
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    # ------------------------------------------------------------------ feeding
    def feed(self, records: list) -> None:
        """Score one batch of input records (any partitions, each partition in offset order)."""
        if self._warm:
            warm = [r for r in records if r.offset < self._start[r.partition]]
            if warm:
                # Warm-up rows only fill the windows; what they produce is not part of the range.
                self.step.run(warm, self.stores)
                self.t.warmup_records += len(warm)
                records = [r for r in records if r.offset >= self._start[r.partition]]
        if not records:
            return
        res = self.step.run(records, self.stores)
        t = self.t
        t.records += len(records)
        t.rows += res.rows
        t.duplicates += res.duplicates
        t.gaps += res.gaps
        t.dead_reasons.update(res.dead_reasons)
        for dl in res.dead_letters:
            self.dead_examples.push(
                (dl.partition, dl.offset),
                DeadExample(dl.partition, dl.offset, dl.reason.value, dl.detail),
            )
        if res.ready:
            self._score(res.ready, res.probabilities)

    def _stream_slots(self, streams: list[bytes]) -> np.ndarray:
        ix = self._stream_ix
        crcs = self._stream_crc
        out = np.empty(len(streams), dtype=np.int64)
        for i, s in enumerate(streams):
            slot = ix.get(s)
            if slot is None:
                slot = ix[s] = len(crcs)
                crcs.append(key_crc(s))
            out[i] = slot
        n = len(crcs)
        if n > self._stream_correct.shape[0]:
            grow = max(n, 2 * self._stream_correct.shape[0], 1024)
            for name in ("_stream_correct", "_stream_labelled"):
                old = getattr(self, name)
                new = np.zeros(grow, np.int64)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        return out

    def _score(
        self, ready: list[tuple[bytes, bytes, bytes, bytes, int, int]], probs: np.ndarray
    ) -> None:
        """Score the windows of one batch from the step's own rows and probabilities (no JSON
        round trip); ``p`` is rounded as the processor publishes it."""
        n = len(ready)
        streams, seq_b, y_b, ts_b, parts, offsets = zip(*ready, strict=True)
        seq = np.fromiter(map(int, seq_b), np.int64, n)
        p = np.round(probs.astype(np.float64), 6)
        y_hat = (probs >= 0.5).astype(np.int8)
        y = np.fromiter(map(_LABEL_CODE.__getitem__, y_b), np.int8, n)
        part = np.fromiter(parts, np.int64, n)
        off = np.fromiter(offsets, np.int64, n)
        ts = np.fromiter(map(int, ts_b), np.int64, n)
        t = self.t
        t.windows += n
        slots = self._stream_slots(streams)
        labelled = y >= 0
        correct = labelled & (y_hat == y)
        t.labelled += int(labelled.sum())
        t.correct += int(correct.sum())
        yl = y[labelled].astype(np.int64)
        t.confusion += np.bincount(yl * 2 + y_hat[labelled], minlength=4)
        pc = np.clip(p[labelled], EPS, 1 - EPS)
        loss = -np.where(yl == 1, np.log(pc), np.log1p(-pc))
        t.loss_fixed += int(np.rint(loss * LOSS_SCALE).astype(np.int64).sum())
        size = self._stream_correct.shape[0]
        self._stream_correct += np.bincount(slots, weights=correct, minlength=size).astype(np.int64)
        self._stream_labelled += np.bincount(slots, weights=labelled, minlength=size).astype(
            np.int64
        )
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

        # Join with the recorded prediction of the same source row.
        rec = self.recorded
        idx = rec.lookup(source_keys(part, off))
        found = idx >= 0
        if found.any():
            crc = np.asarray(self._stream_crc, dtype=np.uint32)[slots]
            same = np.zeros(n, dtype=bool)
            same[found] = (rec.seq[idx[found]] == seq[found]) & (rec.crc[idx[found]] == crc[found])
            t.key_mismatch += int((found & ~same).sum())
            found = same
        joined_ix = idx[found]
        self._matched[joined_ix] = True
        agree = np.zeros(n, dtype=bool)
        agree[found] = rec.y_hat[joined_ix] == y_hat[found]
        t.joined += int(found.sum())
        t.agree += int(agree.sum())
        if found.any():
            diff = float(np.abs(rec.p[joined_ix].astype(np.float64) - p[found]).max())
            t.max_abs_p_diff = max(t.max_abs_p_diff, diff)
        for i in np.flatnonzero(found & ~agree).tolist():
            j = int(idx[i])
            self.diffs.push(
                (int(part[i]), int(off[i])),
                DiffRow(
                    int(part[i]),
                    int(off[i]),
                    streams[i].decode(),
                    int(seq[i]),
                    None if y[i] < 0 else int(y[i]),
                    round(float(p[i]), 6),
                    round(float(rec.p[j]), 6),
                    rec.models[int(rec.model[j])],
                ),
            )

        # Accuracy and agreement over event time.
        bucket = ts // self.bucket_ms
        keys, inv = np.unique(bucket, return_inverse=True)
        cols = np.stack([np.ones(n), labelled, correct, found, agree]).astype(np.int64)
        sums = np.zeros((keys.shape[0], 5), np.int64)
        for c in range(5):
            sums[:, c] = np.bincount(inv, weights=cols[c], minlength=keys.shape[0])
        for k, row in zip(keys.tolist(), sums, strict=True):
            acc = self._buckets.get(k)
            if acc is None:
                self._buckets[k] = row.copy()
            else:
                acc += row

    # ------------------------------------------------------------------ results
    @property
    def accuracy(self) -> float | None:
        return self.t.correct / self.t.labelled if self.t.labelled else None

    @property
    def log_loss(self) -> float | None:
        return self.t.loss_fixed / LOSS_SCALE / self.t.labelled if self.t.labelled else None

    def per_stream(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(stream ids, correct, labelled) in stream-id order."""
        keys = sorted(self._stream_ix)  # ASCII ids: bytes order is str order
        order = np.asarray([self._stream_ix[k] for k in keys], dtype=np.int64)
        names = [k.decode() for k in keys]
        if order.size == 0:
            return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
        return names, self._stream_correct[order], self._stream_labelled[order]

    def buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket start ms, [windows, labelled, correct, joined, agree]) sorted by time."""
        keys = np.asarray(sorted(self._buckets), dtype=np.int64)
        if keys.size == 0:
            return keys, np.zeros((0, 5), np.int64)
        return keys * self.bucket_ms, np.stack([self._buckets[k] for k in keys.tolist()])

    def recorded_without_window(self) -> int:
        """Recorded predictions in range that this replay did not produce a window for."""
        return int((~self._matched).sum())
