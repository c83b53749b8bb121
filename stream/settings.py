"""The stream processor's settings: one frozen object, filled from flags and environment here."""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass

from model.errors import ConfigError
from stream.config import env, env_int

GUARANTEES = ("exactly-once", "at-least-once")
BACKENDS = ("numpy", "tensorflow")


@dataclass(frozen=True)
class StreamSettings:
    bootstrap_servers: str | None
    input_topic: str
    predictions_topic: str
    dead_letter_topic: str
    changelog_topic: str
    group_id: str
    instance_id: str
    partitions: int
    replication: int
    artifact: str | None
    backend: str
    guarantee: str
    commit_interval_ms: int
    commit_max_records: int
    max_poll_records: int
    poll_timeout_ms: int
    state_ttl_s: float
    transaction_timeout_s: float
    metrics_port: int
    idle_exit_s: float | None
    duration_s: float | None
    log_level: str

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly-once"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stream",
        description=(
            "xorstream stream processor: joins a consumer group on the input topic, keeps a rolling "
            "5-row window per stream, and for every row that completes a window publishes the "
            "LSTM's prediction to the predictions topic. Bad records go to the dead-letter topic. "
            "Window state is kept in a compacted changelog topic, so a restarted processor or a "
            "new owner of a partition continues every stream where it was. Stop with SIGINT or "
            "SIGTERM: the batch in hand is finished and committed first."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    k = p.add_argument_group("Kafka")
    k.add_argument(
        "--bootstrap-servers",
        default=env("KAFKA_BOOTSTRAP_SERVERS"),
        help="broker list; unset: the local broker (started if needed), see README",
    )
    k.add_argument("--input-topic", default=env("XORSTREAM_INPUT_TOPIC", "xorstream.rows"))
    k.add_argument(
        "--predictions-topic", default=env("XORSTREAM_PREDICTIONS_TOPIC", "xorstream.predictions")
    )
    k.add_argument(
        "--dead-letter-topic", default=env("XORSTREAM_DEAD_LETTER_TOPIC", "xorstream.dead-letters")
    )
    k.add_argument(
        "--changelog-topic",
        default=None,
        help="compacted window-state topic (default: GROUP_ID.windows-changelog)",
    )
    k.add_argument("--group-id", default=env("XORSTREAM_GROUP_ID", "xorstream-stream"))
    k.add_argument(
        "--instance-id",
        default=None,
        help="stable id of this processor instance (transactional id suffix); reuse it "
        "when restarting the same instance so its unfinished transaction is aborted at "
        "once instead of after --transaction-timeout-s (default: random)",
    )
    k.add_argument(
        "--partitions",
        type=int,
        default=env_int("XORSTREAM_PARTITIONS", 6),
        help="partitions of topics this processor creates when missing",
    )
    k.add_argument("--replication", type=int, default=env_int("XORSTREAM_REPLICATION", 1))
    m = p.add_argument_group("model")
    m.add_argument(
        "--artifact",
        default=env("XORSTREAM_ARTIFACT"),
        help="model artifact directory (default: the committed model)",
    )
    m.add_argument("--backend", choices=BACKENDS, default=env("XORSTREAM_BACKEND", "numpy"))
    g = p.add_argument_group("delivery")
    g.add_argument(
        "--guarantee",
        choices=GUARANTEES,
        default=env("XORSTREAM_GUARANTEE", "exactly-once"),
        help="exactly-once: transactions, readers use read_committed; at-least-once: "
        "offsets committed after the broker acknowledged the outputs",
    )
    g.add_argument(
        "--commit-interval-ms",
        type=int,
        default=None,
        help="commit at least this often, and whenever a poll finds no new input. exactly-once "
        "(default 100): a transaction ends every interval and read_committed readers see "
        "predictions up to this much later. "
        "at-least-once (default 1000): predictions are visible at once; the interval only "
        "bounds how much input is processed again after a crash, and each commit writes the "
        "changelog of every stream changed, so longer intervals cost less",
    )
    g.add_argument(
        "--commit-max-records",
        type=int,
        default=20000,
        help="commit early once this many input records are pending",
    )
    g.add_argument(
        "--max-poll-records",
        type=int,
        default=5000,
        help="upper bound of one micro-batch (one predictor call)",
    )
    g.add_argument("--poll-timeout-ms", type=int, default=50)
    g.add_argument(
        "--transaction-timeout-s",
        type=float,
        default=15.0,
        help="broker aborts an abandoned transaction after this; also bounds every "
        "blocking transaction call, so a dead broker cannot hang the process",
    )
    s = p.add_argument_group("state and running")
    s.add_argument(
        "--state-ttl-s",
        type=float,
        default=24 * 3600.0,
        help="forget streams idle this long (tombstone in the changelog)",
    )
    s.add_argument(
        "--metrics-port",
        type=int,
        default=env_int("XORSTREAM_METRICS_PORT", 0),
        help="Prometheus metrics HTTP port; 0 = off",
    )
    s.add_argument(
        "--idle-exit-s",
        type=float,
        default=None,
        help="exit cleanly after this many seconds without input (batch jobs, tests)",
    )
    s.add_argument("--duration-s", type=float, default=None, help="exit cleanly after this long")
    s.add_argument("--log-level", default=env("XORSTREAM_LOG_LEVEL", "INFO"))
    return p


def settings_from_args(argv: list[str] | None = None) -> StreamSettings:
    args = build_parser().parse_args(argv)
    if args.partitions < 1 or args.replication < 1:
        raise ConfigError("--partitions and --replication must be at least 1")
    if args.commit_interval_ms is None:
        args.commit_interval_ms = 100 if args.guarantee == "exactly-once" else 1000
    if args.max_poll_records < 1 or args.commit_interval_ms < 1:
        raise ConfigError("--max-poll-records and --commit-interval-ms must be at least 1")
    if args.transaction_timeout_s < 1:
        raise ConfigError("--transaction-timeout-s must be at least 1 second")
    return StreamSettings(
        bootstrap_servers=args.bootstrap_servers,
        input_topic=args.input_topic,
        predictions_topic=args.predictions_topic,
        dead_letter_topic=args.dead_letter_topic,
        changelog_topic=args.changelog_topic or f"{args.group_id}.windows-changelog",
        group_id=args.group_id,
        instance_id=args.instance_id or uuid.uuid4().hex[:12],
        partitions=args.partitions,
        replication=args.replication,
        artifact=args.artifact,
        backend=args.backend,
        guarantee=args.guarantee,
        commit_interval_ms=args.commit_interval_ms,
        commit_max_records=args.commit_max_records,
        max_poll_records=args.max_poll_records,
        poll_timeout_ms=args.poll_timeout_ms,
        state_ttl_s=args.state_ttl_s,
        transaction_timeout_s=args.transaction_timeout_s,
        metrics_port=args.metrics_port,
        idle_exit_s=args.idle_exit_s,
        duration_s=args.duration_s,
        log_level=args.log_level.upper(),
    )
