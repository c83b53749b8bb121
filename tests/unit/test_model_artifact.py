"""The committed artifact and the checks that refuse a missing, corrupt or mismatched one."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.artifact import (
    DEFAULT_ARTIFACT,
    KERAS_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    build_metadata,
    file_sha256,
    load_artifact,
    version_of,
)
from model.errors import ArtifactError, XorstreamError
from model.numpy_lstm import LstmWeights
from model.predictor import load_predictor


@pytest.fixture
def artifact_copy(tmp_path: Path) -> Path:
    target = tmp_path / "xor-lstm"
    shutil.copytree(DEFAULT_ARTIFACT, target)
    return target


def rewrite_weights(directory: Path, weights: LstmWeights, update_version: bool = True) -> None:
    """Replace weights.npz and record its sha256 (and, optionally, the new version)."""
    np.savez(directory / WEIGHTS_FILE, **weights.to_arrays())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["files"][WEIGHTS_FILE] = file_sha256(directory / WEIGHTS_FILE)
    if update_version:
        fresh = build_metadata(weights, meta["files"])
        meta["version"], meta["weights_sha256"] = fresh["version"], fresh["weights_sha256"]
    (directory / METADATA_FILE).write_text(json.dumps(meta))


def test_default_artifact_is_beside_the_package_not_the_cwd() -> None:
    import model

    assert DEFAULT_ARTIFACT.is_absolute()
    assert DEFAULT_ARTIFACT == Path(model.__file__).resolve().parent / "artifacts" / "xor-lstm"
    for name in (KERAS_FILE, WEIGHTS_FILE, METADATA_FILE, "learning_curve.png"):
        assert (DEFAULT_ARTIFACT / name).is_file(), name


def test_committed_artifact_metadata_is_complete_and_consistent() -> None:
    artifact = load_artifact()
    meta = artifact.metadata
    assert re.fullmatch(r"xor-lstm-[0-9a-f]{12}", artifact.version)
    assert artifact.version == version_of(artifact.weights)
    assert meta["weights_sha256"].startswith(artifact.version.removeprefix("xor-lstm-"))
    for name in (WEIGHTS_FILE, KERAS_FILE):
        assert meta["files"][name] == file_sha256(DEFAULT_ARTIFACT / name)
    training = meta["training"]
    assert training["config"]["units"] == 10 and training["config"]["batch_size"] == 1024
    assert training["seed"] == training["config"]["seed"]
    assert 1 <= training["epochs"] <= training["config"]["max_epochs"]
    assert training["seconds"] > 0
    assert {"tensorflow", "keras", "numpy", "python"} <= set(meta["versions"])
    assert meta["evaluation"]["exhaustive_accuracy"] == 1.0
    assert meta["evaluation"]["n_windows"] == 1 << 20
    assert (DEFAULT_ARTIFACT / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_artifact_path_may_name_a_file_inside_it() -> None:
    assert load_artifact(DEFAULT_ARTIFACT / KERAS_FILE).version == load_artifact().version


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_predictor(tmp_path / "nope")


@pytest.mark.parametrize("name", [METADATA_FILE, WEIGHTS_FILE, KERAS_FILE])
def test_missing_file(artifact_copy: Path, name: str) -> None:
    (artifact_copy / name).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_predictor(artifact_copy)


@pytest.mark.parametrize("name", [WEIGHTS_FILE, KERAS_FILE])
def test_corrupt_file_fails_its_checksum(artifact_copy: Path, name: str) -> None:
    data = bytearray((artifact_copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (artifact_copy / name).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{name} has sha256"):
        load_predictor(artifact_copy)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "lacks"),
    ],
)
def test_corrupt_metadata(artifact_copy: Path, text: str, message: str) -> None:
    (artifact_copy / METADATA_FILE).write_text(text)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(artifact_copy)


def test_unreadable_weights_with_a_matching_checksum(artifact_copy: Path) -> None:
    (artifact_copy / WEIGHTS_FILE).write_bytes(b"PK\x03\x04 truncated")
    meta = json.loads((artifact_copy / METADATA_FILE).read_text())
    meta["files"][WEIGHTS_FILE] = file_sha256(artifact_copy / WEIGHTS_FILE)
    (artifact_copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_artifact(artifact_copy)


def test_metadata_that_does_not_match_the_weights(artifact_copy: Path) -> None:
    arrays = load_artifact(artifact_copy).weights.to_arrays()
    arrays["dense_bias"] = arrays["dense_bias"] + np.float32(0.5)
    rewrite_weights(artifact_copy, LstmWeights.from_arrays(arrays), update_version=False)
    with pytest.raises(ArtifactError, match="metadata names"):
        load_predictor(artifact_copy)


def test_metadata_units_must_match_the_weights(artifact_copy: Path) -> None:
    meta = json.loads((artifact_copy / METADATA_FILE).read_text())
    meta["architecture"]["units"] = 11
    (artifact_copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="11 LSTM units"):
        load_artifact(artifact_copy)


def test_unknown_metadata_format(artifact_copy: Path) -> None:
    meta = json.loads((artifact_copy / METADATA_FILE).read_text())
    meta["format"] = 99
    (artifact_copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="format 99"):
        load_artifact(artifact_copy)


def _arrays() -> dict[str, np.ndarray]:
    return load_artifact().weights.to_arrays()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("lstm_bias"), "missing"),
        (lambda a: a.update(extra=np.zeros(1, np.float32)), "unexpected"),
        (lambda a: a.update(lstm_bias=np.zeros(39, np.float32)), "shape"),
        (lambda a: a.update(dense_kernel=np.zeros((10, 2), np.float32)), "shape"),
        (lambda a: a.update(lstm_kernel=np.full((4, 40), np.nan, np.float32)), "NaN"),
        (lambda a: a.update(dense_bias=np.zeros(1, np.int32)), "dtype"),
    ],
    ids=["missing", "extra", "bias-shape", "dense-shape", "nan", "int"],
)
def test_weight_arrays_are_checked(mutate, message: str) -> None:
    arrays = _arrays()
    mutate(arrays)
    with pytest.raises(ArtifactError, match=message) as info:
        LstmWeights.from_arrays(arrays)
    assert isinstance(info.value, XorstreamError)


def test_version_is_a_content_hash_of_the_weights() -> None:
    weights = load_artifact().weights
    assert version_of(LstmWeights.from_arrays(weights.to_arrays())) == version_of(weights)
    arrays = weights.to_arrays()
    arrays["lstm_bias"] = arrays["lstm_bias"].copy()
    arrays["lstm_bias"][0] = np.nextafter(arrays["lstm_bias"][0], np.float32(1))
    assert version_of(LstmWeights.from_arrays(arrays)) != version_of(weights)
