"""Where xorstream reads its environment: here and nowhere else.

Every service builds one frozen settings object from its command line; the command-line defaults
come from environment variables read by ``env`` below, so ``XORSTREAM_*`` (and the standard
``KAFKA_BOOTSTRAP_SERVERS``) work the same in every process, the compose file and CI.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

from model.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

# The table in README.md "Configuration" lists these; keep the two in step.
ENV_VARS: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "Kafka bootstrap servers; unset = testcontainers or the local broker",
    "XORSTREAM_INPUT_TOPIC": "input rows topic (default xorstream.rows)",
    "XORSTREAM_PREDICTIONS_TOPIC": "predictions topic (default xorstream.predictions)",
    "XORSTREAM_DEAD_LETTER_TOPIC": "dead-letter topic (default xorstream.dead-letters)",
    "XORSTREAM_GROUP_ID": "consumer group of the stream processor (default xorstream-stream)",
    "XORSTREAM_PARTITIONS": "partitions for topics the services create (default 6)",
    "XORSTREAM_REPLICATION": "replication factor for created topics (default 1)",
    "XORSTREAM_ARTIFACT": "model artifact directory (default: the committed model)",
    "XORSTREAM_BACKEND": "predictor backend, numpy or tensorflow (default numpy)",
    "XORSTREAM_METRICS_PORT": "Prometheus metrics port, 0 = off",
    "XORSTREAM_GUARANTEE": "exactly-once or at-least-once (default exactly-once)",
    "XORSTREAM_KAFKA_PORT": "port of the local broker (default 9092)",
    "XORSTREAM_CACHE": "cache directory for the local broker (default ~/.cache/xorstream)",
    "XORSTREAM_LOG_LEVEL": "log level (default INFO)",
    "XORSTREAM_GC_FREEZE": "0 turns off freezing the start-up heap (short GC pauses; default 1)",
}


def env(name: str, default: str | None = None) -> str | None:
    """The value of a documented environment variable, or ``default`` when unset or empty."""
    if name not in ENV_VARS and name != "CI":
        raise ConfigError(f"{name} is not a documented xorstream environment variable")
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_int(name: str, default: int) -> int:
    """An integer environment variable; a clear error instead of a traceback for a typo."""
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def in_ci() -> bool:
    """True under CI=true: tests that need the broker must then fail, never skip."""
    return (env("CI") or "").lower() in {"1", "true", "yes"}


def cache_dir() -> Path:
    """Cache for the local broker's jars, data and logs (created on first use)."""
    base = env("XORSTREAM_CACHE")
    path = Path(base) if base else Path.home() / ".cache" / "xorstream"
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging(level: str) -> None:
    """One log format for every xorstream process."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python logs every connection attempt at INFO; keep its warnings and errors only.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def freeze_startup_heap() -> None:
    """Collect once, then hide everything allocated so far (modules, model, clients) from the
    cyclic garbage collector. Without this, every full collection walks those objects: 40-60 ms
    pauses a few times a minute under load, which is the whole p99 latency budget."""
    if env("XORSTREAM_GC_FREEZE", "1") == "0":
        return
    gc.collect()
    gc.freeze()
