"""The replay CLI's settings: one frozen object per run, filled from flags and environment here.

Both subcommands read the same Kafka and topic settings as the other services (``stream.config``),
and the same range flags: from/to offsets or times, all or chosen partitions.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from model.errors import ConfigError
from stream.config import env, env_int

_RELATIVE = re.compile(r"-(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Bound:
    """One end of a range: an offset for all partitions, offsets per partition, or a time.

    Exactly one of the fields is set; all None means "the beginning" (start) or "the end" (end).
    """

    offset: int | None = None
    per_partition: tuple[tuple[int, int], ...] | None = None
    time_ms: int | None = None

    @property
    def is_open(self) -> bool:
        return self.offset is None and self.per_partition is None and self.time_ms is None


@dataclass(frozen=True)
class RangeSpec:
    """Which records of a topic: [start, end) per partition, end exclusive like Kafka offsets."""

    topic: str
    partitions: tuple[int, ...] | None  # None = all partitions of the topic
    start: Bound
    end: Bound
    warmup: int = 0  # records per partition read before start only to fill the windows


@dataclass(frozen=True)
class ReplaySettings:
    command: str  # "evaluate" or "republish"
    bootstrap_servers: str | None
    range: RangeSpec
    predictions_topic: str
    artifact: str | None
    backend: str
    json_path: Path | None
    png_path: Path | None
    html_path: Path | None
    max_diffs: int
    bucket_ms: int
    min_accuracy: float | None
    target_topic: str | None
    speed: float
    partitioning: str
    timestamps: str
    partitions_to_create: int
    replication: int
    progress: bool | None
    log_level: str


def parse_offset_bound(text: str | None) -> Bound:
    """``"100"`` (every partition) or ``"0:100,3:250"`` (per partition) -> Bound."""
    if text is None:
        return Bound()
    text = text.strip()
    try:
        if ":" not in text:
            value = int(text)
            if value < 0:
                raise ValueError
            return Bound(offset=value)
        pairs = []
        for item in text.split(","):
            part, off = item.split(":")
            pairs.append((int(part), int(off)))
        if any(p < 0 or o < 0 for p, o in pairs) or len({p for p, _ in pairs}) != len(pairs):
            raise ValueError
        return Bound(per_partition=tuple(sorted(pairs)))
    except ValueError:
        raise ConfigError(
            f"offset {text!r} must be a non-negative integer or PARTITION:OFFSET[,...]"
        ) from None


def parse_time_bound(text: str | None, now: datetime | None = None) -> Bound:
    """Epoch ms, an ISO-8601 time with a zone (``2026-12-04T22:00:00Z``) or ``-8h``/``-30m``."""
    if text is None:
        return Bound()
    text = text.strip()
    if text.isdigit():
        return Bound(time_ms=int(text))
    rel = _RELATIVE.fullmatch(text)
    if rel:
        now = now or datetime.now(UTC)
        at = now - timedelta(seconds=float(rel.group(1)) * _UNITS[rel.group(2)])
        return Bound(time_ms=int(at.timestamp() * 1000))
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"time {text!r} must be epoch ms, ISO-8601 with a zone, or relative like -8h"
        ) from None
    if at.tzinfo is None:
        raise ConfigError(f"time {text!r} has no time zone; add Z or +01:00")
    return Bound(time_ms=int(at.timestamp() * 1000))


def parse_partitions(text: str | None) -> tuple[int, ...] | None:
    """``"0,2,5"`` -> (0, 2, 5); None = all."""
    if text is None or text.strip() in ("", "all"):
        return None
    try:
        parts = tuple(sorted({int(p) for p in text.split(",")}))
    except ValueError:
        raise ConfigError(
            f"--partitions {text!r} must be a comma-separated list of integers"
        ) from None
    if any(p < 0 for p in parts):
        raise ConfigError("--partitions must be non-negative")
    return parts


def _add_common(p: argparse.ArgumentParser) -> None:
    k = p.add_argument_group("Kafka and range")
    k.add_argument(
        "--bootstrap-servers",
        default=env("KAFKA_BOOTSTRAP_SERVERS"),
        help="broker list; unset: the local broker (started if needed), see README",
    )
    k.add_argument(
        "--input-topic",
        default=env("XORSTREAM_INPUT_TOPIC", "xorstream.rows"),
        help="the recorded input rows to read",
    )
    k.add_argument(
        "--partitions", default=None, help="comma-separated input partitions (default: all)"
    )
    k.add_argument(
        "--from-offset",
        default=None,
        help="first offset (inclusive): N for every partition or P:N[,P:N...]",
    )
    k.add_argument(
        "--to-offset",
        default=None,
        help="end offset (exclusive): N or P:N[,...] (default: the end when the run starts)",
    )
    k.add_argument(
        "--from-time",
        default=None,
        help="first record at or after this time: epoch ms, ISO-8601 with zone, or relative "
        "(--from-time=-8h: the = is needed for a leading minus)",
    )
    k.add_argument("--to-time", default=None, help="stop before the first record at this time")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stream.replay",
        description=(
            "Replay what the topics recorded. evaluate: score a model artifact on a range of the "
            "input topic, windows rebuilt by the stream processor's own code, joined with the "
            "recorded predictions; writes a JSON report and a picture. republish: copy a range "
            "to another topic, keys and per-stream order preserved, at the original pace times "
            "--speed or as fast as possible."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    ev = sub.add_parser("evaluate", help="score a model on a recorded range", formatter_class=fmt)
    _add_common(ev)
    ev.add_argument(
        "--predictions-topic",
        default=env("XORSTREAM_PREDICTIONS_TOPIC", "xorstream.predictions"),
        help="recorded predictions to compare with; '' = do not join",
    )
    ev.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="records per partition read before the start only to fill the windows, so "
        "streams do not lose their first 4 windows of the range",
    )
    m = ev.add_argument_group("model")
    m.add_argument(
        "--artifact",
        default=env("XORSTREAM_ARTIFACT"),
        help="model artifact directory (default: the committed model)",
    )
    m.add_argument(
        "--backend", choices=("numpy", "tensorflow"), default=env("XORSTREAM_BACKEND", "numpy")
    )
    o = ev.add_argument_group("report")
    o.add_argument(
        "--json",
        dest="json_path",
        type=Path,
        default=None,
        help="write the report here (default: stdout)",
    )
    o.add_argument(
        "--png",
        dest="png_path",
        type=Path,
        default=None,
        help="accuracy over time + latency histogram",
    )
    o.add_argument(
        "--html", dest="html_path", type=Path, default=None, help="self-contained HTML report"
    )
    o.add_argument(
        "--max-diffs", type=int, default=50, help="list at most this many differing rows"
    )
    o.add_argument(
        "--bucket-s", type=float, default=1.0, help="time resolution of accuracy over time"
    )
    o.add_argument(
        "--min-accuracy",
        type=float,
        default=None,
        help="exit 3 when the accuracy is below this (a gate for CI or a model rollout)",
    )
    rp = sub.add_parser(
        "republish", help="copy a recorded range to another topic", formatter_class=fmt
    )
    _add_common(rp)
    rp.add_argument(
        "--to-topic", required=True, help="target topic (created like the source if missing)"
    )
    rp.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay at the original pace times this factor (2 = twice as fast); 0 = as fast as possible",
    )
    rp.add_argument(
        "--partitioning",
        choices=("same", "key"),
        default="same",
        help="same: record goes to the source's partition number; key: the key's hash decides",
    )
    rp.add_argument(
        "--timestamps",
        choices=("original", "now"),
        default="original",
        help="Kafka timestamp of copied records (the value's event ts is never changed)",
    )
    rp.add_argument(
        "--create-partitions",
        type=int,
        default=0,
        help="partitions if the target must be created (0 = as many as the source)",
    )
    rp.add_argument("--replication", type=int, default=env_int("XORSTREAM_REPLICATION", 1))
    return p


def settings_from_args(argv: list[str] | None = None) -> ReplaySettings:
    """Parse and validate the command line into one frozen ReplaySettings."""
    args = build_parser().parse_args(argv)
    if args.from_offset is not None and args.from_time is not None:
        raise ConfigError("give --from-offset or --from-time, not both")
    if args.to_offset is not None and args.to_time is not None:
        raise ConfigError("give --to-offset or --to-time, not both")
    start = parse_offset_bound(args.from_offset)
    if start.is_open:
        start = parse_time_bound(args.from_time)
    end = parse_offset_bound(args.to_offset)
    if end.is_open:
        end = parse_time_bound(args.to_time)
    evaluate = args.command == "evaluate"
    warmup = args.warmup if evaluate else 0
    if warmup < 0:
        raise ConfigError("--warmup must be >= 0")
    rng = RangeSpec(
        topic=args.input_topic,
        partitions=parse_partitions(args.partitions),
        start=start,
        end=end,
        warmup=warmup,
    )
    if evaluate:
        if args.max_diffs < 0:
            raise ConfigError("--max-diffs must be >= 0")
        if args.bucket_s <= 0:
            raise ConfigError("--bucket-s must be positive")
    else:
        if args.speed < 0:
            raise ConfigError("--speed must be >= 0 (0 = as fast as possible)")
        if args.to_topic == args.input_topic:
            raise ConfigError("--to-topic must differ from --input-topic")
    return ReplaySettings(
        command=args.command,
        bootstrap_servers=args.bootstrap_servers,
        range=rng,
        predictions_topic=args.predictions_topic if evaluate else "",
        artifact=args.artifact if evaluate else None,
        backend=args.backend if evaluate else "numpy",
        json_path=args.json_path if evaluate else None,
        png_path=args.png_path if evaluate else None,
        html_path=args.html_path if evaluate else None,
        max_diffs=args.max_diffs if evaluate else 0,
        bucket_ms=max(1, int(args.bucket_s * 1000)) if evaluate else 1000,
        min_accuracy=args.min_accuracy if evaluate else None,
        target_topic=None if evaluate else args.to_topic,
        speed=0.0 if evaluate else args.speed,
        partitioning="same" if evaluate else args.partitioning,
        timestamps="original" if evaluate else args.timestamps,
        partitions_to_create=0 if evaluate else args.create_partitions,
        replication=1 if evaluate else args.replication,
        progress=args.progress,
        log_level=args.log_level.upper(),
    )
