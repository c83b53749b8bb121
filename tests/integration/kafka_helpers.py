"""Helpers for integration tests: real processes, real topics, reading them back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from kafka import KafkaProducer, TopicPartition

from model.data import stream_labels
from stream import kafka_io

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def unique(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def proc_env(bootstrap: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_producer(bootstrap: str, topic: str, *args: str, timeout: float = 300) -> str:
    """Run ``python -m producer`` to completion; return its log (stderr)."""
    cmd = [PY, "-m", "producer", "--topic", topic, "--rate", "0", "--no-progress", *args]
    res = subprocess.run(
        cmd,
        cwd=REPO,
        env=proc_env(bootstrap),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert res.returncode == 0, f"producer failed:\n{res.stderr[-3000:]}"
    return res.stderr


def start_stream(
    bootstrap: str, topics: dict[str, str], *args: str, log_path: Path | None = None
) -> subprocess.Popen:
    """Start ``python -m stream`` in the background on the given topics."""
    cmd = [
        PY,
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
        *args,
    ]
    out = open(log_path, "ab") if log_path else subprocess.PIPE  # noqa: SIM115
    return subprocess.Popen(
        cmd, cwd=REPO, env=proc_env(bootstrap), stdout=out, stderr=subprocess.STDOUT
    )


def last_assignment(log: str) -> set[int] | None:
    """The partitions of the last 'assigned partitions [...]' line, None before the first."""
    found = re.findall(r"assigned partitions \[([\d, ]*)\]", log)
    if not found:
        return None
    return {int(x) for x in found[-1].split(",") if x.strip()}


def run_stream(bootstrap: str, topics: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run a processor until it has been idle for a few seconds; return its log."""
    proc = start_stream(bootstrap, topics, "--idle-exit-s", "6", *args)
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode()
    assert proc.returncode == 0, f"stream failed:\n{text[-3000:]}"
    return text


def new_topics(prefix: str = "t") -> dict[str, str]:
    base = unique(prefix)
    return {
        "input": f"{base}.rows",
        "predictions": f"{base}.pred",
        "dead": f"{base}.dlq",
        "group": f"{base}.grp",
    }


def read_topic(bootstrap: str, topic: str, committed: bool = True, timeout: float = 60) -> list:
    """Every record of ``topic`` up to its current end, partition by partition, in order."""
    consumer = kafka_io.make_reader(
        bootstrap,
        isolation_level="read_committed" if committed else "read_uncommitted",
        max_poll_records=10000,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"reading {topic} timed out"
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


def send_raw(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def expected_from_input(input_records: list) -> dict[tuple[str, int], int]:
    """(stream, seq) -> label for every row with a full window, recomputed from the input topic."""
    by_stream: dict[str, list[tuple[int, int]]] = {}
    for r in input_records:
        try:
            row = json.loads(r.value)
        except (ValueError, TypeError):
            continue
        if not isinstance(row, dict) or "x" not in row:
            continue
        by_stream.setdefault(row["stream"], []).append((row["seq"], row["x"][0]))
    out = {}
    for stream, rows in by_stream.items():
        rows.sort()
        labels = stream_labels([x1 for _, x1 in rows])
        for (seq, _), y in zip(rows, labels.tolist(), strict=True):
            if y >= 0:
                out[(stream, seq)] = y
    return out


def predictions_by_key(pred_records: list) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for r in pred_records:
        p = json.loads(r.value)
        assert r.key.decode() == p["stream"], "prediction key must be the stream id"
        out.setdefault((p["stream"], p["seq"]), []).append(p)
    return out


def assert_exactly_once_correct(bootstrap: str, topics: dict[str, str]) -> dict:
    """Every (stream, seq>=4) of the input has exactly one prediction, right, in seq order."""
    inputs = read_topic(bootstrap, topics["input"])
    expected = expected_from_input(inputs)
    preds = read_topic(bootstrap, topics["predictions"])
    got = predictions_by_key(preds)
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    twice = {k: len(v) for k, v in got.items() if len(v) > 1}
    wrong = [k for k, v in got.items() if k in expected and v[0]["y_hat"] != expected[k]]
    assert not missing, f"{len(missing)} predictions missing, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected predictions, e.g. {sorted(extra)[:5]}"
    assert not twice, f"{len(twice)} predictions published more than once, e.g. {list(twice)[:5]}"
    assert not wrong, f"{len(wrong)} wrong predictions, e.g. {wrong[:5]}"
    last: dict[str, int] = {}
    for r in preds:  # records of one stream share a partition; the list keeps partition order
        p = json.loads(r.value)
        assert p["seq"] > last.get(p["stream"], -1), f"out of order: {p['stream']} {p['seq']}"
        last[p["stream"]] = p["seq"]
    return {"inputs": len(inputs), "predictions": len(preds), "expected": len(expected)}


class PredictionWatcher:
    """Follows the predictions topic (read_committed) and tells when every expected key is in."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = kafka_io.make_reader(bootstrap, max_poll_records=20000)
        self.topic = topic
        self.seen: set[tuple[str, int]] = set()
        self._assigned = False

    def poll(self) -> None:
        if not self._assigned:
            parts = self.consumer.partitions_for_topic(self.topic)
            if not parts:
                return
            tps = [TopicPartition(self.topic, p) for p in parts]
            self.consumer.assign(tps)
            self.consumer.seek_to_beginning(*tps)
            self._assigned = True
        for recs in self.consumer.poll(timeout_ms=500).values():
            for r in recs:
                p = json.loads(r.value)
                self.seen.add((p["stream"], p["seq"]))

    def wait_for(self, expected: set[tuple[str, int]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not expected <= self.seen:
            assert time.monotonic() < deadline, (
                f"{len(expected - self.seen)} of {len(expected)} predictions still missing "
                f"after {timeout:.0f}s"
            )
            self.poll()

    def close(self) -> None:
        self.consumer.close()


def run_until_complete(
    bootstrap: str, topics: dict[str, str], procs: list, timeout: float = 240, settle: float = 3.0
) -> None:
    """Wait until every (stream, seq>=4) of the input has a committed prediction, let in-flight
    work settle (so a duplicate would show), then SIGTERM the processors: each must exit 0."""
    import signal

    expected = set(expected_from_input(read_topic(bootstrap, topics["input"])))
    watcher = PredictionWatcher(bootstrap, topics["predictions"])
    try:
        watcher.wait_for(expected, timeout)
        time.sleep(settle)
    finally:
        watcher.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    for p in procs:
        assert p.wait(timeout=60) == 0, f"processor exited with {p.returncode}"
