"""Exactly-once costs, measured on the real broker (a benchmark, not a test).

1. throughput: exactly-once against at-least-once draining the same pre-filled topic (medians of
   alternated repeats), at the default commit interval and a longer one;
2. restore time after a SIGKILL with 100,000 live streams (from the processor's own log line);
3. the processing pause when a second processor joins under a steady load;
4. resident memory per live stream with 1,000,000 streams in the window store.

    .venv/bin/python benchmarks/bench_eos.py [--rows 500000] [--repeats 3]
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_pipeline import run_processor  # noqa: E402
from benchmarks.common import (  # noqa: E402
    bootstrap,
    median,
    name,
    prefill,
    quiet,
    start_load,
    subscriber,
)
from stream import kafka_io  # noqa: E402
from stream.config import freeze_startup_heap  # noqa: E402

MEMORY_PROBE = """
import gc, sys
from stream.windows import WindowStore
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
n = int(sys.argv[1])
gc.collect(); before = rss()
store = WindowStore()
for i in range(n):
    store.push(b"s-%d" % i, 0, i & 15, 0)   # ids built here: the store holds their only reference
store.drain_changes()
gc.collect()
print((rss() - before) / n, len(store))
"""


def stream_cmd(bs: str, t: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stream",
        "--input-topic",
        t + ".rows",
        "--predictions-topic",
        t + ".pred",
        "--dead-letter-topic",
        t + ".dlq",
        "--group-id",
        t,
        *extra,
    ]


def restore_time(bs: str, streams: int) -> tuple[float, int]:
    """Fill `streams` windows, SIGKILL the processor, restart it; its log says the restore time."""
    t = name("restore")
    prefill(bs, t + ".rows", streams * 5, streams)
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bs)
    first = subprocess.run(
        stream_cmd(bs, t, "--idle-exit-s", "5", "--instance-id", "r"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stopped:" in first.stderr
    proc = subprocess.Popen(
        stream_cmd(bs, t, "--instance-id", "r"), env=env, stderr=subprocess.PIPE, text=True
    )
    pattern = re.compile(r"restored (\d+) streams of partitions .* in ([\d.]+)s")
    found = None
    for line in proc.stderr:
        m = pattern.search(line)
        if m:
            found = (float(m.group(2)), int(m.group(1)))
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert found, "no restore line in the processor log"
    return found


def rebalance_pause(bs: str, rate: int) -> dict:
    """Longest gap between predictions readable by a subscriber when a second processor joins."""
    t = name("rebal")
    kafka_io.ensure_topics(bs, {t + ".rows": (6, 1, {}), t + ".pred": (6, 1, {})})
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bs)
    a = subprocess.Popen(stream_cmd(bs, t, "--log-level", "WARNING"), env=env)
    consumer = subscriber(bs, t + ".pred")
    time.sleep(6)
    prod = start_load(bs, t + ".rows", rate, 30)
    arrivals: list[tuple[float, int]] = []
    t0 = time.monotonic()
    b = None
    while time.monotonic() - t0 < 34:
        if b is None and time.monotonic() - t0 > 12:
            joined_at = time.monotonic()
            b = subprocess.Popen(stream_cmd(bs, t, "--log-level", "WARNING"), env=env)
        for recs in consumer.poll(timeout_ms=50).values():
            now = time.monotonic()
            wall = time.time_ns() // 1_000_000
            arrivals.extend((now, wall - json.loads(r.value)["ts"]) for r in recs)
    prod.wait()
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
        p.wait()
    consumer.close()
    times = np.array([x for x, _ in arrivals])
    lat = np.array([y for _, y in arrivals])
    after = times > joined_at
    gaps = np.diff(times[after]) if after.sum() > 1 else np.array([0.0])
    steady = lat[(times > t0 + 8) & (times < joined_at)]
    return {
        "max_gap_s": float(gaps.max()),
        "max_latency_ms_after_join": float(lat[after].max()),
        "steady_p99_ms": float(np.percentile(steady, 99)) if len(steady) else float("nan"),
    }


def memory_per_stream(n: int) -> float:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(n)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(out[1]) == n
    return float(out[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--restore-streams", type=int, default=100_000)
    ap.add_argument("--memory-streams", type=int, default=1_000_000)
    ap.add_argument("--rebalance-rate", type=int, default=5000)
    args = ap.parse_args()
    quiet()
    bs = bootstrap()
    freeze_startup_heap()  # as `python -m stream` does; both modes run in this process alike
    topic = name("eos")
    prefill(bs, topic, args.rows, args.streams)
    variants = {
        "at-least-once, commit 100 ms": ("at-least-once", "--commit-interval-ms", "100"),
        "exactly-once, commit 100 ms": ("exactly-once", "--commit-interval-ms", "100"),
        "at-least-once, commit 1000 ms": ("at-least-once", "--commit-interval-ms", "1000"),
        "exactly-once, commit 1000 ms": ("exactly-once", "--commit-interval-ms", "1000"),
    }
    res: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(args.repeats):
        for label, (guarantee, *extra) in variants.items():
            res[label].append(run_processor(bs, topic, guarantee, *extra))
        print(
            f"  repeat {i + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items()),
            flush=True,
        )
    m = {k: median(v) for k, v in res.items()}
    print(f"\n1. throughput, median of {args.repeats}, {args.rows:,} rows / {args.streams} streams")
    for interval in ("100 ms", "1000 ms"):
        alo, eos = m[f"at-least-once, commit {interval}"], m[f"exactly-once, commit {interval}"]
        print(
            f"   commit every {interval:>7}: at-least-once {alo:>9,.0f} rows/s, exactly-once "
            f"{eos:>9,.0f} rows/s = {eos / alo:6.1%} of at-least-once (target >= 85%)"
        )
    seconds, live = restore_time(bs, args.restore_streams)
    print(
        f"2. restore after SIGKILL: {live:,} live streams restored in {seconds:.2f} s "
        "(target <= 3 s)",
        flush=True,
    )
    r = rebalance_pause(bs, args.rebalance_rate)
    print(
        f"3. rebalance (2nd processor joins at {args.rebalance_rate} rows/s): longest gap "
        f"between readable predictions {r['max_gap_s'] * 1000:.0f} ms; max end-to-end latency "
        f"after the join {r['max_latency_ms_after_join']:.0f} ms (steady p99 before: "
        f"{r['steady_p99_ms']:.0f} ms)",
        flush=True,
    )
    per = memory_per_stream(args.memory_streams)
    print(
        f"4. memory: {per:.0f} bytes per live stream with {args.memory_streams:,} streams "
        "(RSS delta, stream ids included; target <= 300)"
    )


if __name__ == "__main__":
    main()
