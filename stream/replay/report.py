"""The evaluation report: one JSON document, and a picture (PNG, or HTML with the PNG inside).

The JSON holds only what follows from the range and the artifact (no wall-clock times, no host
names), so two runs over the same recorded range give identical reports; timing goes to the log.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from stream.replay.evaluate import Evaluation

LATENCY_EDGES_MS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]
STREAM_ACC_EDGES = [i / 10 for i in range(11)]
MAX_SERIES_POINTS = 240
WORST_STREAMS = 10


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def _quantiles(values: np.ndarray, qs: dict[str, float]) -> dict[str, float]:
    # inverted_cdf returns values that occur in the data: no interpolation artefacts.
    return {k: float(np.percentile(values, q, method="inverted_cdf")) for k, q in qs.items()}


def latency_summary(latency_ms: np.ndarray) -> dict[str, Any]:
    """Percentiles and a fixed-bin histogram of recorded end-to-end latency (processed_ts - ts)."""
    edges = LATENCY_EDGES_MS + [None]
    if latency_ms.size == 0:
        return {"count": 0, "histogram": {"edges_ms": edges, "counts": [0] * (len(edges) - 1)}}
    qs = _quantiles(
        latency_ms, {"p50": 50, "p90": 90, "p99": 99, "p999": 99.9, "max": 100, "min": 0}
    )
    bins = np.asarray(LATENCY_EDGES_MS[1:], dtype=np.int64)
    counts = np.bincount(np.searchsorted(bins, latency_ms, side="right"), minlength=len(bins) + 1)
    return {
        "count": int(latency_ms.size),
        **{k: int(v) for k, v in qs.items()},
        "mean": _r(latency_ms.mean(), 3),
        "histogram": {"edges_ms": edges, "counts": counts.tolist()},
    }


def per_stream_summary(ev: Evaluation) -> dict[str, Any]:
    names, correct, labelled = ev.per_stream()
    has = labelled > 0
    acc = correct[has] / labelled[has]
    if acc.size == 0:
        return {"streams": len(names), "streams_scored": 0}
    counts, _ = np.histogram(acc, bins=STREAM_ACC_EDGES)
    scored = [
        (float(a), n, int(w))
        for a, n, w in zip(acc, np.asarray(names)[has], labelled[has], strict=True)
    ]
    worst = sorted(scored, key=lambda item: (item[0], item[1]))[:WORST_STREAMS]
    q = _quantiles(acc, {"min": 0, "p05": 5, "p25": 25, "median": 50, "p75": 75, "max": 100})
    return {
        "streams": len(names),
        "streams_scored": int(acc.size),
        **{k: _r(v) for k, v in q.items()},
        "mean": _r(acc.mean()),
        "histogram": {"edges": STREAM_ACC_EDGES, "counts": counts.tolist()},
        "worst": [{"stream": n, "accuracy": _r(a), "windows": w} for a, n, w in worst],
    }


def time_series(ev: Evaluation) -> dict[str, Any]:
    """Accuracy and agreement per time bucket, merged to at most MAX_SERIES_POINTS points."""
    starts, sums = ev.buckets()
    if starts.size == 0:
        return {"bucket_ms": ev.bucket_ms, "points": []}
    span = int(starts[-1] - starts[0]) + ev.bucket_ms
    width = ev.bucket_ms
    while span / width > MAX_SERIES_POINTS:
        width *= 2
    group = (starts - starts[0]) // width
    keys, inv = np.unique(group, return_inverse=True)
    merged = np.zeros((keys.size, sums.shape[1]), np.int64)
    np.add.at(merged, inv, sums)
    points = []
    for k, (windows, labelled, correct, joined, agree) in zip(
        keys.tolist(), merged.tolist(), strict=True
    ):
        points.append(
            {
                "t_ms": int(starts[0] + k * width),
                "windows": windows,
                "accuracy": _r(correct / labelled) if labelled else None,
                "agreement": _r(agree / joined) if joined else None,
            }
        )
    return {"bucket_ms": int(width), "points": points}


def build_report(ev: Evaluation, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready report. ``meta`` names the input topic, model and settings used."""
    t = ev.t
    rec = ev.recorded
    tn, fp, fn, tp = (int(v) for v in t.confusion)
    scored_only = t.windows - t.joined
    in_range = rec.latency_ms
    return {
        **meta,
        "ranges": [
            {"partition": r.partition, "start": r.start, "end": r.end, "warmup_from": r.read_from}
            for r in ev.ranges
        ],
        "records": t.records,
        "rows": t.rows,
        "warmup_records": t.warmup_records,
        "windows_scored": t.windows,
        "windows_labelled": t.labelled,
        "accuracy": _r(ev.accuracy),
        "log_loss": _r(ev.log_loss),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "per_stream_accuracy": per_stream_summary(ev),
        "recorded": {
            "topic": rec.topic or None,
            "read": rec.read,
            "in_range": len(rec),
            "outside_range": rec.outside_range,
            "duplicates": rec.duplicates,
            "unreadable": rec.unreadable,
            "models": rec.model_counts(),
        },
        "agreement": {
            "joined": t.joined,
            "agree": t.agree,
            "differ": t.joined - t.agree,
            "rate": _r(t.agree / t.joined) if t.joined else None,
            "max_abs_p_diff": _r(t.max_abs_p_diff),
            "scored_without_recorded": scored_only,
            "recorded_without_window": ev.recorded_without_window(),
            "key_mismatch": t.key_mismatch,
            "rows": [
                {
                    "partition": d.partition,
                    "offset": d.offset,
                    "stream": d.stream,
                    "seq": d.seq,
                    "y": d.y,
                    "p": d.p,
                    "recorded_p": d.recorded_p,
                    "recorded_model": d.recorded_model,
                }
                for d in ev.diffs.items()
            ],
            "rows_truncated": ev.diffs.seen > len(ev.diffs.items()),
        },
        "latency_ms": latency_summary(in_range),
        "dead_letters": {
            "total": sum(t.dead_reasons.values()),
            "by_reason": dict(sorted(t.dead_reasons.items())),
            "examples": [
                {
                    "partition": d.partition,
                    "offset": d.offset,
                    "reason": d.reason,
                    "detail": d.detail,
                }
                for d in ev.dead_examples.items()
            ],
        },
        "sequence": {"gaps": t.gaps, "duplicates": t.duplicates},
        "time": {
            "first_ts": ev.first_ts,
            "last_ts": ev.last_ts,
            "first": _iso(ev.first_ts),
            "last": _iso(ev.last_ts),
        },
        "accuracy_over_time": time_series(ev),
    }


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def render_png(report: dict[str, Any]) -> bytes:
    """Accuracy (and agreement) over event time beside the recorded latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100)
    points = report["accuracy_over_time"]["points"]
    if points:
        t0 = points[0]["t_ms"]
        xs = [(pt["t_ms"] - t0) / 1000 for pt in points]
        acc = [np.nan if pt["accuracy"] is None else pt["accuracy"] for pt in points]
        agr = [np.nan if pt["agreement"] is None else pt["agreement"] for pt in points]
        ax1.plot(xs, acc, marker=".", label="accuracy (vs label y)")
        ax1.plot(xs, agr, marker=".", linestyle="--", label="agreement with recorded")
        ax1.set_xlabel(f"seconds since {report['time']['first']}")
        ax1.legend(loc="lower right")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("fraction of windows")
    ax1.set_title(f"{report['model']['version']}: accuracy {report['accuracy']}")
    ax1.grid(alpha=0.3)
    lat = report["latency_ms"]
    counts = lat["histogram"]["counts"]
    labels = [
        f"<{e}" if i < len(LATENCY_EDGES_MS) - 1 else f">={LATENCY_EDGES_MS[-1]}"
        for i, e in enumerate(LATENCY_EDGES_MS[1:] + [None])
    ]
    ax2.bar(range(len(counts)), counts)
    ax2.set_xticks(range(len(counts)), labels, rotation=60, fontsize=7)
    ax2.set_xlabel("recorded end-to-end latency, ms (processed_ts - ts)")
    ax2.set_ylabel("predictions")
    title = "recorded latency"
    if lat["count"]:
        title += f": p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms"
    ax2.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def render_html(report: dict[str, Any], png: bytes) -> str:
    """One self-contained HTML file: the picture inline, the headline numbers, the full JSON."""
    a = report["agreement"]
    rows = [
        ("input topic", report["input_topic"]),
        ("model", report["model"]["version"]),
        ("rows / windows scored", f"{report['rows']} / {report['windows_scored']}"),
        ("accuracy", report["accuracy"]),
        ("log-loss", report["log_loss"]),
        ("agreement with recorded", f"{a['rate']} ({a['agree']}/{a['joined']})"),
        ("dead letters", report["dead_letters"]["total"]),
        ("gaps / duplicates", f"{report['sequence']['gaps']} / {report['sequence']['duplicates']}"),
        ("recorded models", ", ".join(report["recorded"]["models"]) or "-"),
    ]
    table = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    img = base64.b64encode(png).decode()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>xorstream replay evaluation"
        "</title><style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:"
        "2em}pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>"
        "<h1>xorstream replay evaluation</h1>"
        f"<table>{table}</table><img alt='accuracy over time and latency histogram' "
        f"src='data:image/png;base64,{img}'><h2>Report</h2><pre>"
        f"{html.escape(to_json(report))}</pre></body></html>\n"
    )


def write_outputs(
    report: dict[str, Any], json_path: Path | None, png_path: Path | None, html_path: Path | None
) -> None:
    if json_path is not None:
        json_path.write_text(to_json(report), encoding="utf-8")
    if png_path is None and html_path is None:
        return
    png = render_png(report)
    if png_path is not None:
        png_path.write_bytes(png)
    if html_path is not None:
        html_path.write_text(render_html(report, png), encoding="utf-8")
