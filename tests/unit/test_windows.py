"""WindowStore against a plain reference implementation, and the changelog codec."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.data import WINDOW, label_or_none
from stream.windows import (
    DUPLICATE,
    GAP,
    NOT_READY,
    WindowStore,
    codes_to_windows,
    decode_state,
    encode_state,
)


class Reference:
    """The obvious implementation: a list of (seq, bits) per stream."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, int]]] = {}

    def push(self, stream: str, seq: int, bits: int):
        rows = self.rows.setdefault(stream, [])
        if rows and seq <= rows[-1][0]:
            return "dup"
        gap = bool(rows) and seq != rows[-1][0] + 1
        if gap:
            rows.clear()
        rows.append((seq, bits))
        if len(rows) >= WINDOW:
            return [b for _, b in rows[-WINDOW:]]
        return "gap" if gap else None


events = st.lists(
    st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.integers(0, 12), st.integers(0, 15)),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_store_matches_reference(evts):
    store, ref = WindowStore(), Reference()
    for stream, seq, bits in evts:
        got = store.push(stream, seq, bits, 0)
        want = ref.push(stream, seq, bits)
        if want == "dup":
            assert got == DUPLICATE
        elif want == "gap":
            assert got == GAP
        elif want is None:
            assert got == NOT_READY
        else:
            window = codes_to_windows(np.array([got]))[0]
            rows = [(r[0] << 3) | (r[1] << 2) | (r[2] << 1) | r[3] for r in window.tolist()]
            assert rows == want


@settings(max_examples=100, deadline=None)
@given(events)
def test_changelog_round_trip_restores_identical_state(evts):
    store = WindowStore()
    for stream, seq, bits in evts:
        store.push(stream, seq, bits, 123)
    restored = WindowStore()
    for stream, value in store.drain_changes():
        restored.restore(stream, value)
    for stream in {b"a", b"b", b"c"}:
        assert restored.state_of(stream) == store.state_of(stream)
    assert store.drain_changes() == []


def test_window_code_order_matches_the_label_rule():
    store = WindowStore()
    x1 = [1, 0, 1, 1, 0, 1]
    codes = [store.push(b"s", i, b << 3, 0) for i, b in enumerate(x1)]
    assert codes[:4] == [NOT_READY] * 4
    for i, code in enumerate(codes[4:], start=4):
        window = codes_to_windows(np.array([code]))[0]
        assert window[:, 0].tolist() == x1[i - 4 : i + 1]
        assert label_or_none(window) == sum(x1[i - 4 : i + 1]) % 2


def test_evict_idle_writes_tombstones_and_frees_slots():
    store = WindowStore()
    store.push(b"old", 0, 1, now_ms=1_000)
    store.push(b"new", 0, 1, now_ms=9_000)
    store.drain_changes()
    assert store.evict_idle(now_ms=10_000, ttl_ms=5_000) == [b"old"]
    assert len(store) == 1 and store.state_of(b"old") is None
    assert store.drain_changes() == [(b"old", None)]
    store.push(b"other", 7, 3, now_ms=10_000)  # reuses the freed slot
    assert store.state_of(b"other")[0] == 7


def test_state_codec_rejects_garbage():
    assert decode_state(encode_state(5, 0xABCDE, 5, 42)) == (5, 0xABCDE, 5, 42)
    for bad in (b"", b"\x02" + b"\x00" * 21, b"xx"):
        try:
            decode_state(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
