"""Thin Kafka helpers: topics, clients, bounded blocking calls, and reading a changelog.

Everything that talks to the broker outside the processing loop lives here, so the loop in
``stream.processor`` reads as the poll -> process -> produce -> commit sequence and nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from model.errors import BrokerError, TransactionError
from stream.broker import resolve_bootstrap

log = logging.getLogger(__name__)
T = TypeVar("T")

# Changelog topics: compaction keeps the latest state per stream. Only closed segments are
# compacted, so small segments (4 MiB, about 50k state records) and a low dirty ratio keep the
# part a restore must read close to one record per live stream.
COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": "600000",
    "segment.bytes": str(4 * 1024 * 1024),
}


def bootstrap_or_resolve(configured: str | None) -> str:
    """The configured bootstrap servers, or the broker ``stream.broker`` picks (local if needed)."""
    return configured or resolve_bootstrap().bootstrap


def ensure_topics(bootstrap: str, topics: dict[str, tuple[int, int, dict[str, str]]]) -> None:
    """Create each missing topic as {name: (partitions, replication, configs)}; existing ones stay."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        existing = set(admin.list_topics())
        spec = {
            name: {"num_partitions": parts, "replication_factor": repl, "configs": configs}
            for name, (parts, repl, configs) in topics.items()
            if name not in existing
        }
        if spec:
            admin.create_topics(spec, timeout_ms=30000, wait_for_metadata=True)
            log.info("created topics %s", ", ".join(sorted(spec)))
    except TopicAlreadyExistsError:
        pass  # another process created it between our look and our create: that is fine
    except Exception as exc:
        raise BrokerError(
            f"cannot create topics on {bootstrap}: {exc}; is the broker up (`make kafka-up`)?"
        ) from exc
    finally:
        admin.close()


def partition_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise BrokerError(f"topic {topic} does not exist on {bootstrap}")
        return len(parts)
    finally:
        consumer.close()


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``: computed once per key
    by a caller that sends many records with few keys, instead of hashing on every send."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def wait_for_partitions(
    consumer: KafkaConsumer, topic: str, expected: int, timeout_s: float = 30.0
) -> None:
    """Block until ``consumer`` knows all ``expected`` partitions of ``topic``."""
    deadline = time.monotonic() + timeout_s
    while len(consumer.partitions_for_topic(topic) or ()) < expected:
        if time.monotonic() > deadline:
            raise BrokerError(f"{topic} has no partition metadata after {timeout_s:.0f}s")
        time.sleep(0.1)


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run a blocking client call with a deadline.

    kafka-python's transaction calls wait without a timeout; if the broker dies mid-call we would
    hang forever. The call runs in a daemon thread; past the deadline we raise TransactionError
    and the caller recovers (abort, new producer, rewind) instead of hanging.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"guard:{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TransactionError(f"{what} did not finish within {timeout_s:.0f}s (broker down?)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")  # type: ignore[return-value]


def read_changelog(
    bootstrap: str, topic: str, partitions: Iterable[int], timeout_s: float = 120.0
) -> tuple[dict[int, dict[bytes, bytes]], int]:
    """The latest value of every live key of changelog ``partitions`` (read_committed, from the
    start to the current end), and how many records were read.

    Several states of one key (an uncompacted tail) collapse to the last, as compaction would;
    a key whose last record is a tombstone is left out.
    """
    parts = sorted(partitions)
    latest: dict[int, dict[bytes, bytes | None]] = {p: {} for p in parts}
    tps = [TopicPartition(topic, p) for p in parts]
    if not tps:
        return {}, 0
    consumer = make_reader(
        bootstrap,
        max_poll_records=50000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        count = 0
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise BrokerError(f"restoring {topic} did not finish within {timeout_s:.0f}s")
            for tp, recs in consumer.poll(timeout_ms=200).items():
                states = latest[tp.partition]
                for r in recs:
                    states[r.key] = r.value
                count += len(recs)
            for tp in list(remaining):
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close(autocommit=False)
    live = {p: {k: v for k, v in states.items() if v is not None} for p, states in latest.items()}
    return live, count


def make_reader(bootstrap: str, **extra) -> KafkaConsumer:
    """A consumer outside any group (it assigns and seeks; nothing is committed) that sees only
    committed records: changelog restores, replay, subscribers. ``extra`` adds or overrides."""
    config = dict(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    config.update(extra)
    return KafkaConsumer(**config)


def make_consumer(bootstrap: str, group_id: str, max_poll_records: int, **extra) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=10000,
        heartbeat_interval_ms=2000,
        max_poll_interval_ms=120000,
        **extra,
    )


def make_producer(
    bootstrap: str, transactional_id: str | None, transaction_timeout_s: float, **extra
) -> KafkaProducer:
    config = dict(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=1,
        batch_size=256 * 1024,
        compression_type=None,
        max_block_ms=int(transaction_timeout_s * 1000),
        **extra,
    )
    if transactional_id is not None:
        config.update(
            transactional_id=transactional_id,
            transaction_timeout_ms=int(transaction_timeout_s * 1000),
        )
    return KafkaProducer(**config)
