"""Property tests of model.data against plain-Python reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model.data import (
    N_FEATURES,
    N_WINDOWS_TOTAL,
    WINDOW,
    all_windows,
    label_or_none,
    random_rows,
    random_windows,
    stream_labels,
    validate_windows,
    window_labels,
)
from model.errors import InputError, XorstreamError


def reference_label(window: list[list[int]]) -> int:
    """y = x1 of row 0 XOR x1 of row 1 XOR ... over the window, written the plain way."""
    y = 0
    for row in window:
        y ^= row[0]
    return y


def reference_stream_labels(x1: list[int]) -> list[int]:
    return [
        -1 if i < WINDOW - 1 else reference_label([[b] for b in x1[i - WINDOW + 1 : i + 1]])
        for i in range(len(x1))
    ]


bits = st.integers(min_value=0, max_value=1)
window_batches = st.integers(min_value=1, max_value=64).flatmap(
    lambda n: arrays(np.uint8, (n, WINDOW, N_FEATURES), elements=bits)
)


@given(n=st.integers(min_value=0, max_value=300), seed=st.integers(min_value=0, max_value=2**32))
def test_random_rows_and_windows_are_bits_of_the_right_shape(n: int, seed: int) -> None:
    rows = random_rows(n, np.random.default_rng(seed))
    windows = random_windows(n, np.random.default_rng(seed))
    assert rows.shape == (n, N_FEATURES) and rows.dtype == np.uint8
    assert windows.shape == (n, WINDOW, N_FEATURES) and windows.dtype == np.uint8
    assert set(np.unique(rows)) <= {0, 1} and set(np.unique(windows)) <= {0, 1}


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_random_generators_are_seeded(seed: int) -> None:
    a = random_windows(50, np.random.default_rng(seed))
    b = random_windows(50, np.random.default_rng(seed))
    np.testing.assert_array_equal(a, b)


def test_random_windows_are_roughly_uniform() -> None:
    windows = random_windows(100_000, np.random.default_rng(7))
    assert abs(windows.mean() - 0.5) < 0.01
    assert abs(window_labels(windows).mean() - 0.5) < 0.01


@given(windows=window_batches)
def test_window_labels_match_reference(windows: np.ndarray) -> None:
    expected = [reference_label(w) for w in windows.tolist()]
    labels = window_labels(windows)
    assert labels.dtype == np.uint8
    assert labels.tolist() == expected


@given(windows=window_batches)
def test_labels_depend_only_on_x1(windows: np.ndarray) -> None:
    flipped = windows.copy()
    flipped[:, :, 1:] ^= 1
    np.testing.assert_array_equal(window_labels(windows), window_labels(flipped))


@given(x1=st.lists(bits, max_size=60))
def test_stream_labels_match_reference(x1: list[int]) -> None:
    labels = stream_labels(np.array(x1, dtype=np.uint8))
    assert labels.dtype == np.int8
    assert labels.tolist() == reference_stream_labels(x1)


@given(rows=st.lists(st.lists(bits, min_size=N_FEATURES, max_size=N_FEATURES), max_size=40))
def test_stream_labels_agree_with_window_labels_and_label_or_none(rows: list[list[int]]) -> None:
    stream = np.array(rows, dtype=np.uint8).reshape(-1, N_FEATURES)
    labels = stream_labels(stream[:, 0])
    for i in range(WINDOW - 1, len(rows)):
        window = stream[i - WINDOW + 1 : i + 1]
        assert labels[i] == window_labels(window[None])[0] == label_or_none(window)
    assert label_or_none(None) is None


def test_window_labels_rejects_wrong_shape() -> None:
    with pytest.raises(InputError, match="shape"):
        window_labels(np.zeros((3, WINDOW + 1, N_FEATURES), dtype=np.uint8))


def test_all_windows_is_every_window_once_in_index_order() -> None:
    windows = all_windows()
    assert windows.shape == (N_WINDOWS_TOTAL, WINDOW, N_FEATURES) == (1 << 20, 5, 4)
    assert windows.dtype == np.uint8
    weights = (1 << np.arange(WINDOW * N_FEATURES - 1, -1, -1)).astype(np.int64)
    indices = windows.reshape(N_WINDOWS_TOTAL, -1).astype(np.int64) @ weights
    np.testing.assert_array_equal(indices, np.arange(N_WINDOWS_TOTAL))
    assert int(window_labels(windows).sum()) == N_WINDOWS_TOTAL // 2


@given(index=st.integers(min_value=0, max_value=N_WINDOWS_TOTAL - 1))
@settings(max_examples=50)
def test_all_windows_index_encoding(index: int) -> None:
    bits_of_index = [(index >> (19 - k)) & 1 for k in range(20)]
    expected = [bits_of_index[r * N_FEATURES : (r + 1) * N_FEATURES] for r in range(WINDOW)]
    assert _ALL[index].tolist() == expected


_ALL = all_windows()


@given(windows=window_batches, dtype=st.sampled_from([np.uint8, np.int64, np.float32, np.bool_]))
def test_validate_windows_accepts_bits_of_any_numeric_dtype(windows: np.ndarray, dtype) -> None:
    out = validate_windows(windows.astype(dtype))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, windows)


def test_validate_windows_accepts_nested_lists() -> None:
    out = validate_windows([[[0, 1, 0, 1]] * WINDOW])
    assert out.shape == (1, WINDOW, N_FEATURES)


@given(
    shape=st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=4).filter(
        lambda s: len(s) != 3 or tuple(s[1:]) != (WINDOW, N_FEATURES)
    )
)
def test_validate_windows_rejects_wrong_shapes(shape: list[int]) -> None:
    with pytest.raises(InputError, match="shape"):
        validate_windows(np.zeros(shape, dtype=np.uint8))


@given(
    windows=window_batches,
    bad=st.sampled_from([2, 255, -1, 0.5, 1.0001, float("inf")]),
    data=st.data(),
)
def test_validate_windows_rejects_values_outside_0_1(windows, bad, data) -> None:
    arr = windows.astype(np.float64 if isinstance(bad, float) else np.int64)
    n = arr.shape[0]
    pos = (
        data.draw(st.integers(0, n - 1)),
        data.draw(st.integers(0, WINDOW - 1)),
        data.draw(st.integers(0, N_FEATURES - 1)),
    )
    arr[pos] = bad
    with pytest.raises(InputError, match="only 0 and 1"):
        validate_windows(arr)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.full((2, WINDOW, N_FEATURES), np.nan), "NaN"),
        (np.zeros((0, WINDOW, N_FEATURES), dtype=np.uint8), "empty"),
        (np.full((1, WINDOW, N_FEATURES), "1"), "dtype"),
        (np.array([[[0, 1, 0, 1]] * WINDOW], dtype=object), "dtype"),
        (np.ones((1, WINDOW, N_FEATURES), dtype=np.complex64), "dtype"),
        ([[[0, 1]], [[0, 1, 1]]], "cannot be read|dtype|shape"),
        (np.full((1, WINDOW, N_FEATURES), 256, dtype=np.int64), "only 0 and 1"),
    ],
    ids=["nan", "empty", "strings", "object", "complex", "ragged", "uint8-overflow"],
)
def test_validate_windows_names_each_fault(value, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        validate_windows(value)
    assert isinstance(info.value, XorstreamError)
