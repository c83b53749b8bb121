"""Robustness report: does training reach 1.000 on all 2^20 windows for every seed, and how fast?

Trains once per configuration (normally the reference config with seeds 0..9) with the exhaustive
early stop, in one process (one TensorFlow start-up, one 2^20-window table), and prints per seed
the epochs and seconds until every window is right.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from model.train import ExhaustiveScorer, TrainConfig, train


@dataclass(frozen=True)
class SeedRun:
    """Outcome of one seed."""

    seed: int
    epochs: int
    seconds: float
    heldout_accuracy: float
    exhaustive_accuracy: float

    @property
    def reached(self) -> bool:
        return self.exhaustive_accuracy >= 1.0


def run_robustness(
    configs: Sequence[TrainConfig], target_epochs: int = 10, target_seconds: float = 60.0
) -> bool:
    """Train each config, print the table and summary; True when every run meets the targets."""
    import keras

    scorer = ExhaustiveScorer()
    runs: list[SeedRun] = []
    print(
        f"{'seed':>4} | {'epochs':>6} | {'seconds':>7} | {'held-out acc':>12} | "
        f"{'exhaustive acc':>14} | reached 1.000"
    )
    print("-" * 70)
    for config in configs:
        keras.backend.clear_session()
        result = train(config, verbose=0, scorer=scorer)
        run = SeedRun(
            config.seed,
            result.epochs,
            result.seconds,
            result.heldout_accuracy,
            result.exhaustive_accuracy,
        )
        runs.append(run)
        print(
            f"{run.seed:>4} | {run.epochs:>6} | {run.seconds:>7.1f} | "
            f"{run.heldout_accuracy:>12.6f} | {run.exhaustive_accuracy:>14.6f} | "
            f"{'yes' if run.reached else 'NO'}",
            flush=True,
        )
    met = [
        r for r in runs if r.reached and r.epochs <= target_epochs and r.seconds < target_seconds
    ]
    reached = [r for r in runs if r.reached]
    print("-" * 70)
    print(f"reached 1.000 on all 2^20 windows: {len(reached)}/{len(runs)} seeds")
    if reached:
        epochs = [r.epochs for r in reached]
        seconds = [r.seconds for r in reached]
        print(
            f"epochs to 1.000: median {statistics.median(epochs):g}, max {max(epochs)}; "
            f"seconds: median {statistics.median(seconds):.1f}, max {max(seconds):.1f}"
        )
    cfg = configs[0] if configs else TrainConfig()
    print(
        f"config: units {cfg.units}, n_train {cfg.n_train}, batch {cfg.batch_size}, "
        f"max_epochs {cfg.max_epochs}, stop_on {cfg.stop_on}"
    )
    ok = len(met) == len(runs)
    print(
        f"target {len(runs)}/{len(runs)} seeds within {target_epochs} epochs, each under "
        f"{target_seconds:g} s: {'MET' if ok else 'MISSED'} ({len(met)}/{len(runs)})"
    )
    return ok
