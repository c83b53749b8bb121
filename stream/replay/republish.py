"""``republish``: copy a recorded range to another topic so a pipeline can be re-driven from history.

Keys, values and headers are copied byte for byte (bad records too: a re-driven processor meets
the same dead letters). Per-stream order is kept: a stream's records come from one source
partition in offset order and are sent in that order through one idempotent producer, so retries
cannot reorder them. With ``--partitioning same`` a record lands in the partition number it came
from, so a full-range copy into a fresh topic reproduces the source's offsets as well.

Paced mode (``--speed > 0``) merges the partitions by record timestamp and sleeps so that the gaps
between records are the original gaps divided by the speed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from model.errors import BrokerError, ConfigError
from stream import kafka_io
from stream.replay.reader import (
    PartitionRange,
    open_consumer,
    read_range,
    resolve_ranges,
    topic_partitions,
)
from stream.replay.run import progress_bar
from stream.replay.settings import ReplaySettings

log = logging.getLogger(__name__)


@dataclass
class RepublishOutcome:
    target: str
    ranges: list[PartitionRange]
    sent: int = 0
    acked: int = 0
    failed: int = 0
    first_error: str = ""
    seconds: float = 0.0
    per_partition: dict[int, int] = field(default_factory=dict)


def merge_by_time(
    batches: Iterable[list], partitions: list[int], done: set[int]
) -> Iterator[object]:
    """Merge polled batches into one sequence ordered by record timestamp across partitions.

    Each partition's own order is never changed (only heads are compared), so per-stream order
    holds even where timestamps go backwards. A record is released only when every partition
    that is not ``done`` has a buffered record, so nothing earlier can still arrive.
    """
    buffers: dict[int, deque] = {p: deque() for p in partitions}

    def ready() -> bool:
        return all(buffers[p] or p in done for p in partitions)

    def release() -> Iterator[object]:
        while ready():
            heads = [(buf[0].timestamp, p) for p, buf in buffers.items() if buf]
            if not heads:
                return
            _, p = min(heads)
            yield buffers[p].popleft()

    for batch in batches:
        for rec in batch:
            buffers[rec.partition].append(rec)
        yield from release()
    done.update(partitions)  # the source is exhausted
    yield from release()


class Pacer:
    """Sleeps so that records go out at their original spacing divided by ``speed``."""

    def __init__(self, speed: float, sleep=time.sleep, clock=time.monotonic) -> None:
        self.speed = speed
        self.sleep = sleep
        self.clock = clock
        self._t0: int | None = None
        self._w0 = 0.0

    def wait(self, timestamp_ms: int) -> None:
        if self._t0 is None:
            self._t0, self._w0 = timestamp_ms, self.clock()
            return
        due = self._w0 + (timestamp_ms - self._t0) / 1000 / self.speed
        ahead = due - self.clock()
        if ahead > 0:
            self.sleep(ahead)


def run_republish(s: ReplaySettings) -> RepublishOutcome:
    """Copy ``s.range`` to ``s.target_topic``; the outcome counts what the broker acknowledged."""
    assert s.target_topic is not None
    bootstrap = kafka_io.bootstrap_or_resolve(s.bootstrap_servers)
    consumer = open_consumer(bootstrap)
    producer = None
    try:
        ranges = resolve_ranges(consumer, s.range)
        n_source = len(topic_partitions(consumer, s.range.topic))
        kafka_io.ensure_topics(
            bootstrap,
            {s.target_topic: (s.partitions_to_create or n_source, s.replication, {})},
        )
        n_target = kafka_io.partition_count(bootstrap, s.target_topic)
        highest = max((r.partition for r in ranges), default=-1)
        if s.partitioning == "same" and highest >= n_target:
            raise ConfigError(
                f"{s.target_topic} has {n_target} partitions, the range uses partition {highest}; "
                "use --partitioning key or a target with more partitions"
            )
        out = RepublishOutcome(s.target_topic, ranges)
        producer = kafka_io.make_producer(bootstrap, None, 30.0)

        def ok(_md: object) -> None:
            out.acked += 1

        def failed(exc: Exception) -> None:
            out.failed += 1
            out.first_error = out.first_error or repr(exc)

        bar = progress_bar(s.progress, sum(r.size for r in ranges), f"-> {s.target_topic}")
        done: set[int] = set()
        batches = read_range(
            consumer,
            s.range.topic,
            ranges,
            bar.update if bar else None,
            on_done=done.add,
        )
        if s.speed > 0:
            pacer = Pacer(s.speed)
            records: Iterable = merge_by_time(batches, [r.partition for r in ranges], done)
        else:
            pacer = None
            records = (rec for batch in batches for rec in batch)
        same = s.partitioning == "same"
        keep_ts = s.timestamps == "original"
        t0 = time.monotonic()
        try:
            for rec in records:
                if pacer is not None:
                    pacer.wait(rec.timestamp)
                producer.send(
                    s.target_topic,
                    key=rec.key,
                    value=rec.value,
                    headers=list(rec.headers) if rec.headers else None,
                    partition=rec.partition if same else None,
                    timestamp_ms=rec.timestamp if keep_ts else None,
                ).add_callback(ok).add_errback(failed)
                out.sent += 1
                out.per_partition[rec.partition] = out.per_partition.get(rec.partition, 0) + 1
        finally:
            if bar is not None:
                bar.close()
            producer.flush(timeout=60)
            out.seconds = time.monotonic() - t0
        if out.acked + out.failed != out.sent:
            raise BrokerError(
                f"{out.sent - out.acked - out.failed} records were not acknowledged in time"
            )
        return out
    finally:
        if producer is not None:
            producer.close(timeout=10)
        consumer.close(autocommit=False)
