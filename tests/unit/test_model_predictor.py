"""The NumPy predictor: the committed artifact is perfect on all 2^20 windows, bad input is refused,
and serving with it never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from model.data import N_FEATURES, WINDOW, all_windows, random_windows, window_labels
from model.errors import ConfigError, InputError
from model.evaluate import evaluate, score
from model.predictor import load_predictor


@pytest.fixture(scope="module")
def predictor():
    return load_predictor()


def test_committed_artifact_scores_1_on_all_2_20_windows() -> None:
    report = evaluate(backend="numpy")
    assert report.n_windows == 1_048_576
    assert report.accuracy == 1.0 and report.errors == 0 and report.passed
    assert report.confusion.tolist() == [[524_288, 0], [0, 524_288]]
    assert report.log_loss < 0.05
    assert "accuracy   1.000000" in report.format()


def test_predict_returns_float32_probabilities(predictor) -> None:
    windows = random_windows(1000, np.random.default_rng(1))
    probs = predictor.predict(windows)
    assert probs.dtype == np.float32 and probs.shape == (1000,)
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_array_equal(probs >= 0.5, window_labels(windows).astype(bool))
    assert predictor.backend == "numpy"
    assert predictor.version.startswith("xor-lstm-")


def test_batch_size_does_not_change_answers(predictor) -> None:
    windows = all_windows()[::97]  # spans several internal chunks
    whole = predictor.predict(windows)
    singles = np.concatenate([predictor.predict(windows[i : i + 1]) for i in range(0, 300)])
    np.testing.assert_allclose(whole[:300], singles, atol=1e-6)


def test_accepts_other_dtypes_and_non_contiguous_input(predictor) -> None:
    windows = random_windows(64, np.random.default_rng(2))
    expected = predictor.predict(windows)
    for variant in (
        windows.astype(bool),
        windows.astype(np.int64),
        windows.astype(np.float32),
        windows.tolist(),
        np.asfortranarray(windows),
        np.repeat(windows, 2, axis=2)[:, :, ::2],  # strided view
    ):
        np.testing.assert_array_equal(predictor.predict(variant), expected)


BAD_BATCHES = {
    "shape-2d": (np.zeros((5, 4), np.uint8), "shape"),
    "shape-window": (np.zeros((2, WINDOW - 1, N_FEATURES), np.uint8), "shape"),
    "shape-features": (np.zeros((2, WINDOW, N_FEATURES + 1), np.uint8), "shape"),
    "dtype-str": (np.full((1, WINDOW, N_FEATURES), "0"), "dtype"),
    "dtype-object": (np.zeros((1, WINDOW, N_FEATURES), object), "dtype"),
    "value-2": (np.full((1, WINDOW, N_FEATURES), 2, np.uint8), "only 0 and 1"),
    "value-neg": (np.full((1, WINDOW, N_FEATURES), -1, np.int8), "only 0 and 1"),
    "value-half": (np.full((1, WINDOW, N_FEATURES), 0.5), "only 0 and 1"),
    "nan": (np.full((1, WINDOW, N_FEATURES), np.nan), "NaN"),
    "empty": (np.zeros((0, WINDOW, N_FEATURES), np.uint8), "empty"),
    "none": (None, "dtype|shape"),
}


@pytest.mark.parametrize("name", list(BAD_BATCHES))
def test_bad_input_gets_a_named_error(predictor, name: str) -> None:
    batch, message = BAD_BATCHES[name]
    with pytest.raises(InputError, match=message):
        predictor.predict(batch)


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError, match="unknown predictor backend"):
        load_predictor(backend="torch")


def test_score_counts_confusion_and_log_loss() -> None:
    acc, loss, confusion = score(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert acc == 0.5
    assert confusion.tolist() == [[1, 1], [1, 1]]
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.4]))
    assert loss == pytest.approx(expected)


def test_numpy_serving_never_imports_tensorflow() -> None:
    code = (
        "import sys, numpy as np\n"
        "from model.predictor import load_predictor\n"
        "from model.data import random_windows\n"
        "p = load_predictor(backend='numpy')\n"
        "p.predict(random_windows(8, np.random.default_rng(0)))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'h5py')]\n"
        "assert not bad, bad\n"
        "print('ok', p.version)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok xor-lstm-")
