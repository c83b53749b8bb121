"""``python -m model`` / ``xorstream-model``: train, evaluate, bench and robustness commands.

Heavy imports (TensorFlow) happen inside the commands that need them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from model.errors import XorstreamError

log = logging.getLogger("model")


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _add_train_config_args(parser: argparse.ArgumentParser) -> None:
    from model.train import STOP_MODES, TrainConfig

    d = TrainConfig()
    g = parser.add_argument_group("training configuration (defaults: the reference notebook)")
    g.add_argument("--units", type=_positive_int, default=d.units, help="LSTM units (%(default)s)")
    g.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="(%(default)s)")
    g.add_argument(
        "--n-train",
        type=_positive_int,
        default=d.n_train,
        help="random training windows (%(default)s = 2^20; accepts 0x100000)",
    )
    g.add_argument(
        "--n-test",
        type=_positive_int,
        default=d.n_test,
        help="random held-out windows (%(default)s = 2^12)",
    )
    g.add_argument("--max-epochs", type=_positive_int, default=d.max_epochs, help="(%(default)s)")
    g.add_argument(
        "--learning-rate", type=float, default=d.learning_rate, help="Adam (%(default)s)"
    )
    g.add_argument(
        "--stop-on",
        choices=STOP_MODES,
        default=d.stop_on,
        help="early stop once held-out accuracy is 1.0 and (exhaustive) all 2^20 windows are "
        "right too, or (heldout) on held-out alone, or (none) never (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The CLI; one subcommand per task."""
    from model.artifact import DEFAULT_ARTIFACT

    parser = argparse.ArgumentParser(
        prog="xorstream-model",
        description="Train, evaluate and benchmark the xor-lstm model "
        "(y = XOR of x1 over the last 5 rows).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model and write a versioned artifact",
        description="Train the LSTM (seeded, reproducible), stop early once it is perfect, score "
        "it on all 2^20 windows and write model.keras, weights.npz, metadata.json and "
        "learning_curve.png to the artifact directory. Refuses to overwrite the artifact with a "
        "model that misses the bar (accuracy 1.000000) unless --allow-imperfect.",
    )
    _add_train_config_args(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    p.add_argument(
        "--out",
        default=str(DEFAULT_ARTIFACT),
        metavar="DIR",
        help="artifact directory to write (default: the committed artifact, %(default)s)",
    )
    p.add_argument(
        "--allow-imperfect", action="store_true", help="write the artifact even if it fails the bar"
    )
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")

    p = sub.add_parser(
        "evaluate",
        help="score an artifact on all 2^20 windows (exit 1 below 1.000000)",
        description="Score an artifact on all 1,048,576 possible windows; print accuracy, log-loss "
        "and the confusion matrix. Exit status 0 when accuracy is exactly 1.000000, 1 when it "
        "falls short, 2 when the artifact cannot be loaded.",
    )
    p.add_argument(
        "artifact",
        nargs="?",
        default=None,
        metavar="ARTIFACT",
        help=f"artifact directory (default: {DEFAULT_ARTIFACT})",
    )
    p.add_argument("--backend", choices=("numpy", "tf"), default="numpy", help="(%(default)s)")

    p = sub.add_parser(
        "bench",
        help="rows/s per predictor backend vs naive per-row model.predict",
        description="Measure rows/s of the NumPy and compiled-TF predictors for several batch "
        "sizes, beside the naive per-row keras model.predict baseline measured in the same run. "
        "Figures are medians of repeats.",
    )
    p.add_argument(
        "--artifact", default=None, help=f"artifact directory (default: {DEFAULT_ARTIFACT})"
    )
    p.add_argument("--batch-sizes", default="1,64,512,4096", help="comma-separated (%(default)s)")
    p.add_argument(
        "--repeats", type=_positive_int, default=7, help="timed repeats per cell (%(default)s)"
    )
    p.add_argument(
        "--min-seconds", type=float, default=0.2, help="minimum time per repeat (%(default)s)"
    )
    p.add_argument(
        "--naive-rows",
        type=_positive_int,
        default=20,
        help="rows per repeat of the per-row model.predict baseline (%(default)s)",
    )

    p = sub.add_parser(
        "robustness",
        help="train with many seeds; tabulate epochs and seconds to 1.000",
        description="Train once per seed with the reference configuration and report, per seed, "
        "the epochs and seconds until all 2^20 windows are right. Writes no artifact.",
    )
    _add_train_config_args(p)
    p.add_argument("--seeds", type=_positive_int, default=10, help="how many seeds (%(default)s)")
    p.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first..first+n-1 (%(default)s)"
    )
    p.add_argument("--target-epochs", type=_positive_int, default=10, help="target (%(default)s)")
    p.add_argument("--target-seconds", type=float, default=60.0, help="target (%(default)s)")
    return parser


def _train_config(args: argparse.Namespace, seed: int) -> object:
    from model.train import TrainConfig

    return TrainConfig(
        units=args.units,
        batch_size=args.batch_size,
        n_train=args.n_train,
        n_test=args.n_test,
        max_epochs=args.max_epochs,
        learning_rate=args.learning_rate,
        seed=seed,
        stop_on=args.stop_on,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from model.artifact import save_artifact
    from model.evaluate import evaluate
    from model.train import train

    config = _train_config(args, args.seed)
    result = train(config, verbose=0 if args.quiet else 1)  # type: ignore[arg-type]
    print(
        f"trained {result.epochs} epochs in {result.seconds:.1f} s; held-out accuracy "
        f"{result.heldout_accuracy:.6f}; exhaustive accuracy {result.exhaustive_accuracy:.6f}"
    )
    if result.exhaustive_accuracy < 1.0 and not args.allow_imperfect:
        print(
            f"error: the model misses the bar (accuracy 1.000000 on all 2^20 windows); "
            f"{args.out} left unchanged. Try another --seed or more --max-epochs, or pass "
            "--allow-imperfect to write it anyway.",
            file=sys.stderr,
        )
        return 1
    artifact = save_artifact(result, args.out)
    print(f"wrote {artifact.path} version {artifact.version}")
    report = evaluate(artifact.path)
    print(report.format())
    return 0 if report.passed else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from model.evaluate import evaluate

    report = evaluate(args.artifact, backend=args.backend)
    print(report.format())
    return 0 if report.passed else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from model.benchmark import run_benchmark

    try:
        sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"--batch-sizes {args.batch_sizes!r}: need positive integers"
        )
    run_benchmark(
        artifact=args.artifact,
        batch_sizes=sizes,
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        naive_rows=args.naive_rows,
    )
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from model.robustness import run_robustness

    configs = [_train_config(args, s) for s in range(args.first_seed, args.first_seed + args.seeds)]
    ok = run_robustness(
        configs, target_epochs=args.target_epochs, target_seconds=args.target_seconds
    )  # type: ignore[arg-type]
    return 0 if ok else 1


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "bench": cmd_bench,
    "robustness": cmd_robustness,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xorstream-model``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    except XorstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2  # unreachable: parser.error exits


if __name__ == "__main__":
    sys.exit(main())
