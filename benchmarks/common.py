"""Shared bits of the pipeline benchmarks: a broker, pre-filled topics, medians."""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from producer.__main__ import run as produce
from producer.settings import settings_from_args as producer_settings
from stream import kafka_io
from stream.broker import resolve_bootstrap

REPO = Path(__file__).resolve().parent.parent


def quiet() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)


def bootstrap() -> str:
    return resolve_bootstrap().bootstrap


def name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


def prefill(bootstrap: str, topic: str, rows: int, streams: int, partitions: int = 6) -> float:
    """Send ``rows`` rows as fast as possible; return the producer's rows/s."""
    s = producer_settings(
        [
            "--bootstrap-servers",
            bootstrap,
            "--topic",
            topic,
            "--streams",
            str(streams),
            "--count",
            str(rows),
            "--rate",
            "0",
            "--partitions",
            str(partitions),
            "--no-progress",
        ]
    )
    rep = produce(s)
    assert rep.acked == rows, f"prefill delivered {rep.acked} of {rows}"
    return rep.acked / rep.seconds


def subscriber(bs: str, topic: str, partitions: int = 6) -> KafkaConsumer:
    """A read_committed consumer of every partition of ``topic`` from the start, fetching with
    little wait, as a latency-sensitive subscriber would."""
    consumer = kafka_io.make_reader(bs, fetch_max_wait_ms=10)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer


def start_load(bs: str, topic: str, rate: int, seconds: float) -> subprocess.Popen:
    """The producer as its own process, at a steady ``rate`` rows/s over 1,000 streams."""
    cmd = [sys.executable, "-m", "producer", "--topic", topic, "--rate", str(rate)]
    cmd += ["--duration-s", str(seconds), "--streams", "1000", "--no-progress"]
    cmd += ["--log-level", "WARNING"]
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bs)
    return subprocess.Popen(cmd, env=env, cwd=REPO)


def median(xs: list[float]) -> float:
    return statistics.median(xs)
