"""Predictors: load an artifact once, then ``predict(windows) -> probabilities`` per batch.

Two backends behind one interface:

* ``"numpy"`` (the serving default): the network's forward pass in NumPy from ``weights.npz``
  (see ``model.numpy_lstm``). Importing this module and using it never imports TensorFlow, so a
  serving process saves ~3 s of start-up and ~500 MB of memory.
* ``"tf"``: the Keras model from ``model.keras`` behind one ``tf.function`` with a fixed input
  signature (uint8 [None, 5, 4]), traced once at load; never ``model.predict`` per call.

Both validate every batch with ``model.data.validate_windows`` and raise ``InputError`` on a bad
one; parity between them is tested on all 2^20 windows.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from model.artifact import Artifact, load_artifact
from model.data import N_FEATURES, WINDOW, validate_windows
from model.errors import ConfigError
from model.numpy_lstm import NumpyLstm

BACKENDS = ("numpy", "tf")
_TF_CHUNK = 65536  # windows per tf.function call: bounds the LSTM's intermediate tensors


class Predictor(ABC):
    """Probability that y=1 for each window of a batch, from one loaded artifact."""

    backend: str = ""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.version: str = artifact.version

    def predict(self, windows: object) -> np.ndarray:
        """float32 [n] probabilities for uint8 [n, 5, 4] windows of 0/1 bits.

        Raises InputError for a wrong shape, dtype, values outside {0, 1}, NaN or an empty batch.
        """
        return self._predict(validate_windows(windows))

    @abstractmethod
    def _predict(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities for an already validated uint8 batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r}, backend={self.backend!r})"


class NumpyPredictor(Predictor):
    """The forward pass in NumPy; no TensorFlow."""

    backend = "numpy"

    def __init__(self, artifact: Artifact) -> None:
        super().__init__(artifact)
        self._net = NumpyLstm(artifact.weights)

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        return self._net.predict(windows)


class TfPredictor(Predictor):
    """The Keras model behind a compiled ``tf.function`` traced once for uint8 [None, 5, 4]."""

    backend = "tf"

    def __init__(self, artifact: Artifact) -> None:
        super().__init__(artifact)
        import tensorflow as tf

        self._model = artifact.load_keras_model()
        model = self._model

        @tf.function(
            input_signature=[tf.TensorSpec(shape=[None, WINDOW, N_FEATURES], dtype=tf.uint8)],
            reduce_retracing=True,
        )
        def forward(windows: Any) -> Any:
            return model(tf.cast(windows, tf.float32), training=False)[:, 0]

        self._forward = forward
        self._forward(np.zeros((1, WINDOW, N_FEATURES), dtype=np.uint8))  # trace now, not on call 1

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        n = windows.shape[0]
        if n <= _TF_CHUNK:
            return self._forward(windows).numpy().astype(np.float32, copy=False)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, _TF_CHUNK):
            out[start : start + _TF_CHUNK] = self._forward(
                windows[start : start + _TF_CHUNK]
            ).numpy()
        return out


def load_predictor(
    artifact: str | os.PathLike[str] | None = None, backend: str = "numpy"
) -> Predictor:
    """Load and verify an artifact (default ``DEFAULT_ARTIFACT``) and return its predictor.

    Raises ArtifactError for a missing or corrupt artifact, ConfigError for an unknown backend.
    """
    backend = "tf" if backend == "tensorflow" else backend
    if backend not in BACKENDS:
        raise ConfigError(f"unknown predictor backend {backend!r}; choose one of {BACKENDS}")
    loaded = load_artifact(artifact)
    if backend == "numpy":
        return NumpyPredictor(loaded)
    return TfPredictor(loaded)
