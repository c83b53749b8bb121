"""Training: the reference notebook's setup, seeded, with centred inputs and an early stop.

Defaults are the reference constants (LSTM of 10 units, 2^20 random training windows, batch 1024,
2^12 held-out windows, at most 20 epochs, Adam, binary cross-entropy). Training stops as soon as
held-out accuracy reaches 1.0 *and*, with ``stop_on="exhaustive"`` (the default), the NumPy
forward pass confirms accuracy 1.0 on all 2^20 windows: 4,096 held-out windows can all be right
while a few of the 1,048,576 are still wrong, and the artifact's bar is the exhaustive one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from model.data import all_windows, random_windows, window_labels
from model.errors import ConfigError
from model.numpy_lstm import LstmWeights, NumpyLstm

log = logging.getLogger(__name__)

STOP_MODES = ("exhaustive", "heldout", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; stored in the artifact's metadata."""

    units: int = 10
    batch_size: int = 1024
    n_train: int = 1 << 20
    n_test: int = 1 << 12
    max_epochs: int = 20
    learning_rate: float = 1e-3
    seed: int = 0
    stop_on: str = "exhaustive"

    def __post_init__(self) -> None:
        for name in ("units", "batch_size", "n_train", "n_test", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.stop_on not in STOP_MODES:
            raise ConfigError(f"stop_on must be one of {STOP_MODES}, got {self.stop_on!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the artifact metadata."""
        return asdict(self)


@dataclass
class TrainResult:
    """A trained model and how it got there."""

    model: Any  # keras.Model; typed loosely so this module imports without TensorFlow
    weights: LstmWeights
    config: TrainConfig
    history: dict[str, list[float]]
    epochs: int
    seconds: float
    heldout_accuracy: float
    exhaustive_accuracy: float
    exhaustive_by_epoch: dict[int, float] = field(default_factory=dict)


def make_datasets(config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random train and held-out windows (float32) with their labels (float32)."""
    train_rng, test_rng = np.random.default_rng(config.seed).spawn(2)
    x_train = random_windows(config.n_train, train_rng)
    x_test = random_windows(config.n_test, test_rng)
    return (
        x_train.astype(np.float32),
        window_labels(x_train).astype(np.float32),
        x_test.astype(np.float32),
        window_labels(x_test).astype(np.float32),
    )


class ExhaustiveScorer:
    """Accuracy of a set of weights on all 2^20 windows, via the NumPy forward pass (~1 s)."""

    def __init__(self) -> None:
        self.windows = all_windows()
        self.labels = window_labels(self.windows)

    def accuracy(self, weights: LstmWeights) -> float:
        probs = NumpyLstm(weights).predict(self.windows)
        return float(np.mean((probs >= 0.5) == self.labels.astype(bool)))


def _stop_callback(config: TrainConfig, scorer: ExhaustiveScorer, record: dict[int, float]) -> Any:
    import keras

    class StopWhenPerfect(keras.callbacks.Callback):
        """Stop once held-out accuracy is 1.0 (and, if asked, exhaustive accuracy too)."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs if logs is not None else {}
            if config.stop_on == "none" or logs.get("val_accuracy", 0.0) < 1.0:
                return
            if config.stop_on == "heldout":
                self.model.stop_training = True
                return
            acc = scorer.accuracy(LstmWeights.from_keras(self.model))
            record[epoch + 1] = acc
            log.info("epoch %d: exhaustive accuracy %.6f on all 2^20 windows", epoch + 1, acc)
            if acc >= 1.0:
                self.model.stop_training = True

    return StopWhenPerfect()


def train(
    config: TrainConfig, verbose: int = 1, scorer: ExhaustiveScorer | None = None
) -> TrainResult:
    """Train one model; reproducible for a given config on a given machine and TF version.

    ``verbose=1`` shows the Keras progress bar. Pass a shared ``scorer`` when training many
    models in one process to build the 2^20-window table once.
    """
    import keras
    import tensorflow as tf

    from model.network import build_model

    keras.utils.set_random_seed(config.seed)
    # Same seed, same machine, same TF -> same weights; costs little on CPU for this model.
    tf.config.experimental.enable_op_determinism()
    x_train, y_train, x_test, y_test = make_datasets(config)
    model = build_model(units=config.units, learning_rate=config.learning_rate)
    scorer = scorer if scorer is not None else ExhaustiveScorer()
    exhaustive_by_epoch: dict[int, float] = {}
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.max_epochs,
        validation_data=(x_test, y_test),
        validation_batch_size=config.n_test,
        callbacks=[_stop_callback(config, scorer, exhaustive_by_epoch)],
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    weights = LstmWeights.from_keras(model)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    epochs = len(hist["loss"])
    final_exhaustive = exhaustive_by_epoch.get(epochs)
    if final_exhaustive is None:
        final_exhaustive = scorer.accuracy(weights)
    log.info(
        "trained %d epochs in %.1f s, exhaustive accuracy %.6f", epochs, seconds, final_exhaustive
    )
    return TrainResult(
        model=model,
        weights=weights,
        config=config,
        history=hist,
        epochs=epochs,
        seconds=seconds,
        heldout_accuracy=hist["val_accuracy"][-1],
        exhaustive_accuracy=final_exhaustive,
        exhaustive_by_epoch=exhaustive_by_epoch,
    )


def plot_learning_curve(result: TrainResult, path: Any) -> None:
    """Write loss and accuracy per epoch (train, held-out, exhaustive checks) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, result.epochs + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax_loss.plot(epochs, result.history["loss"], "o-", label="train")
    ax_loss.plot(epochs, result.history["val_loss"], "s--", label="held-out")
    ax_loss.axhline(np.log(2), color="grey", lw=0.8, ls=":", label="chance (ln 2)")
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss")
    ax_acc.plot(epochs, result.history["accuracy"], "o-", label="train")
    ax_acc.plot(epochs, result.history["val_accuracy"], "s--", label="held-out")
    if result.exhaustive_by_epoch:
        ep, acc = zip(*sorted(result.exhaustive_by_epoch.items()), strict=True)
        ax_acc.plot(ep, acc, "k*", ms=12, label="all 2^20 windows")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.45, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    cfg = result.config
    fig.suptitle(
        f"xor-lstm: {cfg.units} units, {cfg.n_train} windows, batch {cfg.batch_size}, "
        f"seed {cfg.seed}; {result.epochs} epochs, {result.seconds:.1f} s"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)
