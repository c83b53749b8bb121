"""A real Prometheus for integration tests, and a short observed pipeline run.

Prometheus is the Debian binary (``deploy/prometheus/install.sh``), started with the project's
own ``deploy/prometheus/prometheus.yml``: only each xorstream job's targets are swapped for the
test's metrics ports, the intervals shortened to 1s and the rule paths made absolute, so the
scrape jobs and rules under test are the ones the compose stack runs. Under CI=true a missing
binary fails the test; elsewhere it is skipped with the command that installs it.

Import the fixtures from a test module: ``from tests.integration.prometheus_fixtures import ...``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from stream.config import in_ci
from tests.integration.kafka_helpers import PY, REPO, new_topics, proc_env, send_raw, start_stream

PROM_DIR = REPO / "deploy" / "prometheus"
STREAM_JOB = "xorstream-stream"
PRODUCER_JOB = "xorstream-producer"


def require_binary(name: str) -> str:
    """Path of ``name``; fail under CI, else skip, when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        message = f"{name} not found: run deploy/prometheus/install.sh"
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_test_config(
    targets: dict[str, list[str]], self_port: int, interval: str = "1s"
) -> dict:
    """deploy/prometheus/prometheus.yml with ``targets`` (job -> host:port) swapped in."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(PROM_DIR / pattern) for pattern in config["rule_files"]]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    missing = set(targets) - set(jobs)
    assert not missing, f"deploy/prometheus/prometheus.yml has no job {missing}"
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{self_port}"]}]
    for name, addresses in targets.items():
        for key in [k for k in jobs[name] if k.endswith("_sd_configs")]:
            del jobs[name][key]
        jobs[name]["static_configs"] = [{"targets": addresses}]
    return config


class Prometheus:
    """One Prometheus process on a free port with its own TSDB, and its HTTP API."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, list[str]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(prometheus_test_config(targets, self.port)))
        self.log_path = workdir / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def api(self, path: str, **params: str) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query now: the result vector (each item has ``metric`` and ``value``)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr} gave {data['resultType']}"
        return data["result"]

    def scalar(self, expr: str) -> float | None:
        """The single value of ``expr`` now, None when it has no sample."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} has {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, ok: Callable[[float | None], bool], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(expr)
            if ok(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{expr} = {value} after {timeout}s")

    def target_health(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for target in self.api("targets")["activeTargets"]:
            out.setdefault(target["labels"]["job"], []).append(target["health"])
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class ObservedRun:
    """A pipeline run scraped by Prometheus; the processor is still running (and scraped)."""

    prometheus: Prometheus
    topics: dict[str, str]
    rows: int
    predictions: int
    dead_letters: int
    stream_port: int
    producer_port: int
    logs: dict[str, Path] = field(default_factory=dict)


def observed_pipeline(
    bootstrap: str,
    workdir: Path,
    *,
    streams: int = 20,
    rows_per_stream: int = 500,
    rate: int = 2000,
    bad_records: int = 0,
) -> Iterator[ObservedRun]:
    """Start Prometheus, a processor and a rate-limited producer, each with a metrics port.

    Yields once Prometheus has scraped every row consumed and every prediction published, so
    queries over the last minute see the whole run. The producer runs ``rows/rate`` seconds so
    it is scraped (every 1s) while it sends; it exits afterwards, the processor keeps running
    until teardown.
    """
    binary = require_binary("prometheus")
    topics = new_topics("prom")
    stream_port, producer_port = free_port(), free_port()
    prom = Prometheus(
        binary,
        workdir / "prometheus",
        {
            STREAM_JOB: [f"127.0.0.1:{stream_port}"],
            PRODUCER_JOB: [f"127.0.0.1:{producer_port}"],
        },
    )
    logs = {"stream": workdir / "stream.log", "producer": workdir / "producer.log"}
    processor = None
    try:
        from stream import kafka_io

        # Created up front: a processor that creates the input topic itself can join the group
        # before the partition metadata is there and start with an empty assignment.
        kafka_io.ensure_topics(bootstrap, {topics["input"]: (6, 1, {})})
        processor = start_stream(
            bootstrap, topics, "--metrics-port", str(stream_port), log_path=logs["stream"]
        )
        prom.wait_for(f'up{{job="{STREAM_JOB}"}}', lambda v: v == 1, timeout=90)
        with open(logs["producer"], "wb") as log:
            producer = subprocess.run(
                [
                    PY,
                    "-m",
                    "producer",
                    "--topic",
                    topics["input"],
                    "--streams",
                    str(streams),
                    "--rows-per-stream",
                    str(rows_per_stream),
                    "--rate",
                    str(rate),
                    "--metrics-port",
                    str(producer_port),
                    "--no-progress",
                ],
                cwd=REPO,
                env=proc_env(bootstrap),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        assert producer.returncode == 0, f"producer failed:\n{logs['producer'].read_text()}"
        if bad_records:
            send_raw(bootstrap, topics["input"], [(b"s-0", b"not json")] * bad_records)
        rows = streams * rows_per_stream
        predictions = streams * (rows_per_stream - 4)  # the first 4 rows only fill the window
        prom.wait_for("sum(xorstream_rows_consumed_total)", lambda v: v == rows, timeout=120)
        prom.wait_for("sum(xorstream_predictions_total)", lambda v: v == predictions, timeout=60)
        if bad_records:
            prom.wait_for(
                "sum(xorstream_dead_letters_total)", lambda v: v == bad_records, timeout=60
            )
        assert processor.poll() is None, f"processor exited:\n{logs['stream'].read_text()}"
        yield ObservedRun(
            prom, topics, rows, predictions, bad_records, stream_port, producer_port, logs
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- prometheus\n{prom.log()}\n--- stream\n"
            f"{logs['stream'].read_text()[-3000:] if logs['stream'].exists() else ''}"
        ) from None
    finally:
        if processor is not None and processor.poll() is None:
            processor.send_signal(signal.SIGTERM)
            try:
                processor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                processor.kill()
                processor.wait()
        prom.stop()
