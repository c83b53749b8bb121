"""``python -m stream.demo``: the whole pipeline, live, for a bounded time, then cleaned up.

Starts (or reuses) a broker, runs the producer and one stream processor as real processes on
fresh topics, and watches the predictions topic as a subscriber would (read_committed), printing
rows/s in, predictions/s out, running accuracy, p50/p99 end-to-end latency (event time to the
prediction being readable) and dead letters. At the end it stops what it started and exits 0 only
if predictions flowed and every one was right.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
from kafka import TopicPartition

from model.errors import XorstreamError
from stream import broker, kafka_io
from stream.config import REPO_ROOT, env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stream.demo",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration-s", type=float, default=30.0, help="how long to run the pipeline")
    p.add_argument("--rate", type=float, default=2000.0, help="producer rows/s (0 = max)")
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--guarantee", default="exactly-once", choices=["exactly-once", "at-least-once"])
    p.add_argument(
        "--keep-broker",
        action="store_true",
        help="leave a local broker this demo started running afterwards",
    )
    return p.parse_args(argv)


class Watcher:
    """A read_committed subscriber of the predictions topic that keeps the live figures."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        self.topics = topics
        self.consumer = kafka_io.make_reader(bootstrap, max_poll_records=10000)
        self.bootstrap = bootstrap
        self.predictions = self.correct = self.labelled = 0
        self.latencies: list[int] = []
        self._assigned = False

    def poll(self) -> None:
        if not self._assigned:
            parts = self.consumer.partitions_for_topic(self.topics["predictions"])
            if not parts:
                return
            tps = [TopicPartition(self.topics["predictions"], p) for p in parts]
            self.consumer.assign(tps)
            self.consumer.seek_to_beginning(*tps)
            self._assigned = True
        for recs in self.consumer.poll(timeout_ms=200).values():
            now = time.time_ns() // 1_000_000
            for r in recs:
                p = json.loads(r.value)
                self.predictions += 1
                self.latencies.append(now - p["ts"])
                if p["y"] is not None:
                    self.labelled += 1
                    self.correct += p["y_hat"] == p["y"]

    def end_offset_sum(self, topic: str) -> int:
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        return sum(self.consumer.end_offsets(tps).values()) if tps else 0

    def line(self, rows_in: int, dt: float, prev: tuple[int, int]) -> str:
        lat = np.asarray(self.latencies[-20000:] or [0])
        acc = self.correct / self.labelled if self.labelled else float("nan")
        return (
            f"in {(rows_in - prev[0]) / dt:7.0f} rows/s | out {(self.predictions - prev[1]) / dt:7.0f}"
            f" pred/s | accuracy {acc:.6f} ({self.labelled} labelled) | latency p50 "
            f"{np.percentile(lat, 50):5.0f} ms p99 {np.percentile(lat, 99):5.0f} ms | dead "
            f"letters {self.end_offset_sum(self.topics['dead'])}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configured = env("KAFKA_BOOTSTRAP_SERVERS")
    started_local = False
    try:
        if configured:
            bootstrap = configured
        else:
            already = broker.local_running()
            handle = broker.resolve_bootstrap()
            bootstrap = handle.bootstrap
            started_local = handle.source == "local" and not already
    except XorstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"broker: {bootstrap}")
    base = f"demo-{uuid.uuid4().hex[:8]}"
    topics = {
        "input": f"{base}.rows",
        "predictions": f"{base}.predictions",
        "dead": f"{base}.dead-letters",
        "group": f"{base}.stream",
    }
    kafka_io.ensure_topics(
        bootstrap, {topics[k]: (args.partitions, 1, {}) for k in ("input", "predictions", "dead")}
    )
    env_vars = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
    logs = REPO_ROOT / ".cache" / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    stream_log = open(logs / f"{base}.stream.log", "wb")  # noqa: SIM115 - closed below
    producer_log = open(logs / f"{base}.producer.log", "wb")  # noqa: SIM115
    stream_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream",
            "--input-topic",
            topics["input"],
            "--predictions-topic",
            topics["predictions"],
            "--dead-letter-topic",
            topics["dead"],
            "--group-id",
            topics["group"],
            "--guarantee",
            args.guarantee,
        ],
        cwd=REPO_ROOT,
        env=env_vars,
        stdout=stream_log,
        stderr=subprocess.STDOUT,
    )
    producer_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer",
            "--topic",
            topics["input"],
            "--streams",
            str(args.streams),
            "--rate",
            str(args.rate),
            "--duration-s",
            str(args.duration_s),
            "--no-progress",
        ],
        cwd=REPO_ROOT,
        env=env_vars,
        stdout=producer_log,
        stderr=subprocess.STDOUT,
    )
    watcher = Watcher(bootstrap, topics)
    tty = sys.stdout.isatty()
    ok = False
    try:
        t0 = last = time.monotonic()
        prev = (0, 0)
        # run while the producer sends, then let the processor drain for a few seconds
        while time.monotonic() - t0 < args.duration_s + 60:
            watcher.poll()
            now = time.monotonic()
            if now - last >= 1.0:
                rows_in = watcher.end_offset_sum(topics["input"])
                text = watcher.line(rows_in, now - last, prev)
                print(("\r" + text) if tty else text, end="" if tty else "\n", flush=True)
                prev, last = (rows_in, watcher.predictions), now
                if stream_proc.poll() is not None:
                    print("\nerror: the stream processor exited early; see", stream_log.name)
                    break
                # done once the producer finished and every row with a full window has its
                # prediction (the first 4 rows of each stream have none)
                if (
                    producer_proc.poll() is not None
                    and rows_in > 0
                    and (watcher.predictions >= rows_in - 4 * args.streams)
                ):
                    break
        ok = (
            producer_proc.wait(timeout=30) == 0
            and watcher.predictions > 0
            and watcher.correct == watcher.labelled
        )
    finally:
        for proc in (producer_proc, stream_proc):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (producer_proc, stream_proc):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stream_log.close()
        producer_log.close()
        watcher.consumer.close()
        if started_local and not args.keep_broker:
            broker.local_down()
    lat = np.asarray(watcher.latencies or [0])
    print(
        f"\nsummary: {prev[0]} rows in, {watcher.predictions} predictions, accuracy "
        f"{watcher.correct}/{watcher.labelled}, latency p50 {np.percentile(lat, 50):.0f} ms "
        f"p99 {np.percentile(lat, 99):.0f} ms; logs in {logs}"
    )
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
