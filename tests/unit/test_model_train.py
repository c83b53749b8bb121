"""One real (reduced) training run, no mocks: it learns, it is seeded, and it saves an artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.errors import ConfigError
from model.train import TrainConfig, make_datasets

pytest.importorskip("tensorflow")

# 1/64 of the reference data with a 10x learning rate: converges in ~4 epochs (~5 s) for seed 1.
SMALL = TrainConfig(
    n_train=1 << 14, batch_size=128, n_test=1 << 12, max_epochs=15, learning_rate=1e-2, seed=1
)


@pytest.mark.slow
def test_small_training_run_learns_and_saves_an_artifact(tmp_path: Path) -> None:
    from model.artifact import load_artifact, save_artifact
    from model.evaluate import evaluate
    from model.train import train

    result = train(SMALL, verbose=0)
    assert result.heldout_accuracy >= 0.99, result.history
    assert result.epochs <= SMALL.max_epochs
    artifact = save_artifact(result, tmp_path / "small")
    assert artifact.version.startswith("xor-lstm-")
    meta = json.loads((tmp_path / "small" / "metadata.json").read_text())
    assert meta["training"]["config"] == SMALL.to_dict()
    assert meta["training"]["epochs"] == result.epochs
    assert meta["evaluation"]["exhaustive_accuracy"] == result.exhaustive_accuracy
    assert (tmp_path / "small" / "learning_curve.png").stat().st_size > 1000
    # The saved artifact scores what training measured, via both the file and the weights.
    assert evaluate(tmp_path / "small").accuracy == pytest.approx(result.exhaustive_accuracy)
    assert load_artifact(tmp_path / "small").weights.content_hash() == meta["weights_sha256"]


@pytest.mark.slow
def test_training_is_reproducible_for_a_seed() -> None:
    from model.train import train

    tiny = TrainConfig(n_train=1024, batch_size=256, n_test=256, max_epochs=1, seed=3)
    first, second = train(tiny, verbose=0), train(tiny, verbose=0)
    assert first.weights.content_hash() == second.weights.content_hash()
    assert first.history == second.history


def test_datasets_are_seeded_and_disjoint_streams() -> None:
    cfg = TrainConfig(n_train=512, n_test=256, seed=9)
    a, b = make_datasets(cfg), make_datasets(cfg)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    x_train, y_train, x_test, _ = a
    assert x_train.shape == (512, 5, 4) and x_test.shape == (256, 5, 4)
    assert x_train.dtype == np.float32 and set(np.unique(y_train)) <= {0.0, 1.0}
    assert not np.array_equal(x_train[:256], x_test)


@pytest.mark.parametrize(
    "bad",
    [
        {"units": 0},
        {"batch_size": -1},
        {"n_train": 0},
        {"max_epochs": 0},
        {"learning_rate": 0.0},
        {"seed": -1},
        {"stop_on": "never"},
    ],
)
def test_bad_config_is_rejected(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**bad)
