"""Input validation: every malformed record gets its reason; valid rows round-trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.codec import Invalid, Reason, Row, decode_row, encode_prediction, encode_row


@given(
    st.from_regex(r"[A-Za-z0-9._:\-]{1,40}", fullmatch=True),
    st.integers(0, 2**40),
    st.lists(st.integers(0, 1), min_size=4, max_size=4),
    st.one_of(st.none(), st.integers(0, 1)),
    st.integers(0, 2**45),
)
def test_encoded_rows_decode_to_the_same_row(stream, seq, x, y, ts):
    row = decode_row(stream.encode(), encode_row(stream, seq, x, y, ts))
    assert isinstance(row, Row)
    assert (row.stream, row.seq, row.y, row.ts) == (stream, seq, y, ts)
    assert row.bits == (x[0] << 3) | (x[1] << 2) | (x[2] << 1) | x[3]


def _v(**overrides):
    base = {"stream": "s", "seq": 0, "x": [1, 0, 0, 1], "y": None, "ts": 1}
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v != "DROP"}).encode()


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, _v(), Reason.MISSING_KEY),
        (b"", _v(), Reason.MISSING_KEY),
        (b"s", None, Reason.NOT_JSON),
        (b"s", b"{oops", Reason.NOT_JSON),
        (b"s", b"\xff\xfe", Reason.NOT_JSON),
        (b"s", b"[1]", Reason.NOT_OBJECT),
        (b"s", b"x" * 2000, Reason.OVERSIZED),
        (b"s", _v(ts="DROP"), Reason.MISSING_FIELD),
        (b"s", _v(extra=1), Reason.UNKNOWN_FIELD),
        (b"s", _v(seq="1"), Reason.BAD_TYPE),
        (b"s", _v(seq=True), Reason.BAD_TYPE),
        (b"s", _v(seq=1.0), Reason.BAD_TYPE),
        (b"s", _v(stream=5), Reason.BAD_TYPE),
        (b"s", _v(x=[1, 0, 0]), Reason.BAD_TYPE),
        (b"s", _v(x="1001"), Reason.BAD_TYPE),
        (b"s p", _v(stream="s p"), Reason.BAD_STREAM_ID),
        (b"t", _v(), Reason.KEY_MISMATCH),
        (b"s", _v(x=[1, 0, 2, 0]), Reason.BAD_BITS),
        (b"s", _v(x=[1, 0, True, 0]), Reason.BAD_BITS),
        (b"s", _v(seq=-3), Reason.NEGATIVE_SEQ),
        (b"s", _v(y=2), Reason.BAD_LABEL),
        (b"s", _v(ts=-1), Reason.BAD_TS),
        (b"s", _v(ts=None), Reason.BAD_TS),
        (b"s", _v(ts=2**63), Reason.BAD_TS),
        (b"s", _v(seq=2**63), Reason.BAD_TYPE),
    ],
)
def test_bad_records_get_their_reason(key, value, reason):
    got = decode_row(key, value)
    assert isinstance(got, Invalid), got
    assert got.reason == reason, got.detail
    assert got.detail


def test_prediction_is_valid_json_with_all_fields():
    v = json.loads(encode_prediction("s-1", 9, 0.73, None, "m-1", 2, 77, 5, 6))
    assert v == {
        "stream": "s-1",
        "seq": 9,
        "p": 0.73,
        "y_hat": 1,
        "y": None,
        "model": "m-1",
        "partition": 2,
        "offset": 77,
        "ts": 5,
        "processed_ts": 6,
    }


@given(
    st.from_regex(r"[A-Za-z0-9._:\-]{1,20}", fullmatch=True),
    st.integers(0, 2**62),
    st.lists(st.integers(0, 1), min_size=4, max_size=4),
    st.one_of(st.none(), st.integers(0, 1)),
    st.integers(0, 2**62),
    st.integers(0, 200),
    st.binary(max_size=3),
)
def test_canonical_fast_path_agrees_with_the_json_path(stream, seq, x, y, ts, cut, junk):
    """Valid canonical rows and corruptions of them decode the same on both paths."""
    from stream.codec import _decode_json

    value = encode_row(stream, seq, x, y, ts)
    for v in (value, value[:cut] + junk + value[cut + len(junk) :], value.replace(b"1", b"01", 1)):
        for key in (stream.encode(), b"other", None):
            fast, slow = decode_row(key, v), _decode_json(key, v)
            if isinstance(slow, Row):
                assert fast == slow
            else:
                assert isinstance(fast, Invalid) and fast.reason == slow.reason
