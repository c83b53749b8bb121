"""Pipeline throughput and latency on the real broker (a benchmark, not a test).

Three consumers drain the same pre-filled topic (default 1M rows over 1,000 streams), each with a
fresh consumer group, alternated and repeated; medians are printed with ratios:
  (a) the xorstream processor (at-least-once and exactly-once),
  (b) the pass-through ceiling: the same Kafka client and settings consuming and producing the
      same records with no decoding, windows or model,
  (c) the naive baseline a tutorial would write: per-row `model.predict` (timed on a prefix).
Then end-to-end latency (event ts to prediction readable by a subscriber) at a steady rate, for
the processor in each mode and for the pass-through floor (benchmarks/passthrough.py: the same
clients forwarding records untouched) under the same load, alternated and repeated; the medians
of each percentile are printed with the p99 ratio to the floor.

    .venv/bin/python benchmarks/bench_pipeline.py [--rows 1000000] [--repeats 3]
    .venv/bin/python benchmarks/bench_pipeline.py --repeats 0          # latency only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    bootstrap,
    median,
    name,
    prefill,
    quiet,
    start_load,
    subscriber,
)
from model.predictor import load_predictor  # noqa: E402
from stream import kafka_io  # noqa: E402
from stream.config import freeze_startup_heap  # noqa: E402
from stream.processor import Processor  # noqa: E402
from stream.settings import settings_from_args  # noqa: E402


def run_processor(bs: str, topic: str, guarantee: str, *extra: str) -> float:
    out = name("out")
    s = settings_from_args(
        [
            "--bootstrap-servers",
            bs,
            "--input-topic",
            topic,
            "--predictions-topic",
            out,
            "--dead-letter-topic",
            out + ".dlq",
            "--group-id",
            name("grp"),
            "--guarantee",
            guarantee,
            "--idle-exit-s",
            "3",
            "--log-level",
            "WARNING",
            *extra,
        ]
    )
    totals = Processor(s, load_predictor()).run()
    return totals.rows_per_second


def run_passthrough(bs: str, topic: str, rows: int) -> float:
    """Same client, same settings, same commit cadence; no decode, no windows, no model."""
    out = name("pass")
    kafka_io.ensure_topics(bs, {out: (6, 1, {})})
    consumer = kafka_io.make_consumer(bs, name("grp"), 5000)
    producer = kafka_io.make_producer(bs, None, 30)
    # as the processor does: a group joined before the client knows the (new) topic's
    # partitions gets none of them until some later rebalance, and this loop would wait forever
    kafka_io.wait_for_partitions(consumer, topic, kafka_io.partition_count(bs, topic))
    consumer.subscribe([topic])
    n, first, last_commit, offsets = 0, None, time.monotonic(), {}
    last_data = time.monotonic()
    while n < rows:
        if time.monotonic() - last_data > 60:
            raise RuntimeError(f"pass-through read {n} of {rows} rows, then nothing for 60 s")
        for tp, recs in consumer.poll(timeout_ms=50, max_records=5000).items():
            first = first or time.monotonic()
            last_data = time.monotonic()
            for r in recs:  # co-partitioned like the processor's output: no key hashing
                producer.send(out, key=r.key, value=r.value, partition=tp.partition)
            offsets[tp] = OffsetAndMetadata(recs[-1].offset + 1, "", -1)
            n += len(recs)
        if offsets and (time.monotonic() - last_commit) >= 0.1:
            producer.flush()
            consumer.commit(offsets)
            offsets, last_commit = {}, time.monotonic()
    producer.flush()
    consumer.commit(offsets)
    rate = n / (time.monotonic() - first)
    consumer.close()
    producer.close()
    return rate


def run_naive(bs: str, topic: str, rows: int, warmup: int) -> float:
    """What a tutorial writes: one model.predict per row, one send per row.

    The first ``warmup`` rows only fill the windows (most streams have no full window yet); the
    clock runs over the next ``rows`` rows, when nearly every row makes a prediction.
    """
    import keras
    from kafka import KafkaProducer

    from model.artifact import DEFAULT_ARTIFACT

    model = keras.models.load_model(DEFAULT_ARTIFACT / "model.keras")
    kafka_io.ensure_topics(bs, {topic + ".naive": (6, 1, {})})
    consumer = KafkaConsumer(
        bootstrap_servers=bs,
        group_id=name("naive"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=60000,  # the loop below ends if nothing comes for a minute
    )
    kafka_io.wait_for_partitions(consumer, topic, kafka_io.partition_count(bs, topic))
    consumer.subscribe([topic])
    producer = KafkaProducer(bootstrap_servers=bs)
    windows: dict[str, deque] = {}
    n, t0 = 0, None
    for msg in consumer:
        row = json.loads(msg.value)
        w = windows.setdefault(row["stream"], deque(maxlen=5))
        w.append(row["x"])
        if warmup > 0:
            warmup -= 1
            continue
        t0 = t0 or time.monotonic()
        if len(w) == 5:
            p = float(model.predict(np.array([list(w)], dtype=np.float32), verbose=0)[0, 0])
            producer.send(
                topic + ".naive",
                key=msg.key,
                value=json.dumps({"stream": row["stream"], "seq": row["seq"], "p": p}).encode(),
            )
        n += 1
        if n >= rows:
            break
    if n < rows:
        raise RuntimeError(f"naive baseline read {n} of {rows} timed rows, then nothing for 60 s")
    rate = n / (time.monotonic() - t0)
    producer.close()
    consumer.close()
    return rate


TS = re.compile(rb'"ts":(\d+)')  # event time of an input row or a prediction


def latency(bs: str, rate: int, seconds: int, middle: list[str] | None) -> dict:
    """p50/p95/p99 of (time a read_committed subscriber sees a record - its event ts), with the
    producer at ``rate`` rows/s into a 6-partition topic and ``middle`` between the two topics:
    the processor's extra arguments, or None for the pass-through floor. The subscriber reads
    ts with a regex instead of a JSON parse, to take as little CPU from the others as it can."""
    t = name("lat")
    topics = {"in": t + ".rows", "out": t + ".pred"}
    kafka_io.ensure_topics(bs, {topics["in"]: (6, 1, {}), topics["out"]: (6, 1, {})})
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bs)
    if middle is None:
        cmd = ["-m", "benchmarks.passthrough", topics["in"], topics["out"]]
        cmd += ["--duration-s", str(seconds + 20)]
    else:
        cmd = ["-m", "stream", "--input-topic", topics["in"], "--predictions-topic"]
        cmd += [topics["out"], "--dead-letter-topic", t + ".dlq", "--group-id", t]
        cmd += ["--log-level", "WARNING", *middle]
    proc = subprocess.Popen([sys.executable, *cmd], env=env, cwd=REPO)
    consumer = subscriber(bs, topics["out"])
    time.sleep(6)  # the middle process joins its group
    prod = start_load(bs, topics["in"], rate, seconds)
    lat: list[int] = []
    t_end = time.monotonic() + seconds + 5
    warm = time.monotonic() + 3
    search = TS.search
    while time.monotonic() < t_end:
        for recs in consumer.poll(timeout_ms=100).values():
            now = time.time_ns() // 1_000_000
            if time.monotonic() > warm:
                lat.extend(now - int(search(r.value)[1]) for r in recs)
    prod.wait()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    consumer.close()
    a = np.asarray(lat)
    return {"n": len(a), **{f"p{q}": float(np.percentile(a, q)) for q in (50, 95, 99)}}


def throughput(bs: str, args: argparse.Namespace) -> None:
    """Drain one pre-filled topic with (a), (b) and (c); print medians and ratios."""
    topic = name("rows")
    t0 = time.monotonic()
    print(f"pre-filling {topic}: {args.rows} rows over {args.streams} streams ...", flush=True)
    print(
        f"  producer: {prefill(bs, topic, args.rows, args.streams):,.0f} rows/s "
        f"({time.monotonic() - t0:.0f}s)",
        flush=True,
    )
    res: dict[str, list[float]] = {"alo": [], "eos": [], "pass": []}
    for i in range(args.repeats):
        res["pass"].append(run_passthrough(bs, topic, args.rows))
        res["alo"].append(run_processor(bs, topic, "at-least-once"))
        res["eos"].append(run_processor(bs, topic, "exactly-once"))
        print(
            f"  repeat {i + 1}: pass-through {res['pass'][-1]:,.0f}, at-least-once "
            f"{res['alo'][-1]:,.0f}, exactly-once {res['eos'][-1]:,.0f} rows/s",
            flush=True,
        )
    naive = run_naive(bs, topic, args.naive_rows, warmup=min(args.rows // 2, 20 * args.streams))
    m = {k: median(v) for k, v in res.items()}
    print(
        f"\nthroughput, median of {args.repeats} (rows/s), {args.rows:,} rows, "
        f"{args.streams} streams:"
    )
    print(f"  (b) pass-through ceiling        {m['pass']:>10,.0f}")
    print(
        f"  (a) xorstream at-least-once     {m['alo']:>10,.0f}   {m['alo'] / m['pass']:6.1%} of (b)"
        f"   {m['alo'] / naive:8,.0f}x (c)"
    )
    print(
        f"  (a) xorstream exactly-once      {m['eos']:>10,.0f}   {m['eos'] / m['pass']:6.1%} of (b)"
        f"   {m['eos'] / naive:8,.0f}x (c)"
    )
    print(
        f"  (c) naive per-row model.predict {naive:>10,.1f}   ({args.naive_rows} rows after the windows filled)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="throughput repeats; 0 = skip")
    ap.add_argument("--naive-rows", type=int, default=600)
    ap.add_argument("--latency-rate", type=int, default=5000)
    ap.add_argument("--latency-seconds", type=int, default=20, help="0 = skip latency")
    ap.add_argument("--latency-repeats", type=int, default=3)
    args = ap.parse_args()
    quiet()
    bs = bootstrap()
    freeze_startup_heap()  # as `python -m stream` does; (a) and (b) run in this process alike
    if args.repeats > 0:
        throughput(bs, args)
    if args.latency_seconds <= 0:
        return
    print(
        f"\nend-to-end latency at {args.latency_rate} rows/s for {args.latency_seconds}s "
        "(event ts -> readable by a subscriber):"
    )
    cases = {
        "pass-through floor (no processing)": None,
        "at-least-once": ["--guarantee", "at-least-once"],
        "exactly-once, commit every 100 ms (default)": ["--guarantee", "exactly-once"],
        "exactly-once, commit every 20 ms": [
            "--guarantee",
            "exactly-once",
            "--commit-interval-ms",
            "20",
        ],
    }
    runs: dict[str, list[dict]] = {label: [] for label in cases}
    for i in range(args.latency_repeats):
        for label, middle in cases.items():  # alternated, so drift on the machine hits all alike
            r = latency(bs, args.latency_rate, args.latency_seconds, middle)
            runs[label].append(r)
            print(
                f"  run {i + 1}: {label:45s} p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  "
                f"p99 {r['p99']:6.1f} ms  (n={r['n']})",
                flush=True,
            )
    print(f"\nlatency, median over {args.latency_repeats} runs of each percentile (ms):")
    floor99 = median([r["p99"] for r in runs["pass-through floor (no processing)"]])
    for label, rs in runs.items():
        p = {q: median([r[q] for r in rs]) for q in ("p50", "p95", "p99")}
        print(
            f"  {label:45s} p50 {p['p50']:6.1f}  p95 {p['p95']:6.1f}  p99 {p['p99']:6.1f}"
            f"   p99 {p['p99'] / floor99:4.2f}x the floor"
        )


if __name__ == "__main__":
    main()
