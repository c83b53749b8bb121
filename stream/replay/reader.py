"""Bounded reading of a recorded range: assign + seek, stop at the range end, read_committed.

A plain ``KafkaConsumer`` without a group: replay never commits offsets and never disturbs the
processors' consumer group. The end of an open range is the end offset when the run starts (the
last stable offset under read_committed), so a replay of a live topic terminates. Offsets can have
holes (transaction markers), so a partition is done when its *position* reaches the end, not when
a record with offset end-1 arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from model.errors import BrokerError, ConfigError
from stream import kafka_io
from stream.replay.settings import Bound, RangeSpec

log = logging.getLogger(__name__)

POLL_RECORDS = 20000
STALL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition are in range; [read_from, start) only warm up."""

    partition: int
    start: int
    end: int
    read_from: int

    @property
    def size(self) -> int:
        return self.end - self.start


def open_consumer(bootstrap: str, **extra: object) -> KafkaConsumer:
    """A group-less, read_committed consumer that fetches big batches."""
    try:
        return kafka_io.make_reader(
            bootstrap,
            max_poll_records=POLL_RECORDS,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **extra,
        )
    except Exception as exc:
        raise BrokerError(
            f"cannot reach Kafka at {bootstrap}: {exc}; is the broker up (`make kafka-up`)?"
        ) from exc


def topic_partitions(consumer: KafkaConsumer, topic: str) -> list[int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise BrokerError(f"topic {topic!r} does not exist or has no partitions")
    return sorted(parts)


def _bound_offsets(
    consumer: KafkaConsumer,
    tps: list[TopicPartition],
    bound: Bound,
    default: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if bound.is_open:
        return dict(default)
    if bound.offset is not None:
        return {tp: bound.offset for tp in tps}
    if bound.per_partition is not None:
        chosen = dict(bound.per_partition)
        return {tp: chosen.get(tp.partition, default[tp]) for tp in tps}
    found = consumer.offsets_for_times({tp: bound.time_ms for tp in tps})
    # No record at or after the time: the bound is the end of the partition.
    return {tp: found[tp].offset if found.get(tp) is not None else end[tp] for tp in tps}


def resolve_ranges(consumer: KafkaConsumer, spec: RangeSpec) -> list[PartitionRange]:
    """Turn a RangeSpec into concrete offsets per partition, clipped to what the topic holds."""
    available = topic_partitions(consumer, spec.topic)
    chosen = list(spec.partitions) if spec.partitions is not None else available
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise ConfigError(f"{spec.topic} has partitions {available}; {missing} do not exist")
    tps = [TopicPartition(spec.topic, p) for p in chosen]
    begin = consumer.beginning_offsets(tps)
    end = consumer.end_offsets(tps)
    starts = _bound_offsets(consumer, tps, spec.start, begin, end)
    ends = _bound_offsets(consumer, tps, spec.end, end, end)
    out = []
    for tp in tps:
        lo, hi = begin[tp], end[tp]
        start = min(max(starts[tp], lo), hi)
        stop = min(max(ends[tp], start), hi)
        out.append(PartitionRange(tp.partition, start, stop, max(lo, start - max(0, spec.warmup))))
    return out


def read_range(
    consumer: KafkaConsumer,
    topic: str,
    ranges: list[PartitionRange],
    on_advance: Callable[[int], None] | None = None,
    stall_timeout_s: float = STALL_TIMEOUT_S,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[list]:
    """Yield polled batches (lists of records) of [read_from, end) per partition, then stop.

    Memory is one poll (at most ``POLL_RECORDS`` records); finished partitions are paused so the
    consumer never fetches past the range. ``on_advance(n)`` reports consumed offsets (progress);
    ``on_done(partition)`` says a partition has nothing more, before its last batch is yielded.
    """
    todo = {TopicPartition(topic, r.partition): r for r in ranges if r.end > r.read_from}
    if on_done is not None:
        for r in ranges:
            if r.end <= r.read_from:
                on_done(r.partition)
    if not todo:
        return
    consumer.assign(list(todo))
    position = {}
    for tp, r in todo.items():
        consumer.seek(tp, r.read_from)
        position[tp] = r.read_from
    last_progress = time.monotonic()
    while todo:
        batch = consumer.poll(timeout_ms=500)
        out = []
        for tp, recs in batch.items():
            r = todo.get(tp)
            if r is None:
                continue
            if recs and recs[-1].offset >= r.end:
                recs = [rec for rec in recs if rec.offset < r.end]
            out.extend(recs)
        advanced = 0
        for tp in list(todo):
            pos = consumer.position(tp)
            r = todo[tp]
            new = min(pos, r.end)
            advanced += new - position[tp]
            position[tp] = new
            if pos >= r.end:
                consumer.pause(tp)
                del todo[tp]
                if on_done is not None:
                    on_done(tp.partition)
        if advanced:
            last_progress = time.monotonic()
            if on_advance is not None:
                on_advance(advanced)
        elif time.monotonic() - last_progress > stall_timeout_s:
            raise BrokerError(
                f"reading {topic} made no progress for {stall_timeout_s:.0f}s "
                f"(partitions {sorted(tp.partition for tp in todo)}); is the broker up?"
            )
        if out:
            yield out
