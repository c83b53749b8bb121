"""``python -m stream.replay {evaluate,republish}``: replay what the topics recorded.

Exit codes: 0 done; 1 a system error (broker, artifact); 2 a bad setting; 3 ``evaluate`` found the
accuracy below ``--min-accuracy``; 4 ``republish`` had records the broker did not accept.
"""

from __future__ import annotations

import logging
import sys

from model.errors import ConfigError, XorstreamError
from stream.replay.settings import ReplaySettings, settings_from_args

log = logging.getLogger("stream.replay")


def _evaluate(s: ReplaySettings) -> int:
    from stream.replay.report import to_json, write_outputs
    from stream.replay.run import run_evaluate

    outcome = run_evaluate(s)
    report = outcome.report
    write_outputs(report, s.json_path, s.png_path, s.html_path)
    if s.json_path is None:
        sys.stdout.write(to_json(report))
    a = report["agreement"]
    log.info(
        "evaluated %s on %d records of %s in %.1fs (%.0f records/s): accuracy %s, log-loss %s, "
        "agreement %s (%d of %d), %d dead letters, %d gaps",
        report["model"]["version"],
        report["records"],
        s.range.topic,
        outcome.seconds,
        outcome.records_per_s,
        report["accuracy"],
        report["log_loss"],
        a["rate"],
        a["agree"],
        a["joined"],
        report["dead_letters"]["total"],
        report["sequence"]["gaps"],
    )
    if s.min_accuracy is not None and (report["accuracy"] or 0.0) < s.min_accuracy:
        log.error("accuracy %s is below --min-accuracy %s", report["accuracy"], s.min_accuracy)
        return 3
    return 0


def _republish(s: ReplaySettings) -> int:
    from stream.replay.republish import run_republish

    out = run_republish(s)
    rate = out.acked / out.seconds if out.seconds > 0 else 0.0
    log.info(
        "republished %d records of %s to %s in %.1fs (%.0f records/s): %d acknowledged, "
        "%d failed%s",
        out.sent,
        s.range.topic,
        out.target,
        out.seconds,
        rate,
        out.acked,
        out.failed,
        f" (first error: {out.first_error})" if out.failed else "",
    )
    return 4 if out.failed else 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv)
    except XorstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from stream.config import freeze_startup_heap, setup_logging

    setup_logging(settings.log_level)
    freeze_startup_heap()
    try:
        if settings.command == "evaluate":
            return _evaluate(settings)
        return _republish(settings)
    except XorstreamError as exc:
        log.error("%s", exc)
        return 2 if isinstance(exc, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
