"""Republish pieces: the time merge keeps each partition's order; the pacer keeps the spacing."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stream.replay.republish import Pacer, merge_by_time


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    timestamp: int


@given(
    st.lists(st.lists(st.integers(0, 50), max_size=20), min_size=1, max_size=4),
    st.integers(1, 6),
)
def test_merge_keeps_partition_order_and_sorts_sorted_inputs(stamps, chunk):
    parts = list(range(len(stamps)))
    recs = {p: [Rec(p, i, ts) for i, ts in enumerate(sorted(s))] for p, s in enumerate(stamps)}
    done: set[int] = set()

    def batches():
        pos = dict.fromkeys(parts, 0)
        while any(pos[p] < len(recs[p]) for p in parts):
            out = []
            for p in parts:
                out.extend(recs[p][pos[p] : pos[p] + chunk])
                pos[p] += chunk
                if pos[p] >= len(recs[p]):
                    done.add(p)
            yield out

    merged = list(merge_by_time(batches(), parts, done))
    assert sorted(merged, key=lambda r: (r.partition, r.offset)) == [
        r for p in parts for r in recs[p]
    ]
    assert [r.timestamp for r in merged] == sorted(r.timestamp for r in merged)
    for p in parts:
        assert [r.offset for r in merged if r.partition == p] == list(range(len(recs[p])))


def test_merge_never_reorders_a_partition_with_backward_timestamps():
    recs = [Rec(0, 0, 10), Rec(0, 1, 5), Rec(1, 0, 7)]
    merged = list(merge_by_time([recs], [0, 1], set()))
    assert [r.offset for r in merged if r.partition == 0] == [0, 1]


def test_pacer_sleeps_original_gaps_divided_by_speed():
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    pacer = Pacer(4.0, sleep=sleep, clock=lambda: now[0])
    for ts in (1000, 1000, 3000, 2000, 7000):
        pacer.wait(ts)
    assert slept == [0.5, 1.0]  # 2 s -> 0.5 s; the late record waits for nothing; 4 s more -> 1 s
