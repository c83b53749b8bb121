"""Benchmark: ``evaluate`` throughput over recorded rows, against the stream processor on the same data.

    python benchmarks/bench_replay.py [--rows 1000000] [--repeats 3]

Produces ROWS rows (1000 streams) to a fresh topic with ``python -m producer``, runs the stream
processor on it (a real process, exactly-once, fresh group and predictions topic per repeat) and
times its processing from its own log (first assignment to the last input, i.e. the exit line
minus --idle-exit-s), then times ``evaluate`` (reading the recorded predictions + replaying the
input + scoring, model loading excluded) on the same topic. Prints the medians and the ratio
evaluate / processor; the target is a ratio of at least 1.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.predictor import load_predictor  # noqa: E402
from stream.kafka_io import bootstrap_or_resolve  # noqa: E402
from stream.replay.run import run_evaluate  # noqa: E402
from stream.replay.settings import settings_from_args  # noqa: E402

IDLE_EXIT_S = 5.0
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float:
    m = _STAMP.match(line)
    assert m, line
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # noqa: DTZ007


def _env(bootstrap: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PYTHONUNBUFFERED": "1"}


def produce(bootstrap: str, topic: str, rows: int, partitions: int) -> float:
    streams = 1000
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "producer", "--topic", topic, "--streams", str(streams),
            "--rows-per-stream", str(rows // streams), "--partitions", str(partitions),
            "--rate", "0", "--seed", "1", "--no-progress",
        ],
        cwd=REPO, env=_env(bootstrap), check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def run_processor(bootstrap: str, topic: str, predictions: str) -> tuple[int, float]:
    """(rows, seconds of processing) of one processor run, timed from its own log."""
    base = predictions.rsplit(".", 1)[0]
    res = subprocess.run(
        [
            sys.executable, "-m", "stream", "--input-topic", topic,
            "--predictions-topic", predictions, "--dead-letter-topic", f"{base}.dlq",
            "--group-id", f"{base}.grp", "--idle-exit-s", str(IDLE_EXIT_S),
        ],
        cwd=REPO, env=_env(bootstrap), check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = res.stderr.splitlines()
    start = next(_stamp(ln) for ln in lines if "assigned partitions" in ln)
    end = next(_stamp(ln) for ln in lines if "no input for" in ln) - IDLE_EXIT_S
    rows = int(re.search(r"stopped: (\d+) rows", res.stderr).group(1))
    if rows == 0 or end <= start:
        raise SystemExit(f"processor run on {topic} processed nothing:\n{res.stderr[-2000:]}")
    return rows, end - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--topic", default=None, help="reuse this already produced input topic")
    args = ap.parse_args()
    bootstrap = bootstrap_or_resolve(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))  # noqa: S112
    base = f"bench-replay-{uuid.uuid4().hex[:8]}"
    topic = args.topic or f"{base}.rows"
    if args.topic is None:
        secs = produce(bootstrap, topic, args.rows, args.partitions)
        print(f"produced {args.rows} rows to {topic} in {secs:.1f}s", flush=True)

    proc_rates = []
    first_predictions = None
    for i in range(args.repeats):
        predictions = f"{base}-{i}.pred"
        first_predictions = first_predictions or predictions
        rows, secs = run_processor(bootstrap, topic, predictions)
        proc_rates.append(rows / secs)
        print(
            f"processor run {i + 1}: {rows} rows in {secs:.2f}s = {rows / secs:,.0f} rows/s",
            flush=True,
        )

    predictor = load_predictor()
    eval_rates = []
    for i in range(args.repeats):
        s = settings_from_args(
            [
                "evaluate", "--bootstrap-servers", bootstrap, "--input-topic", topic,
                "--predictions-topic", first_predictions, "--no-progress",
            ]
        )  # fmt: skip
        out = run_evaluate(s, predictor)
        rep = out.report
        eval_rates.append(out.records_per_s)
        print(
            f"evaluate run {i + 1}: {out.records} rows in {out.seconds:.2f}s = "
            f"{out.records_per_s:,.0f} rows/s (accuracy {rep['accuracy']}, "
            f"agreement {rep['agreement']['rate']}, joined {rep['agreement']['joined']})",
            flush=True,
        )
    ev, pr = statistics.median(eval_rates), statistics.median(proc_rates)
    print(
        f"\nmedian of {args.repeats}: evaluate {ev:,.0f} rows/s, stream processor {pr:,.0f} rows/s,"
        f" ratio evaluate/processor {ev / pr:.2f} (target >= 1)"
    )
    return 0 if ev >= pr else 1


if __name__ == "__main__":
    sys.exit(main())
