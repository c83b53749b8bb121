"""The one definition of xorstream's data: rows, windows and the label rule.

A *row* is 4 bits ``x1..x4``. A stream is a sequence of rows; once it has ``WINDOW`` rows, the row
at position ``seq`` has the label ``y = x1[seq-4] ^ x1[seq-3] ^ ... ^ x1[seq]``, the XOR of x1 over
the last ``WINDOW`` rows of the same stream. Producer, stream processor, replay and training all
import this module; nothing else may restate the rule.
"""

from __future__ import annotations

import numpy as np

from model.errors import InputError

WINDOW = 5
N_FEATURES = 4
N_WINDOWS_TOTAL = 1 << (WINDOW * N_FEATURES)  # 2^20 distinct windows


def random_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random rows as a uint8 array of shape [n, 4], each bit 0 or 1."""
    return rng.integers(0, 2, size=(n, N_FEATURES), dtype=np.uint8)


def random_windows(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` independent random windows, uint8 [n, WINDOW, 4]."""
    return rng.integers(0, 2, size=(n, WINDOW, N_FEATURES), dtype=np.uint8)


def window_labels(windows: np.ndarray) -> np.ndarray:
    """Label of each window: XOR of x1 (feature 0) over its rows. uint8 [n]."""
    windows = np.asarray(windows)
    if windows.ndim != 3 or windows.shape[1:] != (WINDOW, N_FEATURES):
        raise InputError(
            f"windows must have shape [n, {WINDOW}, {N_FEATURES}], got {windows.shape}"
        )
    return (np.bitwise_xor.reduce(windows[:, :, 0].astype(np.uint8), axis=1) & 1).astype(np.uint8)


def stream_labels(x1: np.ndarray) -> np.ndarray:
    """Labels along one stream given its x1 column: int8 [n], -1 where fewer than WINDOW rows.

    Vectorised with a running XOR: prefix[i] = x1[0]^...^x1[i], so
    y[i] = prefix[i] ^ prefix[i-WINDOW] for i >= WINDOW, and prefix[i] for i == WINDOW-1.
    """
    x1 = np.asarray(x1, dtype=np.uint8) & 1
    n = x1.shape[0]
    out = np.full(n, -1, dtype=np.int8)
    if n < WINDOW:
        return out
    prefix = np.bitwise_xor.accumulate(x1)
    y = prefix[WINDOW - 1 :].copy()
    y[1:] ^= prefix[: n - WINDOW]
    out[WINDOW - 1 :] = y
    return out


def label_or_none(window: np.ndarray | None) -> int | None:
    """Label of one [WINDOW, 4] window, or None when the stream has no full window yet."""
    if window is None:
        return None
    return int(np.bitwise_xor.reduce(np.asarray(window)[:, 0]) & 1)


def all_windows() -> np.ndarray:
    """Every one of the 2^20 distinct windows, uint8 [2^20, WINDOW, 4], in index order.

    Window index i encodes its 20 bits big-endian: bit (19 - (r*4 + f)) of i is row r, feature f.
    """
    idx = np.arange(N_WINDOWS_TOTAL, dtype=np.uint32)
    shifts = np.arange(WINDOW * N_FEATURES - 1, -1, -1, dtype=np.uint32)
    bits = ((idx[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return bits.reshape(N_WINDOWS_TOTAL, WINDOW, N_FEATURES)


def validate_windows(windows: object) -> np.ndarray:
    """Check a predictor batch and return it as uint8 [n, WINDOW, 4]; InputError names the fault.

    Accepts any integer, bool or float array whose values are exactly 0 or 1; rejects NaN, other
    values, wrong shapes and empty batches, so a bad batch never becomes a silent wrong answer.
    """
    try:
        arr = np.asarray(windows)
    except Exception as exc:  # noqa: BLE001 - anything unconvertible is a caller error
        raise InputError(f"windows cannot be read as an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == np.bool_
    ):
        raise InputError(f"windows must be a numeric array of 0/1 bits, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1:] != (WINDOW, N_FEATURES):
        raise InputError(f"windows must have shape [n, {WINDOW}, {N_FEATURES}], got {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError("windows is an empty batch: pass at least one window")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise InputError("windows contains NaN")
    if arr.dtype != np.uint8 and arr.dtype != np.bool_:
        bad = (arr != 0) & (arr != 1)
    else:
        bad = arr > 1
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"windows must hold only 0 and 1; found {arr[first]!r} at index {first}")
    return arr.astype(np.uint8, copy=False)
