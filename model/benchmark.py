"""Predictor throughput: rows/s per backend and batch size, against naive per-row model.predict.

The baseline is measured in the same run on the same machine, and every figure is the median of
several repeats, because the machine is shared and noisy. The public ``predict`` is what is timed,
input validation included: that is what a serving process pays.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.data import random_windows

# Targets from issue #3.
TARGET_NUMPY_512 = 1_000_000.0
TARGET_NUMPY_1 = 10_000.0
TARGET_SINGLE_VS_NAIVE = 500.0


@dataclass(frozen=True)
class Cell:
    """Median rows/s of one backend at one batch size, with its spread."""

    rows_per_s: float
    low: float
    high: float


def measure(
    call: Callable[[np.ndarray], object],
    batches: Sequence[np.ndarray],
    repeats: int,
    min_seconds: float,
) -> Cell:
    """Median rows/s over ``repeats`` timed loops of ``call`` cycling through ``batches``."""
    call(batches[0])  # warm up (allocations, tracing)
    rates = []
    for _ in range(repeats):
        rows = calls = 0
        started = time.perf_counter()
        while True:
            batch = batches[calls % len(batches)]
            call(batch)
            rows += batch.shape[0]
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds and calls >= 3:
                break
        rates.append(rows / elapsed)
    return Cell(statistics.median(rates), min(rates), max(rates))


def _fmt(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.1f}"


def run_benchmark(
    artifact: str | os.PathLike[str] | None = None,
    batch_sizes: Sequence[int] = (1, 64, 512, 4096),
    repeats: int = 7,
    min_seconds: float = 0.2,
    naive_rows: int = 20,
    seed: int = 0,
) -> dict[str, dict[int, Cell]]:
    """Measure and print the table; return {backend: {batch_size: Cell}} (incl. "naive" at 1)."""
    from model.predictor import load_predictor

    rng = np.random.default_rng(seed)
    numpy_predictor = load_predictor(artifact, backend="numpy")
    tf_predictor = load_predictor(artifact, backend="tf")
    keras_model = tf_predictor.artifact.load_keras_model()

    singles = [random_windows(1, rng).astype(np.float32) for _ in range(naive_rows)]
    naive_repeats = min(repeats, 3)
    # Baseline: what a naive consumer does, keras model.predict once per arriving row.
    naive = measure(
        lambda w: keras_model.predict(w, verbose=0), singles, naive_repeats, min_seconds=0.0
    )
    results: dict[str, dict[int, Cell]] = {"naive": {1: naive}, "numpy": {}, "tf": {}}
    for size in batch_sizes:
        batches = [random_windows(size, rng) for _ in range(8)]
        for name, predictor in (("numpy", numpy_predictor), ("tf", tf_predictor)):
            results[name][size] = measure(predictor.predict, batches, repeats, min_seconds)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"artifact {numpy_predictor.version}; {os.cpu_count()} CPUs, load average {load}; "
        f"medians of {repeats} "
        f"repeats of >= {min_seconds} s (naive: {naive_repeats} x {naive_rows} rows)"
    )
    print(
        f"naive baseline, keras model.predict per row: {naive.rows_per_s:.1f} rows/s "
        f"(range {naive.low:.1f}-{naive.high:.1f})"
    )
    print()
    header = (
        f"{'batch':>6} | {'numpy rows/s':>12} | {'tf rows/s':>10} | {'numpy/tf':>8} | "
        f"{'numpy/naive':>11} | {'tf/naive':>9} | numpy range"
    )
    print(header)
    print("-" * len(header))
    for size in batch_sizes:
        npy, tf = results["numpy"][size], results["tf"][size]
        print(
            f"{size:>6} | {_fmt(npy.rows_per_s):>12} | {_fmt(tf.rows_per_s):>10} | "
            f"{npy.rows_per_s / tf.rows_per_s:>7.1f}x | "
            f"{npy.rows_per_s / naive.rows_per_s:>10.0f}x | "
            f"{tf.rows_per_s / naive.rows_per_s:>8.0f}x | {_fmt(npy.low)}-{_fmt(npy.high)}"
        )
    print()
    checks = []
    if 512 in results["numpy"]:
        r = results["numpy"][512].rows_per_s
        checks.append(
            (
                f"numpy at batch 512 >= {_fmt(TARGET_NUMPY_512)} rows/s",
                r >= TARGET_NUMPY_512,
                _fmt(r),
            )
        )
    if 1 in results["numpy"]:
        r = results["numpy"][1].rows_per_s
        checks.append(
            (f"numpy single window >= {_fmt(TARGET_NUMPY_1)} rows/s", r >= TARGET_NUMPY_1, _fmt(r))
        )
        ratio = r / naive.rows_per_s
        checks.append(
            (
                f"numpy single window >= {TARGET_SINGLE_VS_NAIVE:.0f}x naive",
                ratio >= TARGET_SINGLE_VS_NAIVE,
                f"{ratio:.0f}x",
            )
        )
    for label, ok, value in checks:
        print(f"target {label}: {'MET' if ok else 'MISSED'} ({value})")
    return results
