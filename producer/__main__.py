"""``python -m producer`` / ``xorstream-producer``: send synthetic rows to the input topic."""

from __future__ import annotations

import logging
import signal
import sys
import time
from dataclasses import dataclass

from model.errors import XorstreamError
from producer.generator import RowGenerator
from producer.settings import ProducerSettings, settings_from_args
from stream.codec import encode_row
from stream.config import freeze_startup_heap, setup_logging

log = logging.getLogger("producer")
MAX_CHUNK = 2000


@dataclass
class SendReport:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    first_error: str = ""
    seconds: float = 0.0


def run(s: ProducerSettings, stop=lambda: False, metrics=None) -> SendReport:
    """Send rows until --count/--duration or ``stop()``; flush; return what happened."""
    from stream import kafka_io  # Kafka I/O stays out of the generator

    bootstrap = kafka_io.bootstrap_or_resolve(s.bootstrap_servers)
    kafka_io.ensure_topics(bootstrap, {s.topic: (s.partitions, s.replication, {})})
    producer = kafka_io.make_producer(bootstrap, None, 30.0)
    gen = RowGenerator(s.streams, s.seed, s.stream_prefix, s.rows_per_stream)
    ids = [i.encode() for i in gen.ids]
    # The default partitioner's choice, hashed once per stream rather than on every send.
    n_parts = kafka_io.partition_count(bootstrap, s.topic)
    parts = [kafka_io.key_partition(k, n_parts) for k in ids]
    rep = SendReport()

    def ok(_md: object) -> None:
        rep.acked += 1

    def failed(exc: Exception) -> None:
        rep.failed += 1
        rep.first_error = rep.first_error or repr(exc)
        if metrics is not None:
            metrics.send_error(1, type(exc).__name__)

    bar = None
    show = s.progress if s.progress is not None else sys.stderr.isatty()
    if show:
        from tqdm import tqdm

        bar = tqdm(total=s.count, unit="rows", desc=f"-> {s.topic}", smoothing=0.1)
    t0 = time.monotonic()
    deadline = t0 + s.duration_s if s.duration_s is not None else float("inf")
    chunk_size = MAX_CHUNK if s.rate == 0 else max(1, min(MAX_CHUNK, int(s.rate / 200)))
    try:
        while not stop():
            now = time.monotonic()
            if now >= deadline:
                break
            n = chunk_size if s.count is None else min(chunk_size, s.count - rep.sent)
            if n <= 0:
                break
            if s.rate > 0:  # pace: never ahead of rate * elapsed
                ahead = rep.sent / s.rate - (now - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.5))
                    continue
            c = gen.chunk(n)
            clock = time.time_ns
            for st, seq, x, y in zip(
                c.stream.tolist(), c.seq.tolist(), c.x.tolist(), c.y.tolist(), strict=True
            ):
                ts = clock() // 1_000_000  # event time = when this row is emitted
                value = encode_row(gen.ids[st], seq, x, None if y < 0 else y, ts)
                producer.send(
                    s.topic, key=ids[st], value=value, partition=parts[st], timestamp_ms=ts
                ).add_callback(ok).add_errback(failed)
            rep.sent += n
            if metrics is not None:
                metrics.sent(n)
            if bar is not None:
                bar.update(n)
    finally:
        producer.flush(timeout=60)
        producer.close(timeout=10)
        if bar is not None:
            bar.close()
        rep.seconds = time.monotonic() - t0
    return rep


def main(argv: list[str] | None = None) -> int:
    try:
        s = settings_from_args(argv)
    except XorstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(s.log_level)
    stopping = {"flag": False}

    def on_signal(_sig: int, _frame: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    metrics = None
    try:
        from producer.metrics import ProducerMetrics

        metrics = ProducerMetrics()
        if s.metrics_port:
            metrics.serve(s.metrics_port)
    except ImportError:
        log.warning("producer metrics unavailable")
    freeze_startup_heap()
    try:
        rep = run(s, stop=lambda: stopping["flag"], metrics=metrics)
    except XorstreamError as exc:
        log.error("%s", exc)
        return 1
    rate = rep.acked / rep.seconds if rep.seconds > 0 else 0.0
    log.info(
        "sent %d rows to %s in %.1fs (%.0f rows/s): %d acknowledged, %d failed%s",
        rep.sent,
        s.topic,
        rep.seconds,
        rate,
        rep.acked,
        rep.failed,
        f" (first error: {rep.first_error})" if rep.failed else "",
    )
    if rep.failed or rep.acked != rep.sent:
        log.error("%d rows were not delivered", rep.sent - rep.acked)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
