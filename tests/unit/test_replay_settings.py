"""Replay CLI settings: range flags, time formats, validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model.errors import ConfigError
from stream.replay.settings import (
    Bound,
    parse_offset_bound,
    parse_partitions,
    parse_time_bound,
    settings_from_args,
)


def test_offset_bounds():
    assert parse_offset_bound(None).is_open
    assert parse_offset_bound("100") == Bound(offset=100)
    assert parse_offset_bound("3:250,0:10") == Bound(per_partition=((0, 10), (3, 250)))
    for bad in ("-1", "x", "0:1,0:2", "1:-5", "1:2:3"):
        with pytest.raises(ConfigError):
            parse_offset_bound(bad)


def test_time_bounds():
    assert parse_time_bound("1764800000000") == Bound(time_ms=1764800000000)
    assert parse_time_bound("2026-12-04T22:00:00Z") == Bound(
        time_ms=int(datetime(2026, 12, 4, 22, tzinfo=UTC).timestamp() * 1000)
    )
    assert parse_time_bound("2026-12-04T23:00:00+01:00") == parse_time_bound("2026-12-04T22:00:00Z")
    now = datetime(2026, 12, 5, 6, tzinfo=UTC)
    assert parse_time_bound("-8h", now=now) == parse_time_bound("2026-12-04T22:00:00Z")
    assert parse_time_bound("-30m", now=now).time_ms == int(now.timestamp() * 1000) - 1_800_000
    with pytest.raises(ConfigError, match="no time zone"):
        parse_time_bound("2026-12-04T22:00:00")
    with pytest.raises(ConfigError):
        parse_time_bound("yesterday")


def test_partitions():
    assert parse_partitions(None) is None
    assert parse_partitions("all") is None
    assert parse_partitions("2,0,2") == (0, 2)
    with pytest.raises(ConfigError):
        parse_partitions("a,b")


def test_evaluate_settings():
    s = settings_from_args(
        ["evaluate", "--input-topic", "in", "--partitions", "1", "--from-time=-1h"]
    )
    assert s.command == "evaluate"
    assert s.range.topic == "in" and s.range.partitions == (1,)
    assert s.range.start.time_ms is not None and s.range.end.is_open
    assert s.artifact is None or isinstance(s.artifact, str)
    with pytest.raises(ConfigError, match="not both"):
        settings_from_args(["evaluate", "--from-offset", "1", "--from-time", "1"])
    with pytest.raises(ConfigError):
        settings_from_args(["evaluate", "--warmup", "-1"])


def test_republish_settings():
    s = settings_from_args(["republish", "--input-topic", "a", "--to-topic", "b", "--speed", "2"])
    assert (s.target_topic, s.speed, s.partitioning, s.timestamps) == ("b", 2.0, "same", "original")
    with pytest.raises(ConfigError, match="differ"):
        settings_from_args(["republish", "--input-topic", "a", "--to-topic", "a"])
    with pytest.raises(ConfigError):
        settings_from_args(["republish", "--to-topic", "b", "--speed", "-1"])
    with pytest.raises(SystemExit):
        settings_from_args(["republish"])  # --to-topic is required
