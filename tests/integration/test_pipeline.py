"""The pipeline on a real broker: producer and stream processor as real processes."""

from __future__ import annotations

import json
import re
import time

from stream.codec import H_REASON, encode_row
from tests.integration.kafka_helpers import (
    assert_exactly_once_correct,
    last_assignment,
    new_topics,
    predictions_by_key,
    read_topic,
    run_producer,
    run_stream,
    send_raw,
    start_stream,
)


def _stopped_line(log: str) -> dict[str, int]:
    m = re.search(
        r"stopped: (\d+) rows, (\d+) predictions .* (\d+) dead letters, (\d+) duplicates, "
        r"(\d+) gaps",
        log,
    )
    assert m, f"no summary line in log:\n{log[-2000:]}"
    rows, preds, dead, dups, gaps = map(int, m.groups())
    return {"rows": rows, "predictions": preds, "dead": dead, "duplicates": dups, "gaps": gaps}


def test_200_streams_x_500_rows_exactly_one_correct_prediction_each(kafka_bootstrap):
    t = new_topics("p200")
    run_producer(
        kafka_bootstrap, t["input"], "--streams", "200", "--rows-per-stream", "500", "--seed", "7"
    )
    log = run_stream(kafka_bootstrap, t)
    stats = assert_exactly_once_correct(kafka_bootstrap, t)
    assert stats["inputs"] == 100_000
    assert stats["predictions"] == 200 * (500 - 4)
    assert _stopped_line(log)["predictions"] == 200 * 496


def test_two_processors_share_six_partitions(kafka_bootstrap, tmp_path):
    """Both processors join before any input exists, so neither can race through it alone."""
    from stream import kafka_io

    t = new_topics("pair")
    kafka_io.ensure_topics(kafka_bootstrap, {t["input"]: (6, 1, {})})
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [
        start_stream(
            kafka_bootstrap, t, "--idle-exit-s", "15", "--max-poll-records", "500", log_path=p
        )
        for p in logs
    ]
    deadline = time.monotonic() + 60
    while True:
        parts = [last_assignment(p.read_text()) for p in logs]
        if all(parts) and parts[0] | parts[1] == set(range(6)) and not parts[0] & parts[1]:
            break
        for p in procs:
            assert p.poll() is None, "a processor exited before the group settled"
        assert time.monotonic() < deadline, f"group never settled on two members: {parts}"
        time.sleep(0.2)
    run_producer(
        kafka_bootstrap,
        t["input"],
        "--streams",
        "120",
        "--rows-per-stream",
        "200",
        "--partitions",
        "6",
        "--seed",
        "3",
    )
    for p in procs:
        assert p.wait(timeout=300) == 0
    texts = [p.read_text() for p in logs]
    counts = [_stopped_line(x)["rows"] for x in texts]
    assert all(c > 0 for c in counts), f"both processors must take part: {counts}"
    assert sum(counts) == 120 * 200, f"every row processed exactly once by the group: {counts}"
    assert_exactly_once_correct(kafka_bootstrap, t)


def test_bad_records_go_to_dead_letters_and_good_ones_flow(kafka_bootstrap):
    t = new_topics("bad")
    good = [(b"g1", encode_row("g1", i, [i % 2, 1, 0, 1], None, 1000 + i)) for i in range(8)]
    bad = {
        "not_json": (b"g1", b"{not json"),
        "missing_key": (None, encode_row("g1", 99, [1, 0, 0, 0], None, 1)),
        "bad_bits": (b"b2", encode_row("b2", 0, [2, 0, 0, 0], None, 1)),
        "negative_seq": (b"b3", b'{"stream":"b3","seq":-1,"x":[1,0,0,0],"y":null,"ts":1}'),
        "missing_field": (b"b4", b'{"stream":"b4","seq":0,"x":[1,0,0,0],"ts":1}'),
        "bad_type": (b"b5", b'{"stream":"b5","seq":"0","x":[1,0,0,0],"y":null,"ts":1}'),
        "oversized": (b"b6", b'{"stream":"b6","pad":"' + b"x" * 5000 + b'"}'),
        "not_object": (b"b7", b"[1,2,3]"),
        "key_mismatch": (b"other", encode_row("b8", 0, [1, 0, 0, 0], None, 1)),
    }
    # bad records between good ones, all on one partition so order is known
    mixed = good[:3] + list(bad.values())[:5] + good[3:] + list(bad.values())[5:]
    from kafka import KafkaProducer

    from stream import kafka_io

    kafka_io.ensure_topics(kafka_bootstrap, {t["input"]: (1, 1, {})})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in mixed:
        producer.send(t["input"], key=key, value=value, partition=0)
    producer.flush()
    producer.close()
    log = run_stream(kafka_bootstrap, t)
    dead = read_topic(kafka_bootstrap, t["dead"])
    reasons = sorted(dict(r.headers)[H_REASON].decode() for r in dead)
    assert reasons == sorted(bad), reasons
    originals = {v for _, v in bad.values()}
    assert {r.value for r in dead} == originals, "dead letters must carry the original bytes"
    for r in dead:
        h = dict(r.headers)
        assert h["xorstream.source.topic"].decode() == t["input"]
        assert int(h["xorstream.source.offset"]) >= 0
    preds = predictions_by_key(read_topic(kafka_bootstrap, t["predictions"]))
    assert sorted(seq for (_, seq) in preds) == [4, 5, 6, 7]
    assert _stopped_line(log)["dead"] == len(bad)


def test_duplicates_dropped_and_gaps_reset_the_window(kafka_bootstrap):
    t = new_topics("dup")
    seqs = [0, 1, 2, 3, 4, 5, 3, 5, 6, 10, 11, 12, 13, 14, 15]
    rows = [(b"d1", encode_row("d1", s, [s % 2, 0, 1, 0], None, 5000 + s)) for s in seqs]
    from stream import kafka_io

    kafka_io.ensure_topics(kafka_bootstrap, {t["input"]: (1, 1, {})})
    send_raw(kafka_bootstrap, t["input"], rows)
    log = run_stream(kafka_bootstrap, t)
    preds = [json.loads(r.value) for r in read_topic(kafka_bootstrap, t["predictions"])]
    # 4, 5, 6 before the gap; after the gap at 10 the window restarts: 14 and 15 complete it.
    assert [p["seq"] for p in preds] == [4, 5, 6, 14, 15]
    for p in preds:  # x1 = seq % 2, so the label is the parity of the window's odd seqs
        window = range(p["seq"] - 4, p["seq"] + 1)
        assert p["y_hat"] == sum(s % 2 for s in window) % 2
    stats = _stopped_line(log)
    assert (stats["duplicates"], stats["gaps"]) == (2, 1)


def test_at_least_once_mode_delivers_every_prediction(kafka_bootstrap):
    t = new_topics("alo")
    run_producer(
        kafka_bootstrap, t["input"], "--streams", "50", "--rows-per-stream", "300", "--seed", "12"
    )
    log = run_stream(
        kafka_bootstrap, t, "--guarantee", "at-least-once", "--commit-interval-ms", "50"
    )
    # no fault happened, so at-least-once delivered each prediction exactly once as well
    assert_exactly_once_correct(kafka_bootstrap, t)
    assert _stopped_line(log)["predictions"] == 50 * 296


def test_key_partition_matches_the_default_partitioner(kafka_bootstrap):
    """The producer sends with partitions hashed once per stream; they must be the ones the
    client's default partitioner picks, so keyed consumers see the usual layout."""
    from kafka import KafkaProducer

    from stream import kafka_io

    topic = new_topics("keys")["input"]
    kafka_io.ensure_topics(kafka_bootstrap, {topic: (7, 1, {})})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    keys = [f"s{i:05d}".encode() for i in range(300)]
    got = {k: producer.send(topic, key=k, value=b"v").get(timeout=30).partition for k in keys}
    producer.close()
    assert len(set(got.values())) == 7
    assert {k: kafka_io.key_partition(k, 7) for k in keys} == got
