"""Synthetic input rows: random 4-bit rows for many streams, interleaved at random.

Pure and vectorised: a chunk of rows is drawn at once, each stream keeps its own sequence, and the
labels come from ``model.data.stream_labels`` (the one definition of the rule), continued across
chunks with the last WINDOW-1 x1 bits of each stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.data import WINDOW, random_rows, stream_labels


@dataclass(frozen=True)
class Chunk:
    """``n`` rows: stream index, seq, bits [n, 4] and label (-1 = none yet), in emit order."""

    stream: np.ndarray
    seq: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.stream)


class RowGenerator:
    """Rows of ``streams`` independent streams named ``{prefix}{i}``, seeded and reproducible."""

    def __init__(
        self, streams: int, seed: int = 0, prefix: str = "s-", rows_per_stream: int | None = None
    ) -> None:
        """With ``rows_per_stream``, every stream gets exactly that many rows, shuffled together."""
        if streams < 1:
            raise ValueError("need at least one stream")
        self.rng = np.random.default_rng(seed)
        self._schedule: np.ndarray | None = None
        self._cursor = 0
        if rows_per_stream is not None:
            self._schedule = self.rng.permutation(np.repeat(np.arange(streams), rows_per_stream))
        self.ids = [f"{prefix}{i}" for i in range(streams)]
        self.next_seq = np.zeros(streams, dtype=np.int64)
        self._tail: list[np.ndarray] = [np.zeros(0, dtype=np.uint8) for _ in range(streams)]

    def chunk(self, n: int) -> Chunk:
        """The next ``n`` rows, each from a stream picked uniformly at random."""
        if self._schedule is None:
            idx = self.rng.integers(0, len(self.ids), size=n)
        else:
            idx = self._schedule[self._cursor : self._cursor + n]
            self._cursor += len(idx)
            n = len(idx)
        x = random_rows(n, self.rng)
        seq = np.empty(n, dtype=np.int64)
        y = np.empty(n, dtype=np.int8)
        order = np.argsort(idx, kind="stable")
        streams, starts, counts = np.unique(idx[order], return_index=True, return_counts=True)
        for s, start, cnt in zip(streams.tolist(), starts.tolist(), counts.tolist(), strict=True):
            pos = order[start : start + cnt]
            seq[pos] = self.next_seq[s] + np.arange(cnt)
            tail = self._tail[s]
            x1 = np.concatenate([tail, x[pos, 0]])
            y[pos] = stream_labels(x1)[len(tail) :]
            self._tail[s] = x1[-(WINDOW - 1) :].copy()
            self.next_seq[s] += cnt
        return Chunk(idx, seq, x, y)
