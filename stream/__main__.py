"""``python -m stream`` / ``xorstream-stream``: run one stream processor."""

from __future__ import annotations

import logging
import sys

from model.errors import XorstreamError
from stream.config import freeze_startup_heap, setup_logging
from stream.settings import settings_from_args


def main(argv: list[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv)
    except XorstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    log = logging.getLogger("stream")
    try:
        from model.predictor import load_predictor
        from stream.metrics import StreamMetrics
        from stream.processor import Processor

        predictor = load_predictor(settings.artifact, backend=settings.backend)
        metrics = StreamMetrics()
        metrics.set_model(predictor.version, settings.backend)
        if settings.metrics_port:
            port = metrics.serve(settings.metrics_port)
            log.info("metrics on http://0.0.0.0:%d/metrics", port)
        proc = Processor(settings, predictor, metrics)
        proc.install_signal_handlers()
        freeze_startup_heap()
        totals = proc.run()
    except XorstreamError as exc:
        log.error("%s", exc)
        return 1
    log.info(
        "stopped: %d rows, %d predictions (%d correct, %d incorrect), %d dead letters, "
        "%d duplicates, %d gaps, %d commits, %d aborts, %.0f rows/s",
        totals.rows,
        totals.predictions,
        totals.correct,
        totals.incorrect,
        totals.dead_letters,
        totals.duplicates,
        totals.gaps,
        totals.commits,
        totals.aborts,
        totals.rows_per_second,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
