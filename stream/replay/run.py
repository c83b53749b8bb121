"""``evaluate`` end to end: read recorded predictions, replay the input range, build the report.

The order matters for memory: the recorded predictions of the range are read first into compact
arrays (``RecordedPredictions``), then the input range is streamed batch by batch through the
pure ``Evaluation``; no input record outlives its poll.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from model.errors import BrokerError
from stream import kafka_io
from stream.replay.evaluate import Evaluation
from stream.replay.reader import (
    PartitionRange,
    open_consumer,
    read_range,
    resolve_ranges,
    topic_partitions,
)
from stream.replay.recorded import RecordedPredictions
from stream.replay.report import build_report
from stream.replay.settings import Bound, RangeSpec, ReplaySettings

log = logging.getLogger(__name__)


@dataclass
class EvaluateOutcome:
    report: dict[str, Any]
    seconds: float  # wall time of reading + scoring (not model loading)
    records: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def progress_bar(show: bool | None, total: int, desc: str):
    if not (show if show is not None else sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rec", desc=desc, smoothing=0.1, unit_scale=True)


def read_recorded(
    consumer, topic: str, input_ranges: list[PartitionRange], since: Bound, progress: bool | None
) -> RecordedPredictions:
    """The recorded predictions whose source rows are in ``input_ranges``.

    The predictions topic is read from ``since`` (a time bound of the input range: a prediction
    is always written after its row) or from the beginning, up to its end now.
    """
    try:
        topic_partitions(consumer, topic)
    except BrokerError:
        log.warning("predictions topic %s does not exist; nothing to compare with", topic)
        return RecordedPredictions(topic=topic)
    spec = RangeSpec(topic=topic, partitions=None, start=since, end=Bound())
    ranges = resolve_ranges(consumer, spec)
    bar = progress_bar(progress, sum(r.end - r.read_from for r in ranges), f"recorded {topic}")
    try:
        return RecordedPredictions.collect(
            read_range(consumer, topic, ranges, bar.update if bar else None), input_ranges, topic
        )
    finally:
        if bar is not None:
            bar.close()


def run_evaluate(s: ReplaySettings, predictor=None) -> EvaluateOutcome:
    """Evaluate ``s.artifact`` (or ``predictor``) on the range ``s.range``; return the report."""
    from model.predictor import load_predictor

    if predictor is None:
        predictor = load_predictor(s.artifact, backend=s.backend)
    bootstrap = kafka_io.bootstrap_or_resolve(s.bootstrap_servers)
    consumer = open_consumer(bootstrap)
    t0 = time.perf_counter()
    try:
        ranges = resolve_ranges(consumer, s.range)
        since = s.range.start if s.range.start.time_ms is not None else Bound()
        recorded = (
            read_recorded(consumer, s.predictions_topic, ranges, since, s.progress)
            if s.predictions_topic
            else RecordedPredictions()
        )
        ev = Evaluation(predictor, ranges, recorded, s.max_diffs, s.bucket_ms)
        bar = progress_bar(
            s.progress, sum(r.end - r.read_from for r in ranges), f"replay {s.range.topic}"
        )
        try:
            for batch in read_range(consumer, s.range.topic, ranges, bar.update if bar else None):
                ev.feed(batch)
        finally:
            if bar is not None:
                bar.close()
    finally:
        consumer.close(autocommit=False)
    seconds = time.perf_counter() - t0
    artifact = getattr(predictor, "artifact", None)
    meta = {
        "input_topic": s.range.topic,
        "predictions_topic": s.predictions_topic or None,
        "model": {
            "version": predictor.version,
            "backend": getattr(predictor, "backend", None),
            "artifact": str(artifact.path) if artifact is not None else None,
        },
    }
    report = build_report(ev, meta)
    return EvaluateOutcome(report, seconds, ev.t.records + ev.t.warmup_records)
