"""Exhaustive evaluation: score an artifact on every one of the 2^20 possible windows.

The input space is finite, so there is no sampling error: accuracy 1.000000 here means the model
is right on every window the stream can ever show it. That is the artifact's acceptance bar.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from model.data import all_windows, window_labels

_EPS = 1e-7  # clip for log-loss, as Keras' binary cross-entropy does


@dataclass(frozen=True)
class EvalReport:
    """Accuracy, log-loss and confusion matrix of one artifact on all windows."""

    version: str
    backend: str
    n_windows: int
    accuracy: float
    log_loss: float
    confusion: np.ndarray  # [[true 0 -> 0, true 0 -> 1], [true 1 -> 0, true 1 -> 1]]
    seconds: float

    @property
    def errors(self) -> int:
        return int(self.confusion[0, 1] + self.confusion[1, 0])

    @property
    def passed(self) -> bool:
        """The acceptance bar: every window right (accuracy exactly 1.000000)."""
        return self.errors == 0

    def format(self) -> str:
        (tn, fp), (fn, tp) = self.confusion.tolist()
        width = max(len(f"{v:,}") for v in (tn, fp, fn, tp))
        return "\n".join(
            [
                f"artifact   {self.version} (backend {self.backend})",
                f"windows    {self.n_windows:,} (all 2^20, exhaustive)",
                f"accuracy   {self.accuracy:.6f} ({self.n_windows - self.errors:,} right, "
                f"{self.errors:,} wrong)",
                f"log-loss   {self.log_loss:.6g}",
                "confusion  rows = true y, columns = predicted y",
                f"           {'':6} {'pred 0':>{width}}  {'pred 1':>{width}}",
                f"           true 0 {tn:>{width},}  {fp:>{width},}",
                f"           true 1 {fn:>{width},}  {tp:>{width},}",
                f"time       {self.seconds:.2f} s",
                f"result     {'PASS' if self.passed else 'FAIL'}: bar is accuracy 1.000000",
            ]
        )


def score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(accuracy, log-loss, 2x2 confusion matrix) of probabilities of y=1 against 0/1 labels."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(labels).astype(np.int64)
    predicted = (np.asarray(probabilities) >= 0.5).astype(np.int64)
    confusion = np.bincount(y * 2 + predicted, minlength=4).reshape(2, 2)
    accuracy = float(np.trace(confusion) / y.size)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
    return accuracy, log_loss, confusion


def evaluate(artifact: str | os.PathLike[str] | None = None, backend: str = "numpy") -> EvalReport:
    """Load an artifact with the given backend and score it on all 2^20 windows."""
    from model.predictor import load_predictor

    predictor = load_predictor(artifact, backend=backend)
    windows = all_windows()
    labels = window_labels(windows)
    started = time.perf_counter()
    probabilities = predictor.predict(windows)
    seconds = time.perf_counter() - started
    accuracy, log_loss, confusion = score(probabilities, labels)
    return EvalReport(
        version=predictor.version,
        backend=predictor.backend,
        n_windows=int(labels.size),
        accuracy=accuracy,
        log_loss=log_loss,
        confusion=confusion,
        seconds=seconds,
    )
