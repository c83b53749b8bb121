"""TensorFlow backend: parity with the NumPy forward pass, a single traced tf.function, and the
Keras file checked against the metadata."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.artifact import DEFAULT_ARTIFACT, KERAS_FILE, METADATA_FILE, file_sha256
from model.data import N_FEATURES, WINDOW, all_windows, random_windows
from model.errors import ArtifactError, InputError
from model.numpy_lstm import LstmWeights, NumpyLstm
from model.predictor import load_predictor

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tf_predictor():
    return load_predictor(backend="tf")


@pytest.fixture(scope="module")
def numpy_predictor():
    return load_predictor(backend="numpy")


def test_parity_on_a_large_random_sample(tf_predictor, numpy_predictor) -> None:
    windows = random_windows(200_000, np.random.default_rng(3))
    p_tf, p_np = tf_predictor.predict(windows), numpy_predictor.predict(windows)
    assert p_tf.dtype == np.float32 and p_tf.shape == (200_000,)
    assert float(np.max(np.abs(p_tf - p_np))) <= 1e-5


def test_identical_decisions_on_all_2_20_windows(tf_predictor, numpy_predictor) -> None:
    windows = all_windows()
    p_tf, p_np = tf_predictor.predict(windows), numpy_predictor.predict(windows)
    np.testing.assert_array_equal(p_tf >= 0.5, p_np >= 0.5)
    assert float(np.max(np.abs(p_tf - p_np))) <= 1e-5
    assert tf_predictor.version == numpy_predictor.version


def test_tf_function_is_traced_once(tf_predictor) -> None:
    rng = np.random.default_rng(4)
    for n in (1, 7, 512, 4096):
        tf_predictor.predict(random_windows(n, rng))
    assert tf_predictor._forward.experimental_get_tracing_count() == 1


def test_tf_backend_validates_input(tf_predictor) -> None:
    with pytest.raises(InputError, match="only 0 and 1"):
        tf_predictor.predict(np.full((1, WINDOW, N_FEATURES), 3))


def test_numpy_forward_matches_keras_for_random_untrained_weights() -> None:
    """The forward-pass algebra holds for any weights, not just the trained, saturated ones."""
    import keras

    from model.network import build_model

    keras.utils.set_random_seed(11)
    model = build_model(units=7)
    weights = model.get_weights()
    # Larger, non-default weights so every gate is far from its initial regime.
    rng = np.random.default_rng(11)
    model.set_weights([w + rng.normal(0, 0.5, w.shape).astype(np.float32) for w in weights])
    windows = all_windows()[::37]
    expected = np.asarray(model(windows.astype(np.float32), training=False))[:, 0]
    actual = NumpyLstm(LstmWeights.from_keras(model)).predict(windows)
    assert float(np.max(np.abs(expected - actual))) <= 1e-5


def test_keras_file_with_other_weights_is_refused(tmp_path: Path) -> None:
    import keras

    from model.network import build_model

    target = tmp_path / "xor-lstm"
    shutil.copytree(DEFAULT_ARTIFACT, target)
    keras.utils.set_random_seed(5)
    build_model().save(target / KERAS_FILE)
    meta = json.loads((target / METADATA_FILE).read_text())
    meta["files"][KERAS_FILE] = file_sha256(target / KERAS_FILE)
    (target / METADATA_FILE).write_text(json.dumps(meta))
    load_predictor(target, backend="numpy")  # checksums match; NumPy never loads model.keras
    with pytest.raises(ArtifactError, match="holds weights"):
        load_predictor(target, backend="tf")
