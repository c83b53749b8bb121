"""The latency floor: a consume -> produce loop with the processor's Kafka clients and settings,
and nothing else (no decoding, windows, model or commits). Run as a separate process by
``bench_pipeline.py`` under the same load as the processor, so the difference is ours.

    .venv/bin/python -m benchmarks.passthrough IN_TOPIC OUT_TOPIC --duration-s 30
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bootstrap, name, quiet  # noqa: E402
from stream import kafka_io  # noqa: E402
from stream.config import freeze_startup_heap  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("input_topic")
    ap.add_argument("output_topic")
    ap.add_argument("--duration-s", type=float, default=30.0)
    args = ap.parse_args(argv)
    quiet()
    bs = bootstrap()
    consumer = kafka_io.make_consumer(bs, name("floor"), 5000)
    producer = kafka_io.make_producer(bs, None, 30)
    kafka_io.wait_for_partitions(
        consumer, args.input_topic, kafka_io.partition_count(bs, args.input_topic)
    )
    consumer.subscribe([args.input_topic])
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    freeze_startup_heap()
    deadline = time.monotonic() + args.duration_s
    send = producer.send
    while not stop["flag"] and time.monotonic() < deadline:
        for tp, recs in consumer.poll(timeout_ms=50, max_records=5000).items():
            for r in recs:  # co-partitioned like the processor's output
                send(args.output_topic, key=r.key, value=r.value, partition=tp.partition)
    producer.flush()
    producer.close()
    consumer.close(autocommit=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
