"""The producer's settings: one frozen object, filled from flags and environment here."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from model.errors import ConfigError
from stream.config import env, env_int


@dataclass(frozen=True)
class ProducerSettings:
    bootstrap_servers: str | None
    topic: str
    streams: int
    rate: float
    count: int | None
    rows_per_stream: int | None
    duration_s: float | None
    seed: int
    stream_prefix: str
    partitions: int
    replication: int
    metrics_port: int
    progress: bool | None
    log_level: str


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m producer",
        description=(
            "xorstream producer: emits random 4-bit rows (x1..x4) for many streams, interleaved at "
            "random but in order within each stream, to the input topic. Key = stream id; value = "
            'JSON {"stream", "seq", "x", "y", "ts"} where y is the label once the stream has 5 '
            "rows. Stops after --count rows or --duration-s seconds (or SIGINT/SIGTERM), flushes "
            "what is pending and reports counts; exits 1 if any row was not delivered."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--bootstrap-servers",
        default=env("KAFKA_BOOTSTRAP_SERVERS"),
        help="broker list; unset: the local broker (started if needed)",
    )
    p.add_argument("--topic", default=env("XORSTREAM_INPUT_TOPIC", "xorstream.rows"))
    p.add_argument("--streams", type=int, default=100, help="number of independent streams")
    p.add_argument(
        "--rate", type=float, default=1000.0, help="rows per second; 0 = as fast as possible"
    )
    p.add_argument("--count", type=int, default=None, help="total rows to send (all streams)")
    p.add_argument(
        "--rows-per-stream",
        type=int,
        default=None,
        help="send exactly this many rows per stream, shuffled together (sets --count)",
    )
    p.add_argument("--duration-s", type=float, default=None, help="send for this many seconds")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same rows")
    p.add_argument("--stream-prefix", default="s-", help="stream ids are PREFIX0, PREFIX1, ...")
    p.add_argument(
        "--partitions",
        type=int,
        default=env_int("XORSTREAM_PARTITIONS", 6),
        help="partitions if the topic has to be created",
    )
    p.add_argument("--replication", type=int, default=env_int("XORSTREAM_REPLICATION", 1))
    p.add_argument(
        "--metrics-port",
        type=int,
        default=env_int("XORSTREAM_METRICS_PORT", 0),
        help="Prometheus metrics HTTP port; 0 = off",
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--log-level", default=env("XORSTREAM_LOG_LEVEL", "INFO"))
    return p


def settings_from_args(argv: list[str] | None = None) -> ProducerSettings:
    a = build_parser().parse_args(argv)
    if a.rows_per_stream is not None:
        if a.rows_per_stream < 1:
            raise ConfigError("--rows-per-stream must be at least 1")
        a.count = a.streams * a.rows_per_stream
    if a.count is None and a.duration_s is None:
        raise ConfigError("say how much to send: --count ROWS or --duration-s SECONDS")
    if a.streams < 1 or a.rate < 0 or (a.count is not None and a.count < 0):
        raise ConfigError("--streams must be >= 1, --rate >= 0 and --count >= 0")
    from stream.codec import STREAM_ID_RE

    if not STREAM_ID_RE.fullmatch(f"{a.stream_prefix}{a.streams - 1}"):
        raise ConfigError("--stream-prefix may use only letters, digits and . _ : -")
    return ProducerSettings(
        bootstrap_servers=a.bootstrap_servers,
        topic=a.topic,
        streams=a.streams,
        rate=a.rate,
        count=a.count,
        rows_per_stream=a.rows_per_stream,
        duration_s=a.duration_s,
        seed=a.seed,
        stream_prefix=a.stream_prefix,
        partitions=a.partitions,
        replication=a.replication,
        metrics_port=a.metrics_port,
        progress=a.progress,
        log_level=a.log_level.upper(),
    )
