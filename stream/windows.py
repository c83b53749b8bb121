"""Per-stream rolling windows, packed small enough for a million live streams.

A window is the last ``WINDOW`` rows of a stream packed into one 20-bit integer *code*: each
new row shifts in 4 bits, so code bit ``19 - (r*4 + f)`` is row ``r`` (oldest first), feature
``f`` -- the same order as ``model.data.all_windows()``. State per stream is the last seq, the
code, how many consecutive rows it holds (at most WINDOW) and the wall-clock time of its last
update (for the idle TTL), kept in flat ``array.array`` columns indexed by a slot number.
Streams are keyed by their id's UTF-8 bytes, the Kafka key itself: no decoding per row, and a
bytes key is 16 bytes smaller than a str.

Pure: no Kafka here. ``encode_state``/``decode_state`` give the changelog value of a stream.
"""

from __future__ import annotations

import struct
from array import array

import numpy as np

from model.data import N_FEATURES, WINDOW

CODE_MASK = (1 << (WINDOW * N_FEATURES)) - 1

# push() outcomes that are not a window code (codes are >= 0).
NOT_READY = -1
DUPLICATE = -2
GAP = -3

_STATE = struct.Struct(">BqIBq")  # version, last_seq, code, count, last_update_ms
_STATE_VERSION = 1


def encode_state(last_seq: int, code: int, count: int, updated_ms: int) -> bytes:
    """Changelog value of one stream's window state (22 bytes)."""
    return _STATE.pack(_STATE_VERSION, last_seq, code, count, updated_ms)


def decode_state(value: bytes) -> tuple[int, int, int, int]:
    """Inverse of ``encode_state``; ValueError on a value this version cannot read."""
    if len(value) != _STATE.size or value[0] != _STATE_VERSION:
        raise ValueError(f"unreadable window state ({len(value)} bytes)")
    _, last_seq, code, count, updated = _STATE.unpack(value)
    return last_seq, code, count, updated


def codes_to_windows(codes: np.ndarray) -> np.ndarray:
    """Window codes -> uint8 [n, WINDOW, N_FEATURES] bits, vectorised."""
    codes = np.asarray(codes, dtype=np.uint32)
    shifts = np.arange(WINDOW * N_FEATURES - 1, -1, -1, dtype=np.uint32)
    bits = ((codes[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return bits.reshape(-1, WINDOW, N_FEATURES)


class WindowStore:
    """Rolling windows of the streams of one input partition."""

    __slots__ = ("_slot", "_ids", "_seq", "_code", "_count", "_updated", "_free", "_dirty")

    def __init__(self) -> None:
        self._slot: dict[bytes, int] = {}
        self._ids: list[bytes | None] = []
        self._seq = array("q")
        self._code = array("I")
        self._count = array("B")
        self._updated = array("q")
        self._free: list[int] = []
        self._dirty: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._slot)

    def _new_slot(self, stream: bytes) -> int:
        if self._free:
            slot = self._free.pop()
            self._ids[slot] = stream
        else:
            slot = len(self._ids)
            self._ids.append(stream)
            self._seq.append(-1)
            self._code.append(0)
            self._count.append(0)
            self._updated.append(0)
        self._slot[stream] = slot
        return slot

    def push(self, stream: bytes, seq: int, bits: int, now_ms: int) -> int:
        """Add row ``seq`` of ``stream``; return its window code when full, else a status.

        A seq at or below the last one seen is a DUPLICATE and changes nothing. A seq that skips
        ahead is a GAP: the window restarts from this row, so no prediction ever spans a gap.
        The first row seen of a stream starts its window, whatever its seq.
        """
        slot = self._slot.get(stream)
        if slot is None:
            slot = self._new_slot(stream)
            count = 0
            code = 0
            status = NOT_READY
        else:
            last = self._seq[slot]
            if seq <= last:
                return DUPLICATE
            if seq == last + 1:
                count = self._count[slot]
                code = self._code[slot]
                status = NOT_READY
            else:
                count = 0
                code = 0
                status = GAP
        code = ((code << N_FEATURES) | bits) & CODE_MASK
        count = count + 1 if count < WINDOW else WINDOW
        self._seq[slot] = seq
        self._code[slot] = code
        self._count[slot] = count
        self._updated[slot] = now_ms
        self._dirty.add(stream)
        if count == WINDOW:
            return code
        return status

    def state_of(self, stream: bytes) -> tuple[int, int, int, int] | None:
        """(last_seq, code, count, updated_ms) of a stream, or None if it has no state."""
        slot = self._slot.get(stream)
        if slot is None:
            return None
        return self._seq[slot], self._code[slot], self._count[slot], self._updated[slot]

    def restore(self, stream: bytes, value: bytes | None) -> None:
        """Apply one changelog record (None = tombstone) without marking it dirty."""
        slot = self._slot.get(stream)
        if value is None:
            if slot is not None:
                self._drop(stream, slot)
            return
        last_seq, code, count, updated = decode_state(value)
        if slot is None:
            slot = self._new_slot(stream)
        self._seq[slot] = last_seq
        self._code[slot] = code
        self._count[slot] = count
        self._updated[slot] = updated

    def _drop(self, stream: bytes, slot: int) -> None:
        del self._slot[stream]
        self._ids[slot] = None
        self._seq[slot] = -1
        self._count[slot] = 0
        self._free.append(slot)

    def evict_idle(self, now_ms: int, ttl_ms: int) -> list[bytes]:
        """Forget streams not updated for ``ttl_ms``; they get a tombstone in the next changes."""
        if not self._slot:
            return []
        updated = np.frombuffer(self._updated, dtype=np.int64)
        live = np.frombuffer(self._seq, dtype=np.int64) >= 0
        idle = np.flatnonzero(live & (updated < now_ms - ttl_ms))
        del updated, live  # release the buffer views before arrays may grow again
        evicted = []
        for slot in idle.tolist():
            stream = self._ids[slot]
            if stream is not None:
                self._drop(stream, slot)
                self._dirty.add(stream)
                evicted.append(stream)
        return evicted

    def drain_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog records for every stream changed since the last drain (None = tombstone)."""
        out: list[tuple[bytes, bytes | None]] = []
        for stream in self._dirty:
            slot = self._slot.get(stream)
            if slot is None:
                out.append((stream, None))
            else:
                out.append(
                    (
                        stream,
                        _STATE.pack(
                            _STATE_VERSION,
                            self._seq[slot],
                            self._code[slot],
                            self._count[slot],
                            self._updated[slot],
                        ),
                    )
                )
        self._dirty.clear()
        return out

    def discard_changes(self) -> None:
        """Forget pending changes (used when the state itself is thrown away)."""
        self._dirty.clear()
