"""The stream processor's Kafka loop: poll -> process -> produce -> commit, and recovery.

The pure work (decode, windows, one predictor call per batch) is ``stream.step.BatchStep``; this
module only moves records between Kafka and that step, keeps per-partition window stores, writes
their changelog and decides when offsets move. ``Processor._commit`` is the one place that says in
which order things become durable, and why.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from model.errors import BrokerError, TransactionError, XorstreamError
from stream import kafka_io
from stream.ack_window import CHANGELOG_IN_FLIGHT, OUTPUTS_IN_FLIGHT, AckQueue, Sent
from stream.codec import dead_letter_headers
from stream.settings import StreamSettings
from stream.step import BatchStep, Predictor, StepResult
from stream.windows import WindowStore

log = logging.getLogger(__name__)

EVICT_EVERY_S = 10.0
CHANGELOG_SLICE = 200  # at-least-once changelog records sent per loop turn (see _advance_acks)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Totals:
    """Running totals of this process, for logs, the demo summary and tests."""

    rows: int = 0
    predictions: int = 0
    correct: int = 0
    incorrect: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    gaps: int = 0
    commits: int = 0
    aborts: int = 0
    restores: int = 0
    restored_records: int = 0
    restore_seconds: list[float] = field(default_factory=list)
    first_record_at: float | None = None  # monotonic time of the first record processed
    last_commit_at: float | None = None  # monotonic time of the last successful commit

    @property
    def rows_per_second(self) -> float:
        """Input records per second from the first record to the last commit."""
        if self.first_record_at is None or self.last_commit_at is None:
            return 0.0
        span = self.last_commit_at - self.first_record_at
        return (self.rows + self.dead_letters + self.duplicates) / span if span > 0 else 0.0

    def add(self, res: StepResult) -> None:
        self.rows += res.rows
        self.predictions += len(res.predictions)
        self.correct += res.correct
        self.incorrect += res.incorrect
        self.dead_letters += len(res.dead_letters)
        self.duplicates += res.duplicates
        self.gaps += res.gaps


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, proc: Processor) -> None:
        self.proc = proc

    def on_partitions_revoked(self, revoked):  # noqa: ANN001 - kafka-python's signature
        self.proc._on_revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned):  # noqa: ANN001
        self.proc._on_assigned({tp.partition for tp in assigned})

    def on_partitions_lost(self, lost):  # noqa: ANN001
        self.proc._on_lost({tp.partition for tp in lost})


class Processor:
    """One member of the stream processors' consumer group."""

    def __init__(
        self, settings: StreamSettings, predictor: Predictor, metrics=None, clock_ms=wall_ms
    ) -> None:
        self.s = settings
        self.predictor = predictor
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.step = BatchStep(predictor, clock_ms)
        self.stores: dict[int, WindowStore] = {}
        self.totals = Totals()
        self._offsets: dict[int, int] = {}  # partition -> NEXT offset to read, not yet committed
        self._positions: dict[int, int] = {}  # partition -> NEXT offset to read (for lag)
        self._acks = AckQueue()  # what was produced since the last commit, and its futures
        self._pending = 0
        self._in_txn = False
        self._stop = False
        self._last_commit = time.monotonic()
        self._last_evict = time.monotonic()
        self._needs_recover = False
        self._polled_records = 0
        self._revoked_clean = True
        self._published_mark = 0
        self.bootstrap = ""
        self.consumer = None
        self.producer = None

    # ----------------------------------------------------------------- lifecycle
    def request_stop(self, *_args: object) -> None:
        """Ask the loop to finish the batch in hand, commit and leave the group."""
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def start(self) -> None:
        s = self.s
        self.bootstrap = kafka_io.bootstrap_or_resolve(s.bootstrap_servers)
        kafka_io.ensure_topics(
            self.bootstrap,
            {
                s.input_topic: (s.partitions, s.replication, {}),
                s.predictions_topic: (s.partitions, s.replication, {}),
                s.dead_letter_topic: (s.partitions, s.replication, {}),
            },
        )
        n_input = kafka_io.partition_count(self.bootstrap, s.input_topic)
        # Partition i of the changelog holds the state of partition i of the input.
        kafka_io.ensure_topics(
            self.bootstrap, {s.changelog_topic: (n_input, s.replication, kafka_io.COMPACTED)}
        )
        if kafka_io.partition_count(self.bootstrap, s.changelog_topic) != n_input:
            raise BrokerError(
                f"{s.changelog_topic} must have as many partitions as "
                f"{s.input_topic} ({n_input}); delete it or pick another name"
            )
        # Co-partitioned output: a stream's predictions go to the partition number its input
        # came from, which saves hashing every key (the producer hashes keys the same way, so the
        # result is the one the default partitioner would give for keys it placed).
        self._same_partitions = {
            topic: kafka_io.partition_count(self.bootstrap, topic) == n_input
            for topic in (s.predictions_topic, s.dead_letter_topic)
        }
        self.producer = self._new_producer()
        self.consumer = kafka_io.make_consumer(self.bootstrap, s.group_id, s.max_poll_records)
        # A topic created a moment ago may not be in this client's metadata yet; joining the group
        # before it is would get no partitions assigned until the next rebalance.
        kafka_io.wait_for_partitions(self.consumer, s.input_topic, n_input)
        self.consumer.subscribe([s.input_topic], listener=_Rebalance(self))
        log.info(
            "processor %s joined group %s on %s (%s, model %s)",
            s.instance_id,
            s.group_id,
            s.input_topic,
            s.guarantee,
            self.predictor.version,
        )

    def _new_producer(self):
        s = self.s
        txn_id = f"xorstream-{s.group_id}-{s.instance_id}" if s.exactly_once else None
        producer = kafka_io.make_producer(self.bootstrap, txn_id, s.transaction_timeout_s)
        if txn_id is not None:
            # init_transactions also aborts what an earlier instance with this id left open.
            kafka_io.call_with_timeout(
                producer.init_transactions, s.transaction_timeout_s * 2, "init_transactions"
            )
        return producer

    def run(self) -> Totals:
        """Process until asked to stop (signal, --duration-s, --idle-exit-s); then commit and leave."""
        self.start()
        started = last_input = time.monotonic()
        try:
            while not self._stop:
                try:
                    self._loop_once()
                except (KafkaError, XorstreamError) as exc:
                    log.warning("processing failed (%s); recovering from the last commit", exc)
                    self._recover(type(exc).__name__)
                now = time.monotonic()
                if self._polled_records:
                    last_input = now
                if self.s.duration_s is not None and now - started >= self.s.duration_s:
                    break
                if self.s.idle_exit_s is not None and now - last_input >= self.s.idle_exit_s:
                    log.info("no input for %.0fs, exiting", self.s.idle_exit_s)
                    break
            try:
                self._commit(wait=True)
            except (KafkaError, XorstreamError) as exc:
                log.error(
                    "final commit failed (%s); the next owner of these partitions will "
                    "process the uncommitted input again",
                    exc,
                )
        finally:
            self.close()
        return self.totals

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close(autocommit=False)
            self.consumer = None
        if self.producer is not None:
            self.producer.close(timeout=5)
            self.producer = None

    # ----------------------------------------------------------------- the loop
    def _loop_once(self) -> None:
        batch = self.consumer.poll(
            timeout_ms=self.s.poll_timeout_ms, max_records=self.s.max_poll_records
        )
        if self._needs_recover:
            self._needs_recover = False
            # rewinds, so the batch in hand is read again afterwards
            self._recover("partitions_lost")
            return
        self._polled_records = 0
        if batch:
            records = [r for recs in batch.values() for r in recs]
            self._polled_records = len(records)
            self._process(records)
        now = time.monotonic()
        if now - self._last_evict >= EVICT_EVERY_S:
            self._last_evict = now
            self._evict_idle()
        # Commit on the interval, on the record cap, or as soon as the input pauses (a poll with
        # nothing new): holding a window open while idle only delays its predictions (exactly-
        # once) and its offsets.
        if self._pending and (
            not batch
            or self._pending >= self.s.commit_max_records
            or (now - self._last_commit) * 1000 >= self.s.commit_interval_ms
        ):
            self._commit()
        elif self._acks.closed:
            self._advance_acks()
        if self.metrics is not None and batch:
            self._report_lag()

    def _process(self, records: list) -> None:
        """Run the pure step on one polled batch and hand its outputs to the producer."""
        if self.s.exactly_once and not self._in_txn:
            self.producer.begin_transaction()
            self._in_txn = True
        res = self.step.run(records, self.stores)
        s = self.s
        send = self.producer.send
        pred_topic = s.predictions_topic
        parts = (
            res.prediction_partitions
            if self._same_partitions[pred_topic]
            else [None] * len(res.predictions)
        )
        same_dlq = self._same_partitions[s.dead_letter_topic]
        futures = [
            send(pred_topic, key=key, value=value, partition=part)
            for (key, value), part in zip(res.predictions, parts, strict=True)
        ]
        futures.extend(
            send(
                s.dead_letter_topic,
                key=dl.key,
                value=dl.value,
                partition=dl.partition if same_dlq else None,
                headers=dead_letter_headers(
                    dl.reason, dl.detail, s.input_topic, dl.partition, dl.offset
                ),
            )
            for dl in res.dead_letters
        )
        # Kept, not called back: a refused record is an error in both modes, found before the
        # commit that would cover it (ack_window.Sent); at-least-once commits advance on them.
        # Reading the open window's futures each turn lets those already done go.
        outputs = self._acks.open.outputs
        self._settled(outputs)
        outputs.add(futures)
        self._offsets.update(res.next_offsets)
        self._positions.update(res.next_offsets)
        if self.totals.first_record_at is None:
            self.totals.first_record_at = time.monotonic()
        self._pending += len(records)
        self.totals.add(res)
        if self.metrics is not None:
            self.metrics.observe_step(res, self.predictor.version)

    def _drain_changelog(self) -> list[tuple[int, bytes, bytes | None]]:
        """Changelog records (partition, stream, state or None) of every stream changed since
        the last drain: the window state as of the offsets about to be committed."""
        return [
            (part, stream, value)
            for part, store in self.stores.items()
            for stream, value in store.drain_changes()
        ]

    def _send_changelog(self, records: list[tuple[int, bytes, bytes | None]], sent: Sent) -> None:
        topic, send = self.s.changelog_topic, self.producer.send
        sent.add(
            [send(topic, key=key, value=value, partition=part) for part, key, value in records]
        )

    @staticmethod
    def _settled(sent: Sent) -> bool:
        """Whether every record in ``sent`` is acknowledged; BrokerError once one was refused."""
        done = sent.settled()
        if sent.failure is not None:
            raise BrokerError(f"the broker did not accept a produced record: {sent.failure}")
        return done

    def _commit(self, wait: bool = False) -> None:
        """Make what the processed records produced durable, then move the group's offsets.

        exactly-once: the changelog (the window state as of the offsets being committed) joins
          the transaction that already holds the predictions and dead letters; then the offsets
          join it; once every record is acknowledged (none refused), one commit makes outputs,
          state and offsets visible together or not at all. This blocks the loop for the
          commit's round trips.
        at-least-once: per window of records, (1) its outputs are acknowledged, (2) then its
          changelog is written and acknowledged, (3) then its offsets are committed. A crash in
          between repeats input (a duplicate prediction at worst) but never loses an output: the
          state never runs ahead of an acknowledged prediction. The steps advance as
          acknowledgements arrive (``_advance_acks``), so the loop does not stall; ``wait``
          blocks until every closed window is committed (shutdown, revoke).
        Offsets always name the NEXT record to read.
        """
        if self.s.exactly_once:
            self._commit_transaction()
            return
        if self._pending:
            published = self.totals.predictions - self._published_mark
            self._published_mark = self.totals.predictions
            self._acks.close(self._offsets, self._drain_changelog(), published)
            self._offsets.clear()
            self._pending = 0
            self._last_commit = time.monotonic()
        self._advance_acks(block=wait)

    def _advance_acks(self, block: bool = False) -> None:
        """Move closed at-least-once windows through their steps, oldest first."""
        timeout = self.s.transaction_timeout_s
        deadline = time.monotonic() + timeout
        while self._acks.closed:
            win = self._acks.closed[0]
            if win.stage == OUTPUTS_IN_FLIGHT:
                if not self._settled(win.outputs):
                    if not block:
                        return
                    self._wait_acks(win.outputs, deadline)
                win.stage = CHANGELOG_IN_FLIGHT
            if win.changelog_sent < len(win.changelog):
                # A window's changelog has a record per changed stream (about every stream, once
                # a second): sent in one go it stalls the loop for tens of ms, so at most a
                # slice per loop turn, between polls. The offsets wait until the last slice is
                # sent and acknowledged.
                start = win.changelog_sent
                end = len(win.changelog) if block else start + CHANGELOG_SLICE
                chunk = win.changelog[start:end]
                win.changelog_sent += len(chunk)
                self._send_changelog(chunk, win.changelog_futures)
                if win.changelog_sent < len(win.changelog):
                    return
            if not self._settled(win.changelog_futures):
                if not block:
                    return
                self._wait_acks(win.changelog_futures, deadline)
            if win.offsets:
                offsets = {
                    TopicPartition(self.s.input_topic, p): OffsetAndMetadata(o, "", -1)
                    for p, o in win.offsets.items()
                }
                if block:
                    self.consumer.commit(offsets)
                else:
                    self.consumer.commit_async(offsets, callback=self._on_commit_done)
            self._acks.closed.popleft()
            self._committed(win.predictions)

    def _wait_acks(self, sent: Sent, deadline: float) -> None:
        """Block until every record in ``sent`` is acknowledged; BrokerError on a refusal or at
        ``deadline``."""
        self.producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        while not self._settled(sent):  # a future may be completed just after flush returns
            if time.monotonic() > deadline:
                raise BrokerError("outputs were not acknowledged in time (broker down?)")
            time.sleep(0.001)

    def _on_commit_done(self, offsets: object, result: object) -> None:
        if isinstance(result, Exception):  # the records will be processed again: at-least-once
            log.warning("offset commit failed (%s); those records will be processed again", result)

    def _committed(self, published: int) -> None:
        self.totals.commits += 1
        self.totals.last_commit_at = time.monotonic()
        if self.metrics is not None:
            if self.s.exactly_once:
                self.metrics.transaction_committed()
            self.metrics.predictions_published(published)

    def _commit_transaction(self) -> None:
        if not self._pending and not self._in_txn:
            return
        s = self.s
        offsets = {
            TopicPartition(s.input_topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in self._offsets.items()
        }
        timeout = s.transaction_timeout_s
        deadline = time.monotonic() + timeout
        if not self._in_txn:
            self.producer.begin_transaction()
            self._in_txn = True
        outputs = self._acks.open.outputs
        self._send_changelog(self._drain_changelog(), outputs)
        if offsets:
            kafka_io.call_with_timeout(
                lambda: self.producer.send_offsets_to_transaction(
                    offsets, self.consumer.group_metadata()
                ),
                timeout,
                "send_offsets",
            )
        # kafka-python can commit a transaction in which a record failed (a retriable error that
        # ran out of retries changes no transaction state), so every record must be known to be
        # acknowledged first; a refusal raises here and the transaction is aborted.
        self._wait_acks(outputs, deadline)
        kafka_io.call_with_timeout(self.producer.commit_transaction, timeout, "commit_transaction")
        self._in_txn = False
        self._acks.clear()
        published = self.totals.predictions - self._published_mark
        self._published_mark = self.totals.predictions
        self._offsets.clear()
        self._pending = 0
        self._last_commit = time.monotonic()
        self._committed(published)

    # ----------------------------------------------------------------- recovery
    def _recover(self, reason: str = "error") -> None:
        """Throw away everything since the last commit and continue from it.

        The transaction (if any) is aborted, or the producer replaced when even that fails; the
        window state of every assigned partition is rebuilt from the changelog, and the consumer
        rewinds to the committed offsets. Retries until the broker answers or we are stopped.
        """
        self.totals.aborts += 1
        if self.metrics is not None:
            self.metrics.transaction_aborted(reason)
        backoff = 0.5
        while not self._stop:
            try:
                self._reset_producer()
                assigned = {tp.partition for tp in self.consumer.assignment()}
                self._drop_state(set(self.stores))
                self._restore(assigned)
                for p in assigned:
                    tp = TopicPartition(self.s.input_topic, p)
                    committed = self.consumer.committed(tp, timeout_ms=10000)
                    if committed is None:
                        self.consumer.seek_to_beginning(tp)
                    else:
                        self.consumer.seek(tp, committed)
                log.info(
                    "recovered: %d partitions rewound to their committed offsets", len(assigned)
                )
                return
            except (KafkaError, XorstreamError) as exc:
                log.warning("recovery attempt failed (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _reset_producer(self) -> None:
        """Forget everything produced since the last commit.

        exactly-once: abort the open transaction; if even that fails (broker gone), drop the
        producer: its replacement's init_transactions fences it and aborts what it left open.
        at-least-once: always replace the producer, so no unacknowledged record is resent.
        A failed replacement leaves ``producer`` None and the next recovery attempt tries again.
        """
        self._offsets.clear()
        self._pending = 0
        self._acks.clear()
        if self.producer is not None and self._in_txn:
            try:
                kafka_io.call_with_timeout(self.producer.abort_transaction, 5, "abort_transaction")
                self._in_txn = False
                return
            except Exception as exc:  # noqa: BLE001 - any failure: replace the producer
                log.warning("abort failed (%s); replacing the producer", exc)
        if self.producer is not None and (self._in_txn or not self.s.exactly_once):
            old, self.producer = self.producer, None
            try:
                old.close(timeout=0)
            except Exception as exc:  # noqa: BLE001 - it is being thrown away either way
                log.debug("closing the old producer: %s", exc)
        self._in_txn = False
        if self.producer is None:
            self.producer = self._new_producer()

    # ----------------------------------------------------------------- state
    def _restore(self, partitions: set[int]) -> None:
        """Rebuild the windows of ``partitions`` from the changelog before any record is processed."""
        if not partitions:
            return
        t0 = time.perf_counter()
        for p in partitions:
            self.stores[p] = WindowStore()

        latest, n = kafka_io.read_changelog(
            self.bootstrap, self.s.changelog_topic, sorted(partitions)
        )
        for p, states in latest.items():
            store = self.stores[p]
            for key, value in states.items():
                store.restore(key, value)
        seconds = time.perf_counter() - t0
        live = sum(len(self.stores[p]) for p in partitions)
        log.info(
            "restored %d streams of partitions %s from %d changelog records in %.2fs",
            live,
            sorted(partitions),
            n,
            seconds,
        )
        self.totals.restores += 1
        self.totals.restored_records += n
        self.totals.restore_seconds.append(seconds)
        if self.metrics is not None:
            self.metrics.observe_restore(seconds, n)
            self.metrics.set_live_streams(sum(len(st) for st in self.stores.values()))

    def _drop_state(self, partitions: set[int]) -> None:
        for p in partitions:
            self._positions.pop(p, None)
            store = self.stores.pop(p, None)
            if store is not None:
                store.discard_changes()
            if self.metrics is not None:
                self.metrics.forget_partition(p)

    def _evict_idle(self) -> None:
        now = self.clock_ms()
        ttl_ms = int(self.s.state_ttl_s * 1000)
        evicted = sum(len(st.evict_idle(now, ttl_ms)) for st in self.stores.values())
        if evicted:
            log.info("evicted %d idle streams", evicted)
            self._pending = max(self._pending, 1)  # their tombstones go out with the next commit
        if self.metrics is not None:
            self.metrics.set_live_streams(sum(len(st) for st in self.stores.values()))

    def _report_lag(self) -> None:
        """Lag = high watermark (from the last fetch) - next offset to process; no network call
        (``consumer.position`` may ask the coordinator, which stalls the hot loop)."""
        for p in self.stores:
            pos = self._positions.get(p)
            if pos is None:
                continue
            hw = self.consumer.highwater(TopicPartition(self.s.input_topic, p))
            if hw is None:
                continue
            self.metrics.set_lag(p, max(0, hw - pos))

    # ----------------------------------------------------------------- rebalances
    def _on_revoked(self, partitions: set[int]) -> None:
        """Commit what we have before giving partitions away, so the next owner starts clean."""
        try:
            self._commit(wait=True)
            self._revoked_clean = True
        except (KafkaError, XorstreamError) as exc:
            log.warning("commit before revoke failed (%s); state will be restored", exc)
            self._revoked_clean = False
            try:
                self._reset_producer()
            except (KafkaError, XorstreamError, TransactionError):
                pass

    def _on_assigned(self, partitions: set[int]) -> None:
        """Keep the state of partitions we still own (committed at revoke); restore the rest."""
        clean = self._revoked_clean
        self._revoked_clean = True
        keep = partitions & set(self.stores) if clean else set()
        self._drop_state(set(self.stores) - keep)
        self._restore(partitions - keep)
        log.info(
            "assigned partitions %s (kept %d, restored %d)",
            sorted(partitions),
            len(keep),
            len(partitions - keep),
        )

    def _on_lost(self, partitions: set[int]) -> None:
        """Partitions lost without a revoke (session expired): nothing since the last commit
        can be trusted, so the next loop turn aborts it and rebuilds from the changelog."""
        self._drop_state(partitions)
        self._needs_recover = True
