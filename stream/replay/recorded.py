"""Recorded predictions of one input range, held compactly and found by their source row.

Every prediction names its source row in the input topic (``partition``, ``offset``), so the join
key is that coordinate: exact even when a stream id repeats across runs. ``seq`` and a CRC of the
stream id are kept to check that a coordinate really names the same row (a predictions topic fed
from another input topic would otherwise join silently). About 40 bytes per prediction in range;
predictions outside the range are counted and dropped as they are read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from stream.codec import decode_prediction
from stream.replay.reader import PartitionRange

OFFSET_BITS = 40


def source_keys(partitions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(partition, offset) -> one sortable int64 key."""
    return (partitions.astype(np.int64) << OFFSET_BITS) | offsets.astype(np.int64)


def key_crc(key: bytes) -> int:
    """A stream's 32-bit fingerprint, from its id's UTF-8 bytes (the Kafka key)."""
    return zlib.crc32(key)


def stream_crc(stream: str) -> int:
    return key_crc(stream.encode())


class RangeMask:
    """Vectorised "is (partition, offset) inside [start, end)" for a list of partition ranges."""

    def __init__(self, ranges: list[PartitionRange]) -> None:
        size = max((r.partition for r in ranges), default=-1) + 1
        self.start = np.zeros(size, dtype=np.int64)
        self.end = np.zeros(size, dtype=np.int64)  # end == start: partition not in range
        for r in ranges:
            self.start[r.partition] = r.start
            self.end[r.partition] = r.end

    def __call__(self, partitions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        known = (partitions >= 0) & (partitions < self.start.shape[0])
        part = np.where(known, partitions, 0)
        return known & (offsets >= self.start[part]) & (offsets < self.end[part])


@dataclass
class RecordedPredictions:
    """Sorted, de-duplicated recorded predictions of the range; ``lookup`` joins by source key."""

    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    p: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    y_hat: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    model: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    models: list[str] = field(default_factory=list)
    topic: str = ""
    read: int = 0  # prediction records read from the topic
    outside_range: int = 0
    duplicates: int = 0
    unreadable: int = 0

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Index of each key's recorded prediction, -1 where none was recorded."""
        if len(self) == 0:
            return np.full(keys.shape[0], -1, dtype=np.int64)
        idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, len(self) - 1)
        return np.where(self.keys[idx] == keys, idx, -1)

    def model_counts(self) -> dict[str, int]:
        counts = np.bincount(self.model, minlength=len(self.models)) if len(self) else []
        return {m: int(c) for m, c in zip(self.models, counts, strict=False) if c}

    @classmethod
    def collect(
        cls, batches: Iterable[list], ranges: list[PartitionRange], topic: str = ""
    ) -> RecordedPredictions:
        """Read prediction records (with .value, .partition, .offset) and keep those in range."""
        mask = RangeMask(ranges)
        model_index: dict[str, int] = {}
        parts: list[np.ndarray] = []
        out = cls(topic=topic)
        for batch in batches:
            cols: dict[str, list] = {
                k: [] for k in ("sp", "so", "seq", "crc", "p", "yh", "lat", "m", "pp", "po")
            }
            for rec in batch:
                out.read += 1
                try:
                    d = decode_prediction(rec.value)
                    row = (
                        int(d["partition"]),
                        int(d["offset"]),
                        int(d["seq"]),
                        stream_crc(d["stream"]),
                        float(d["p"]),
                        int(d["y_hat"]),
                        int(d["processed_ts"]) - int(d["ts"]),
                        model_index.setdefault(str(d["model"]), len(model_index)),
                    )
                except (ValueError, TypeError, KeyError, AttributeError):
                    out.unreadable += 1
                    continue
                for name, value in zip(
                    ("sp", "so", "seq", "crc", "p", "yh", "lat", "m"), row, strict=True
                ):
                    cols[name].append(value)
                cols["pp"].append(rec.partition)
                cols["po"].append(rec.offset)
            if not cols["sp"]:
                continue
            sp = np.asarray(cols["sp"], dtype=np.int64)
            so = np.asarray(cols["so"], dtype=np.int64)
            inside = mask(sp, so)
            out.outside_range += int((~inside).sum())
            parts.append(
                np.rec.fromarrays(
                    [
                        source_keys(sp, so)[inside],
                        np.asarray(cols["pp"], np.int64)[inside],
                        np.asarray(cols["po"], np.int64)[inside],
                        np.asarray(cols["seq"], np.int64)[inside],
                        np.asarray(cols["crc"], np.uint32)[inside],
                        np.asarray(cols["p"], np.float32)[inside],
                        np.asarray(cols["yh"], np.int8)[inside],
                        np.asarray(cols["lat"], np.int64)[inside],
                        np.asarray(cols["m"], np.int16)[inside],
                    ],
                    names="key,pp,po,seq,crc,p,yh,lat,m",
                )
            )
        out.models = sorted(model_index, key=model_index.__getitem__)
        if not parts:
            return out
        allrec = np.concatenate(parts)
        del parts
        # Sort by source key, then by where the prediction was recorded: "first" is well defined,
        # so a duplicated prediction (at-least-once redelivery) resolves the same way every run.
        order = np.lexsort((allrec["po"], allrec["pp"], allrec["key"]))
        allrec = allrec[order]
        first = np.ones(allrec.shape[0], dtype=bool)
        first[1:] = allrec["key"][1:] != allrec["key"][:-1]
        out.duplicates = int((~first).sum())
        allrec = allrec[first]
        out.keys = np.ascontiguousarray(allrec["key"])
        out.seq = np.ascontiguousarray(allrec["seq"])
        out.crc = np.ascontiguousarray(allrec["crc"])
        out.p = np.ascontiguousarray(allrec["p"])
        out.y_hat = np.ascontiguousarray(allrec["yh"])
        out.latency_ms = np.ascontiguousarray(allrec["lat"])
        out.model = np.ascontiguousarray(allrec["m"])
        return out
