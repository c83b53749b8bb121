"""Replay on a real broker: evaluate a recorded pipeline run, a wrong model, and republish.

One recorded run (producer + stream processor as real processes, plus bad records) is shared by
the module; each test reads it back with ``python -m stream.replay`` or its functions.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from model.artifact import (
    DEFAULT_ARTIFACT,
    METADATA_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_artifact,
    version_of,
)
from model.numpy_lstm import LstmWeights
from model.predictor import load_predictor
from stream.codec import encode_row
from stream.replay.run import run_evaluate
from stream.replay.settings import settings_from_args
from tests.integration.kafka_helpers import (
    PY,
    REPO,
    expected_from_input,
    new_topics,
    proc_env,
    read_topic,
    run_producer,
    run_stream,
    send_raw,
)

pytestmark = pytest.mark.integration

STREAMS, ROWS_PER_STREAM, PARTITIONS = 30, 100, 3
WINDOWS = STREAMS * (ROWS_PER_STREAM - 4)
BAD = [
    (b"s-1", b"{not json"),
    (None, encode_row("s-2", 999, [1, 0, 0, 0], None, 1)),
    (b"s-3", encode_row("s-3", 999, [2, 0, 0, 0], None, 1)),
]


@pytest.fixture(scope="module")
def recorded(kafka_bootstrap):
    """Topics of one finished pipeline run: 3000 rows, 3 bad records, predictions recorded."""
    t = new_topics("replay")
    run_producer(
        kafka_bootstrap,
        t["input"],
        "--streams",
        str(STREAMS),
        "--rows-per-stream",
        str(ROWS_PER_STREAM),
        "--partitions",
        str(PARTITIONS),
        "--seed",
        "11",
    )
    send_raw(kafka_bootstrap, t["input"], BAD)
    run_stream(kafka_bootstrap, t)
    return t


def _replay(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [PY, "-m", "stream.replay", *args, "--no-progress"],
        cwd=REPO,
        env=proc_env(bootstrap),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, f"replay failed:\n{res.stderr[-3000:]}"
    return res


def _evaluate(bootstrap: str, t: dict[str, str], *args: str) -> dict:
    s = settings_from_args(
        [
            "evaluate",
            "--bootstrap-servers",
            bootstrap,
            "--input-topic",
            t["input"],
            "--predictions-topic",
            t["predictions"],
            "--no-progress",
            *args,
        ]
    )
    return run_evaluate(s).report


def test_evaluate_pipeline_run_is_accurate_and_agrees_with_recorded(
    kafka_bootstrap, recorded, tmp_path
):
    out = tmp_path / "report.json"
    _replay(
        kafka_bootstrap,
        "evaluate",
        "--input-topic",
        recorded["input"],
        "--predictions-topic",
        recorded["predictions"],
        "--json",
        str(out),
        "--png",
        str(tmp_path / "report.png"),
        "--html",
        str(tmp_path / "report.html"),
        "--min-accuracy",
        "0.999",
    )
    report = json.loads(out.read_text())
    version = load_predictor().version
    assert report["records"] == STREAMS * ROWS_PER_STREAM + len(BAD)
    assert report["rows"] == STREAMS * ROWS_PER_STREAM
    assert report["windows_scored"] == report["windows_labelled"] == WINDOWS
    assert report["accuracy"] == 1.0
    assert report["confusion"]["fp"] == report["confusion"]["fn"] == 0
    a = report["agreement"]
    assert (a["joined"], a["agree"], a["differ"], a["rate"]) == (WINDOWS, WINDOWS, 0, 1.0)
    assert a["scored_without_recorded"] == a["recorded_without_window"] == a["key_mismatch"] == 0
    assert a["rows"] == []
    assert report["recorded"]["models"] == {version: WINDOWS}
    assert report["latency_ms"]["count"] == WINDOWS
    assert 0 <= report["latency_ms"]["p50"] <= report["latency_ms"]["max"]
    assert report["dead_letters"]["total"] == len(BAD)
    assert report["dead_letters"]["by_reason"] == {"bad_bits": 1, "missing_key": 1, "not_json": 1}
    assert report["sequence"] == {"gaps": 0, "duplicates": 0}
    assert report["per_stream_accuracy"]["streams_scored"] == STREAMS
    assert report["per_stream_accuracy"]["min"] == 1.0
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    # Deterministic: the same range scored in-process gives the same report, byte for byte.
    again = _evaluate(kafka_bootstrap, recorded)
    assert json.dumps(again, indent=2) + "\n" == out.read_text()


def _shuffled_artifact(directory) -> str:
    """A loadable artifact whose weights are the real ones shuffled: a wrong model."""
    shutil.copytree(DEFAULT_ARTIFACT, directory)
    weights = load_artifact(directory).weights
    rng = np.random.default_rng(5)
    arrays = {
        k: (rng.permutation(v.ravel()).reshape(v.shape) if v.ndim else v)
        for k, v in weights.to_arrays().items()
    }
    wrong = LstmWeights.from_arrays(arrays)
    np.savez(directory / WEIGHTS_FILE, **wrong.to_arrays())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["version"] = version_of(wrong)
    meta["weights_sha256"] = wrong.content_hash()
    meta["files"][WEIGHTS_FILE] = file_sha256(directory / WEIGHTS_FILE)
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    return str(directory)


def _reference_accuracy(bootstrap: str, topic: str, artifact: str) -> float:
    """Accuracy of an artifact recomputed from the input topic without any replay code."""
    rows: dict[str, list[tuple[int, list[int]]]] = {}
    for r in read_topic(bootstrap, topic):
        try:
            row = json.loads(r.value)
        except ValueError:
            continue
        if isinstance(row, dict) and r.key is not None and all(b in (0, 1) for b in row["x"]):
            rows.setdefault(row["stream"], []).append((row["seq"], row["x"]))
    labels = expected_from_input(read_topic(bootstrap, topic))
    windows, ys = [], []
    for stream, seq_rows in rows.items():
        seq_rows.sort()
        for i in range(4, len(seq_rows)):
            windows.append([x for _, x in seq_rows[i - 4 : i + 1]])
            ys.append(labels[(stream, seq_rows[i][0])])
    p = load_predictor(artifact).predict(np.asarray(windows, dtype=np.uint8))
    return float(((p >= 0.5) == (np.asarray(ys) == 1)).mean())


def test_wrong_artifact_reports_its_true_accuracy(kafka_bootstrap, recorded, tmp_path):
    artifact = _shuffled_artifact(tmp_path / "wrong")
    report = _evaluate(kafka_bootstrap, recorded, "--artifact", artifact, "--max-diffs", "5")
    expected = _reference_accuracy(kafka_bootstrap, recorded["input"], artifact)
    assert 0.3 < expected < 0.7, "the shuffled model should be no better than a coin"
    assert report["accuracy"] == round(expected, 6)
    assert report["windows_scored"] == WINDOWS
    a = report["agreement"]
    # Every recorded prediction was right, so agreeing with them is being right.
    assert (
        a["joined"] == WINDOWS
        and a["agree"] == report["confusion"]["tn"] + report["confusion"]["tp"]
    )
    assert a["differ"] == WINDOWS - a["agree"] > 0
    assert len(a["rows"]) == 5 and a["rows_truncated"]
    coords = [(d["partition"], d["offset"]) for d in a["rows"]]
    assert coords == sorted(coords), "listed rows are the first differing rows in offset order"
    assert report["model"]["version"] != load_predictor().version
    assert report["model"]["version"] not in report["recorded"]["models"]


def test_partition_and_offset_range_with_warmup(kafka_bootstrap, recorded):
    cold = _evaluate(kafka_bootstrap, recorded, "--partitions", "0,2", "--from-offset", "40")
    warm = _evaluate(
        kafka_bootstrap, recorded, "--partitions", "0,2", "--from-offset", "40", "--warmup", "40"
    )
    assert [r["partition"] for r in cold["ranges"]] == [0, 2]
    for rep in (cold, warm):
        assert rep["accuracy"] == 1.0 and rep["agreement"]["rate"] == 1.0
        assert rep["recorded"]["in_range"] == warm["windows_scored"]
    # Cold, each stream loses its first 4 windows of the range; warmed up, none is lost.
    assert cold["agreement"]["recorded_without_window"] > 0
    assert warm["agreement"]["recorded_without_window"] == 0
    assert warm["warmup_records"] == 80


def test_republish_then_fresh_processor_reproduces_predictions(kafka_bootstrap, recorded):
    copy = new_topics("replayed")
    res = _replay(
        kafka_bootstrap,
        "republish",
        "--input-topic",
        recorded["input"],
        "--to-topic",
        copy["input"],
        "--speed",
        "20",
    )
    assert f"republished {STREAMS * ROWS_PER_STREAM + len(BAD)} records" in res.stderr
    run_stream(kafka_bootstrap, copy)

    def fields(topic: str) -> dict:
        out = {}
        for r in read_topic(kafka_bootstrap, topic):
            p = json.loads(r.value)
            p.pop("processed_ts")
            out[(p["stream"], p["seq"])] = p
        return out

    original, replayed = fields(recorded["predictions"]), fields(copy["predictions"])
    assert len(original) == WINDOWS
    # Same partitions, same order, fresh topic: even the source offsets are the same.
    assert replayed == original
    assert len(read_topic(kafka_bootstrap, copy["dead"])) == len(BAD)
