"""The versioned model artifact: a directory with the Keras model, plain weights and metadata.

Layout of ``model/artifacts/xor-lstm/``::

    model.keras         the Keras model (needs TensorFlow to load)
    weights.npz         the same weights as plain float32 arrays (NumPy serving needs only this)
    metadata.json       version, sha256 of each file, training config and seed, library versions,
                        training time, epochs used, exhaustive accuracy
    learning_curve.png  loss and accuracy per epoch

The version is ``xor-lstm-<first 12 hex of the sha256 of the weights>``, hashed over the arrays
(names, shapes, float32 bytes), not the file bytes, so it names the network itself. Loading
checks every file against its recorded sha256 and the weights against the version, and raises
``ArtifactError`` on any mismatch rather than serve a model that is not the one described.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.data import N_FEATURES, N_WINDOWS_TOTAL, WINDOW
from model.errors import ArtifactError
from model.numpy_lstm import LstmWeights

if TYPE_CHECKING:  # pragma: no cover
    from model.train import TrainResult

log = logging.getLogger(__name__)

ARTIFACT_NAME = "xor-lstm"
DEFAULT_ARTIFACT: Path = Path(__file__).resolve().parent / "artifacts" / ARTIFACT_NAME
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "model.keras"
CURVE_FILE = "learning_curve.png"
FORMAT_VERSION = 1
_HINT = "retrain with `python -m model train` or restore the directory with `git checkout`"


def version_of(weights: LstmWeights) -> str:
    """The artifact version naming these weights."""
    return f"{ARTIFACT_NAME}-{weights.content_hash()[:12]}"


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A loaded and verified artifact: its weights and metadata; the Keras model loads on demand."""

    path: Path
    metadata: dict[str, Any]
    weights: LstmWeights

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def load_keras_model(self) -> Any:
        """Load ``model.keras`` (imports TensorFlow) and check it holds the recorded weights."""
        import keras

        try:
            model = keras.models.load_model(self.path / KERAS_FILE, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file; all mean "corrupt"
            raise ArtifactError(
                f"{self.path / KERAS_FILE} cannot be loaded ({exc}); {_HINT}"
            ) from exc
        try:
            loaded = version_of(LstmWeights.from_keras(model))
        except (ValueError, KeyError, ArtifactError) as exc:
            raise ArtifactError(
                f"{self.path / KERAS_FILE} is not an xor-lstm model: {exc}"
            ) from exc
        if loaded != self.version:
            raise ArtifactError(
                f"{self.path / KERAS_FILE} holds weights {loaded}, but metadata says "
                f"{self.version}; {_HINT}"
            )
        return model


def resolve_artifact_dir(artifact: str | os.PathLike[str] | None) -> Path:
    """The artifact directory for a CLI/API argument (None -> DEFAULT_ARTIFACT)."""
    if artifact is None:
        return DEFAULT_ARTIFACT
    path = Path(artifact)
    # Accept a path to any file inside the artifact, e.g. .../model.keras.
    return path.parent if path.is_file() else path


def load_artifact(artifact: str | os.PathLike[str] | None = None) -> Artifact:
    """Read and verify an artifact directory; raise ArtifactError naming what is wrong."""
    path = resolve_artifact_dir(artifact)
    if not path.is_dir():
        raise ArtifactError(f"model artifact directory {path} does not exist; {_HINT}")
    metadata = _read_metadata(path / METADATA_FILE)
    for name, expected in metadata["files"].items():
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"artifact file {file} is missing; {_HINT}")
        actual = file_sha256(file)
        if actual != expected:
            raise ArtifactError(
                f"artifact file {file} has sha256 {actual[:12]}..., metadata records "
                f"{str(expected)[:12]}...: the file is corrupt or from another artifact; {_HINT}"
            )
    weights = _read_weights(path / WEIGHTS_FILE)
    actual_version = version_of(weights)
    if (
        actual_version != metadata["version"]
        or weights.content_hash() != metadata["weights_sha256"]
    ):
        raise ArtifactError(
            f"{path / WEIGHTS_FILE} holds weights {actual_version} but metadata names "
            f"{metadata['version']}; {_HINT}"
        )
    units = metadata["architecture"].get("units")
    if units != weights.units:
        raise ArtifactError(
            f"metadata says {units} LSTM units, weights have {weights.units}; {_HINT}"
        )
    return Artifact(path=path, metadata=metadata, weights=weights)


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"artifact metadata {path} is missing; {_HINT}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"artifact metadata {path} is not valid JSON ({exc}); {_HINT}") from exc
    if not isinstance(metadata, dict):
        raise ArtifactError(f"artifact metadata {path} must be a JSON object; {_HINT}")
    required = ("format", "version", "weights_sha256", "files", "architecture")
    missing = [key for key in required if key not in metadata]
    if missing:
        raise ArtifactError(f"artifact metadata {path} lacks {missing}; {_HINT}")
    if metadata["format"] != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact metadata {path} has format {metadata['format']!r}; this code reads "
            f"format {FORMAT_VERSION}; {_HINT}"
        )
    files = metadata["files"]
    if not isinstance(files, dict) or WEIGHTS_FILE not in files or KERAS_FILE not in files:
        raise ArtifactError(
            f"artifact metadata {path} must list sha256 of {WEIGHTS_FILE} and {KERAS_FILE}"
        )
    if not isinstance(metadata["architecture"], dict):
        raise ArtifactError(f"artifact metadata {path}: 'architecture' must be an object")
    return metadata


def _read_weights(path: Path) -> LstmWeights:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"weights file {path} cannot be read ({exc}); {_HINT}") from exc
    return LstmWeights.from_arrays(arrays)


def build_metadata(
    weights: LstmWeights, files: dict[str, str], result: TrainResult | None = None
) -> dict[str, Any]:
    """The metadata dictionary for weights whose files have the given sha256 digests."""
    metadata: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": ARTIFACT_NAME,
        "version": version_of(weights),
        "weights_sha256": weights.content_hash(),
        "files": files,
        "architecture": {
            "window": WINDOW,
            "features": N_FEATURES,
            "units": weights.units,
            "layers": "Rescaling(x*2-1) -> LSTM(units) -> Dense(1, sigmoid)",
            "lstm_gate_order": "i,f,c,o",
            "input": f"uint8 bits 0/1, shape [n, {WINDOW}, {N_FEATURES}]",
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _library_versions(),
    }
    if result is not None:
        metadata["training"] = {
            "config": result.config.to_dict(),
            "seed": result.config.seed,
            "epochs": result.epochs,
            "seconds": round(result.seconds, 2),
            "heldout_accuracy": result.heldout_accuracy,
            "history": result.history,
        }
        metadata["evaluation"] = {
            "exhaustive_accuracy": result.exhaustive_accuracy,
            "n_windows": N_WINDOWS_TOTAL,
            "backend": "numpy",
        }
    return metadata


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import keras
        import tensorflow as tf

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    except ImportError:  # pragma: no cover - training always has TensorFlow
        pass
    return versions


def save_artifact(result: TrainResult, directory: str | os.PathLike[str] | None = None) -> Artifact:
    """Write a trained model as an artifact directory (replacing it whole) and load it back."""
    from model.train import plot_learning_curve

    target = resolve_artifact_dir(directory)
    staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        np.savez(staging / WEIGHTS_FILE, **result.weights.to_arrays())
        result.model.save(staging / KERAS_FILE)
        plot_learning_curve(result, staging / CURVE_FILE)
        files = {name: file_sha256(staging / name) for name in (WEIGHTS_FILE, KERAS_FILE)}
        metadata = build_metadata(result.weights, files, result)
        (staging / METADATA_FILE).write_text(
            json.dumps(metadata, indent=2) + "\n", encoding="utf-8"
        )
        _replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote artifact %s (%s)", target, metadata["version"])
    return load_artifact(target)


def _replace_dir(new: Path, target: Path) -> None:
    """Swap ``new`` in at ``target`` so a reader never sees a half-written artifact for long."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
