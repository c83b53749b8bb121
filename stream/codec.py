"""The one definition of xorstream's messages: input rows, predictions and dead letters.

Input (topic ``xorstream.rows``), key = stream id (UTF-8), value = JSON::

    {"stream": "s-17", "seq": 42, "x": [1, 0, 1, 1], "y": 0, "ts": 1764800000000}

``seq`` is 0-based per stream; ``y`` is the label (``model.data`` rule) once the stream has 5 rows,
else null; ``ts`` is event time in epoch milliseconds. Stream ids match ``STREAM_ID_RE`` so they
never need JSON escaping. Anything else is a dead letter with a ``Reason``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

MAX_VALUE_BYTES = 1024
MAX_INT64 = 2**63 - 1  # seq and ts are stored as signed 64-bit integers
STREAM_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
FIELDS = frozenset({"stream", "seq", "x", "y", "ts"})

# Dead-letter headers: the original bytes are the value, these say why and where from.
H_REASON = "xorstream.reason"
H_DETAIL = "xorstream.detail"
H_TOPIC = "xorstream.source.topic"
H_PARTITION = "xorstream.source.partition"
H_OFFSET = "xorstream.source.offset"


class Reason(StrEnum):
    """Why a record was dead-lettered. A closed set, so it is safe as a metric label."""

    MISSING_KEY = "missing_key"
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    BAD_TYPE = "bad_type"
    BAD_STREAM_ID = "bad_stream_id"
    KEY_MISMATCH = "key_mismatch"
    BAD_BITS = "bad_bits"
    NEGATIVE_SEQ = "negative_seq"
    BAD_LABEL = "bad_label"
    BAD_TS = "bad_ts"


class Row(NamedTuple):
    """One valid input row. A NamedTuple: immutable, and built in a quarter of the time of a
    frozen dataclass, which matters once per row on the hot path."""

    stream: str
    seq: int
    bits: int  # x1..x4 packed big-endian: x1 is bit 3, x4 is bit 0
    y: int | None
    ts: int


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that is not a valid row, and why."""

    reason: Reason
    detail: str


def pack_bits(x: list[int] | tuple[int, ...]) -> int:
    """[x1, x2, x3, x4] -> 4-bit int with x1 as the high bit."""
    return (x[0] << 3) | (x[1] << 2) | (x[2] << 1) | x[3]


def unpack_bits(bits: int) -> list[int]:
    return [(bits >> 3) & 1, (bits >> 2) & 1, (bits >> 1) & 1, bits & 1]


def encode_row(
    stream: str, seq: int, x: list[int] | tuple[int, ...], y: int | None, ts: int
) -> bytes:
    """Value bytes of one input row (the producer's and republish's encoder)."""
    ys = "null" if y is None else str(int(y))
    return (
        f'{{"stream":"{stream}","seq":{seq},"x":[{x[0]},{x[1]},{x[2]},{x[3]}],"y":{ys},"ts":{ts}}}'
    ).encode()


def _is_int(v: object) -> bool:
    return type(v) is int  # bool is an int subclass and must not pass


# The exact bytes ``encode_row`` writes. A value in this form is valid by construction (the
# pattern admits only what the slow path accepts), so it skips the JSON parser; anything else,
# valid or not, goes through ``_decode_json`` which also names what is wrong.
_CANONICAL = re.compile(
    rb'\{"stream":"([A-Za-z0-9._:\-]{1,128})","seq":(0|[1-9][0-9]{0,17}),'
    rb'"x":\[([01],[01],[01],[01])\],"y":(0|1|null),"ts":(0|[1-9][0-9]{0,17})\}'
)
# "x" as written ("1,0,1,1") -> packed bits, and "y" -> label: one lookup instead of arithmetic.
BITS = {f"{b >> 3},{(b >> 2) & 1},{(b >> 1) & 1},{b & 1}".encode(): b for b in range(16)}
LABELS = {b"0": 0, b"1": 1, b"null": None}  # "y" as written -> label
LABEL_BYTES = {v: k for k, v in LABELS.items()}  # label -> its JSON bytes
# fullmatch(value) -> groups (stream id, seq, x, y, ts) as bytes, or None. The batch step uses it
# directly (stream.step); ``decode_row`` is the same fast path plus the general one.
match_canonical = _CANONICAL.fullmatch


def decode_row(key: bytes | None, value: bytes | None) -> Row | Invalid:
    """Parse and validate one input record; never raises on bad input."""
    if value is not None and key:
        m = _CANONICAL.fullmatch(value)
        if m is not None:
            stream_b, seq, x, y, ts = m.groups()
            if stream_b == key:
                return Row(stream_b.decode(), int(seq), BITS[x], LABELS[y], int(ts))
    return _decode_json(key, value)


def _decode_json(key: bytes | None, value: bytes | None) -> Row | Invalid:
    """The general path: any JSON layout, every check, a reason for every rejection."""
    if key is None or key == b"":
        return Invalid(Reason.MISSING_KEY, "record has no key; the key must be the stream id")
    if value is None:
        return Invalid(Reason.NOT_JSON, "record has no value")
    if len(value) > MAX_VALUE_BYTES:
        return Invalid(Reason.OVERSIZED, f"value is {len(value)} bytes, limit {MAX_VALUE_BYTES}")
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        return Invalid(Reason.NOT_JSON, f"value is not JSON: {exc}"[:200])
    if not isinstance(obj, dict):
        return Invalid(Reason.NOT_OBJECT, f"value is JSON {type(obj).__name__}, not an object")
    if obj.keys() != FIELDS:
        missing = FIELDS - obj.keys()
        if missing:
            return Invalid(Reason.MISSING_FIELD, f"missing field(s): {', '.join(sorted(missing))}")
        extra = sorted(obj.keys() - FIELDS)
        return Invalid(Reason.UNKNOWN_FIELD, f"unknown field(s): {', '.join(extra)[:200]}")
    stream, seq, x, y, ts = obj["stream"], obj["seq"], obj["x"], obj["y"], obj["ts"]
    if type(stream) is not str:
        return Invalid(Reason.BAD_TYPE, "stream must be a string")
    if not STREAM_ID_RE.fullmatch(stream):
        return Invalid(Reason.BAD_STREAM_ID, "stream id must match [A-Za-z0-9._:-]{1,128}")
    try:
        key_text = key.decode()
    except UnicodeDecodeError:
        return Invalid(Reason.KEY_MISMATCH, "key is not UTF-8")
    if key_text != stream:
        return Invalid(
            Reason.KEY_MISMATCH, f"key {key_text[:130]!r} differs from stream {stream!r}"
        )
    if not _is_int(seq):
        return Invalid(Reason.BAD_TYPE, "seq must be an integer")
    if seq < 0:
        return Invalid(Reason.NEGATIVE_SEQ, f"seq {seq} is negative")
    if seq > MAX_INT64:
        return Invalid(Reason.BAD_TYPE, "seq does not fit in 64 bits")
    if type(x) is not list or len(x) != 4:
        return Invalid(Reason.BAD_TYPE, "x must be a list of 4 bits")
    for b in x:
        if not _is_int(b) or (b != 0 and b != 1):
            return Invalid(Reason.BAD_BITS, f"x must hold only 0 and 1, got {x!r}"[:200])
    if y is not None and (not _is_int(y) or (y != 0 and y != 1)):
        return Invalid(Reason.BAD_LABEL, f"y must be 0, 1 or null, got {y!r}"[:200])
    if not _is_int(ts) or ts < 0 or ts > MAX_INT64:
        return Invalid(Reason.BAD_TS, "ts must be a non-negative integer (epoch ms)")
    return Row(stream, seq, (x[0] << 3) | (x[1] << 2) | (x[2] << 1) | x[3], y, ts)


# A prediction's value, filled by ``encode_prediction`` and by the batch step (which passes the
# seq, label and ts bytes of a canonical input row as they came): stream, seq, p, y_hat, y,
# model, partition, offset, ts, processed_ts.
PREDICTION_TEMPLATE = (
    b'{"stream":"%s","seq":%s,"p":%.6f,"y_hat":%d,"y":%s,"model":"%s",'
    b'"partition":%d,"offset":%d,"ts":%s,"processed_ts":%d}'
)


def prediction_template(model: str, processed_ts: int) -> bytes:
    """``PREDICTION_TEMPLATE`` with the two fields a whole batch shares filled in; what remains
    is stream, seq, p, y_hat, y, partition, offset, ts."""
    return PREDICTION_TEMPLATE.replace(
        b'"model":"%s"', b'"model":"' + model.encode().replace(b"%", b"%%") + b'"'
    ).replace(b'"processed_ts":%d', b'"processed_ts":%d' % processed_ts)


def encode_prediction(
    stream: str,
    seq: int,
    p: float,
    y: int | None,
    model: str,
    partition: int,
    offset: int,
    ts: int,
    processed_ts: int,
) -> bytes:
    """Value bytes of one prediction. ``y_hat`` is ``p >= 0.5``; ``y`` is the input's label."""
    return prediction_template(model, processed_ts) % (
        stream.encode(),
        b"%d" % seq,
        p,
        p >= 0.5,
        LABEL_BYTES[y],
        partition,
        offset,
        b"%d" % ts,
    )


def decode_prediction(value: bytes) -> dict:
    """A prediction's fields as a dict (for subscribers, replay and tests)."""
    return json.loads(value)


def dead_letter_headers(
    reason: Reason, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (H_REASON, reason.value.encode()),
        (H_DETAIL, detail.encode()),
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(partition).encode()),
        (H_OFFSET, str(offset).encode()),
    ]
