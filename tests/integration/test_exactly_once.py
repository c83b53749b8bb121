"""Exactly-once under faults: real processes, real SIGKILLs, a real broker restart.

Each test reads the predictions topic back with read_committed and checks every (stream, seq>=4)
of the input: exactly one prediction, and right.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest

from stream import broker
from stream.config import in_ci
from tests.integration.kafka_helpers import (
    PY,
    REPO,
    PredictionWatcher,
    assert_exactly_once_correct,
    expected_from_input,
    last_assignment,
    new_topics,
    predictions_by_key,
    proc_env,
    read_topic,
    run_until_complete,
    start_stream,
)


def start_producer(bootstrap: str, topic: str, *args: str) -> subprocess.Popen:
    cmd = [PY, "-m", "producer", "--topic", topic, "--no-progress", *args]
    return subprocess.Popen(
        cmd, cwd=REPO, env=proc_env(bootstrap), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def wait_ok(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode() if out else ""
    assert proc.returncode == 0, text[-3000:]
    return text


def drain(bootstrap: str, t: dict[str, str], log) -> None:
    """A final processor that runs until every expected prediction is committed."""
    proc = start_stream(bootstrap, t, "--instance-id", "final", log_path=log)
    run_until_complete(bootstrap, t, [proc])


def test_sigkill_three_times_during_200k_rows(kafka_bootstrap, tmp_path):
    rng = random.Random(11)
    t = new_topics("kill3")
    producer = start_producer(
        kafka_bootstrap,
        t["input"],
        "--streams",
        "1000",
        "--count",
        "200000",
        "--rate",
        "10000",
        "--seed",
        "21",
    )
    log = tmp_path / "stream.log"
    for _ in range(3):
        proc = start_stream(kafka_bootstrap, t, "--instance-id", "p1", log_path=log)
        time.sleep(rng.uniform(4.0, 9.0))
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_ok(producer)
    drain(kafka_bootstrap, t, log)
    stats = assert_exactly_once_correct(kafka_bootstrap, t)
    assert stats["inputs"] == 200_000
    assert log.read_text().count("restored") >= 4


def test_three_processors_one_killed_and_a_fourth_joins(kafka_bootstrap, tmp_path):
    t = new_topics("scale")
    producer = start_producer(
        kafka_bootstrap,
        t["input"],
        "--streams",
        "600",
        "--count",
        "120000",
        "--rate",
        "8000",
        "--seed",
        "4",
        "--partitions",
        "6",
    )
    logs = [tmp_path / f"p{i}.log" for i in range(4)]
    procs = [start_stream(kafka_bootstrap, t, log_path=logs[i]) for i in range(3)]
    time.sleep(6)
    procs[1].send_signal(signal.SIGKILL)  # not restarted: its partitions move to the others
    procs[1].wait()
    time.sleep(3)
    procs.append(start_stream(kafka_bootstrap, t, log_path=logs[3]))
    wait_ok(producer)
    run_until_complete(kafka_bootstrap, t, [procs[i] for i in (0, 2, 3)])
    assert last_assignment(logs[3].read_text()), "the fourth processor must get work"
    assert_exactly_once_correct(kafka_bootstrap, t)


def test_broker_down_10s_mid_run_everyone_recovers(kafka_bootstrap, tmp_path):
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    if not broker.local_running(port):
        if in_ci():
            pytest.fail("CI must run this on the local broker from deploy/kafka (it restarts it)")
        pytest.skip("needs the local broker from deploy/kafka, which this test restarts")
    t = new_topics("brokerdown")
    producer = start_producer(
        kafka_bootstrap,
        t["input"],
        "--streams",
        "300",
        "--count",
        "60000",
        "--rate",
        "2000",
        "--seed",
        "9",
    )
    log = tmp_path / "stream.log"
    proc = start_stream(kafka_bootstrap, t, log_path=log)
    time.sleep(8)
    assert broker.local_down(port)
    time.sleep(10)
    broker.local_up(port)
    wait_ok(producer, timeout=300)  # the producer rode out the outage too
    assert proc.poll() is None, "the processor must survive the outage without a restart"
    run_until_complete(kafka_bootstrap, t, [proc])
    assert "recovered" in log.read_text() or "processing failed" not in log.read_text()
    assert_exactly_once_correct(kafka_bootstrap, t)


def test_restored_window_gives_the_same_predictions_as_no_crash(kafka_bootstrap, tmp_path):
    """Same input twice: one processor killed mid-stream and restarted, one undisturbed."""
    crash, calm = new_topics("crash"), new_topics("calm")
    for t in (crash, calm):
        wait_ok(
            start_producer(
                kafka_bootstrap,
                t["input"],
                "--streams",
                "50",
                "--count",
                "40000",
                "--rate",
                "0",
                "--seed",
                "77",
                "--partitions",
                "2",
            )
        )
    drain(kafka_bootstrap, calm, tmp_path / "calm.log")
    log = tmp_path / "crash.log"
    proc = start_stream(
        kafka_bootstrap, crash, "--instance-id", "c1", "--max-poll-records", "200", log_path=log
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some but not all predictions are committed
        n = len(read_topic(kafka_bootstrap, crash["predictions"])) if time.sleep(0.5) is None else 0
        if 2000 < n < 30000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    drain(kafka_bootstrap, crash, log)

    def preds(t):
        return {
            (p["stream"], p["seq"]): (p["p"], p["y_hat"])
            for p in (json.loads(r.value) for r in read_topic(kafka_bootstrap, t["predictions"]))
        }

    assert preds(crash) == preds(calm)
    assert_exactly_once_correct(kafka_bootstrap, crash)


def test_at_least_once_loses_nothing_across_a_sigkill(kafka_bootstrap, tmp_path):
    """at-least-once: after a SIGKILL some predictions may repeat, but none is missing or wrong."""
    t = new_topics("alokill")
    # 600 streams: a commit's changelog (one record per changed stream) is larger than
    # CHANGELOG_SLICE, so it goes out in slices across loop turns, and the kill can land between.
    wait_ok(
        start_producer(
            kafka_bootstrap,
            t["input"],
            "--streams",
            "600",
            "--count",
            "60000",
            "--rate",
            "0",
            "--seed",
            "5",
        )
    )
    log = tmp_path / "stream.log"
    args = ("--guarantee", "at-least-once", "--max-poll-records", "300")
    proc = start_stream(kafka_bootstrap, t, *args, log_path=log)
    watcher = PredictionWatcher(kafka_bootstrap, t["predictions"])
    deadline = time.monotonic() + 120
    while len(watcher.seen) < 15000:  # kill it mid-run
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        watcher.poll()
    watcher.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final = start_stream(kafka_bootstrap, t, *args, log_path=log)
    run_until_complete(kafka_bootstrap, t, [final])
    expected = expected_from_input(read_topic(kafka_bootstrap, t["input"]))
    got = predictions_by_key(read_topic(kafka_bootstrap, t["predictions"]))
    assert expected.keys() == got.keys(), "nothing lost, nothing invented"
    assert all(p["y_hat"] == expected[k] for k, ps in got.items() for p in ps)
