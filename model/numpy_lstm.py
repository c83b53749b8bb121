"""The trained network's forward pass in plain NumPy, so serving needs no TensorFlow.

Computes exactly what Keras computes (LSTM gates in Keras order i, f, c, o; sigmoid recurrent
activation, tanh activation; then Dense(1, sigmoid)), vectorised over the batch, from the weights
stored in ``weights.npz``. Two exact algebraic precomputations at load make it fast:

* the input centring ``x' = 2x - 1`` is folded into the input kernel and bias, and because a row
  is 4 bits there are only 16 possible rows, so ``x' @ kernel + bias`` is a [16, 4u] table indexed
  by the row's 4-bit code (a gather replaces a matmul);
* ``sigmoid(z) = 0.5 * tanh(z / 2) + 0.5``, so the /2 is folded into the gate columns of the
  table and the recurrent kernel, and one ``tanh`` call evaluates all four gates per step.

The recurrence over the 5 rows is computed for every window on every call; nothing caches answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from model.data import N_FEATURES, WINDOW
from model.errors import ArtifactError

# Array names in weights.npz; the raw Keras weights plus the input centring constants.
WEIGHT_SHAPES: dict[str, tuple[str, ...]] = {
    "input_scale": (),
    "input_offset": (),
    "lstm_kernel": ("features", "4u"),
    "lstm_recurrent_kernel": ("u", "4u"),
    "lstm_bias": ("4u",),
    "dense_kernel": ("u", "1"),
    "dense_bias": ("1",),
}

_CHUNK = 1024  # windows per inner pass; see NumpyLstm.predict


@dataclass(frozen=True)
class LstmWeights:
    """The raw weights of the trained network, as float32 arrays (Keras layout)."""

    input_scale: float
    input_offset: float
    lstm_kernel: np.ndarray  # [N_FEATURES, 4u], gate blocks i, f, c, o
    lstm_recurrent_kernel: np.ndarray  # [u, 4u]
    lstm_bias: np.ndarray  # [4u]
    dense_kernel: np.ndarray  # [u, 1]
    dense_bias: np.ndarray  # [1]

    @property
    def units(self) -> int:
        """Number of LSTM units."""
        return int(self.lstm_recurrent_kernel.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The weights as the name -> float32 array mapping stored in weights.npz."""
        return {
            "input_scale": np.asarray(self.input_scale, dtype=np.float32),
            "input_offset": np.asarray(self.input_offset, dtype=np.float32),
            "lstm_kernel": self.lstm_kernel,
            "lstm_recurrent_kernel": self.lstm_recurrent_kernel,
            "lstm_bias": self.lstm_bias,
            "dense_kernel": self.dense_kernel,
            "dense_bias": self.dense_bias,
        }

    def content_hash(self) -> str:
        """sha256 hex of the weights' names, shapes and float32 bytes (not of any file's bytes)."""
        digest = hashlib.sha256()
        for name, arr in sorted(self.to_arrays().items()):
            arr = np.asarray(arr, dtype="<f4", order="C")
            digest.update(f"{name}:{arr.shape};".encode())
            digest.update(arr.tobytes())
        return digest.hexdigest()

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LstmWeights:
        """Build from a name -> array mapping, raising ArtifactError on missing, misshapen or
        non-finite arrays."""
        missing = sorted(set(WEIGHT_SHAPES) - set(arrays))
        extra = sorted(set(arrays) - set(WEIGHT_SHAPES))
        if missing or extra:
            raise ArtifactError(
                f"weights have the wrong arrays (missing {missing}, unexpected {extra}); "
                "re-export the artifact with `python -m model train`"
            )
        out: dict[str, np.ndarray] = {}
        for name in WEIGHT_SHAPES:
            arr = np.asarray(arrays[name])
            if not np.issubdtype(arr.dtype, np.floating):
                raise ArtifactError(f"weight {name!r} has dtype {arr.dtype}, expected float32")
            arr = np.array(arr, dtype=np.float32, order="C")  # keeps 0-d scalars 0-d
            if not np.isfinite(arr).all():
                raise ArtifactError(f"weight {name!r} contains NaN or infinity")
            out[name] = arr
        units = out["lstm_recurrent_kernel"].shape[0] if out["lstm_recurrent_kernel"].ndim else 0
        sizes = {"features": N_FEATURES, "u": units, "4u": 4 * units, "1": 1}
        for name, dims in WEIGHT_SHAPES.items():
            expected = tuple(sizes[d] for d in dims)
            if units < 1 or out[name].shape != expected:
                raise ArtifactError(
                    f"weight {name!r} has shape {out[name].shape}, expected {expected} "
                    f"for an LSTM of {units} units over {N_FEATURES} features"
                )
        return cls(
            input_scale=float(out["input_scale"]),
            input_offset=float(out["input_offset"]),
            lstm_kernel=out["lstm_kernel"],
            lstm_recurrent_kernel=out["lstm_recurrent_kernel"],
            lstm_bias=out["lstm_bias"],
            dense_kernel=out["dense_kernel"],
            dense_bias=out["dense_bias"],
        )

    @classmethod
    def from_keras(cls, model: object) -> LstmWeights:
        """Export the weights of a model built by ``model.network.build_model``."""
        from model.network import DENSE_LAYER, LSTM_LAYER, NORMALISE_LAYER

        centre = model.get_layer(NORMALISE_LAYER)  # type: ignore[attr-defined]
        kernel, recurrent, bias = model.get_layer(LSTM_LAYER).get_weights()  # type: ignore[attr-defined]
        dense_kernel, dense_bias = model.get_layer(DENSE_LAYER).get_weights()  # type: ignore[attr-defined]
        return cls.from_arrays(
            {
                "input_scale": np.asarray(centre.scale, dtype=np.float32).reshape(()),
                "input_offset": np.asarray(centre.offset, dtype=np.float32).reshape(()),
                "lstm_kernel": kernel,
                "lstm_recurrent_kernel": recurrent,
                "lstm_bias": bias,
                "dense_kernel": dense_kernel,
                "dense_bias": dense_bias,
            }
        )


class NumpyLstm:
    """Vectorised forward pass of the network; ``predict`` takes validated uint8 [n, 5, 4]."""

    def __init__(self, weights: LstmWeights) -> None:
        u = weights.units
        self.units = u
        kernel = weights.lstm_kernel.astype(np.float64)
        # (s*x + o) @ K + b  ==  x @ (s*K) + (o * K.sum(0) + b): centring folded into the kernel.
        folded_kernel = weights.input_scale * kernel
        folded_bias = weights.input_offset * kernel.sum(axis=0) + weights.lstm_bias
        # Row code = x1 + 2*x2 + 4*x3 + 8*x4 (see _row_codes); table[code] = that row's projection.
        codes = np.arange(1 << N_FEATURES)
        rows = (codes[:, None] >> np.arange(N_FEATURES)[None, :]) & 1
        table = rows.astype(np.float64) @ folded_kernel + folded_bias  # [16, 4u]
        # Gates i, f, o are sigmoid(z) = (1 + tanh(z/2)) / 2: pre-halve their columns so one tanh
        # call serves all four gate blocks (the candidate block c~ is tanh(z) itself).
        half = np.full(4 * u, 0.5)
        half[2 * u : 3 * u] = 1.0
        self._table = (table * half).astype(np.float32)
        # The loop carries H = 2h = (1 + tanh_o) * tanh(c); the 1/2 goes into what reads h.
        self._recurrent = (weights.lstm_recurrent_kernel * half * 0.5).astype(np.float32)
        self._dense_kernel = (weights.dense_kernel[:, 0] * 0.5).astype(np.float32)
        self._dense_bias = np.float32(weights.dense_bias[0])

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Probability that y=1 for each window: float32 [n]. Input must be validated uint8 0/1."""
        n = windows.shape[0]
        if n <= _CHUNK:
            return self._forward(windows)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, _CHUNK):
            out[start : start + _CHUNK] = self._forward(windows[start : start + _CHUNK])
        return out

    @staticmethod
    def _row_codes(windows: np.ndarray) -> np.ndarray:
        """[n, 5, 4] bits -> [n, 5] codes x1 + 2*x2 + 4*x3 + 8*x4.

        Each row's 4 bytes read as a little-endian uint32 v = x1 + x2<<8 + x3<<16 + x4<<24;
        multiplying by 0x01020408 lands x1..x4 on bits 24..27 with no carries, so the code is
        ``(v * 0x01020408 mod 2^32) >> 24``: two array operations instead of four shifts and ors.
        """
        packed = np.ascontiguousarray(windows, dtype=np.uint8).view("<u4")[:, :, 0]
        return (packed * np.uint32(0x01020408)) >> np.uint32(24)

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        u = self.units
        recurrent = self._recurrent
        # Input pre-activations of every step by table lookup, step-major: [5, n, 4u].
        z_input = np.take(self._table, self._row_codes(windows).T, axis=0)
        # Step 0 starts from h = c = 0: no recurrent term, no forget gate.
        t = np.tanh(z_input[0], out=z_input[0])
        c = t[:, :u] + 1.0  # 2 * input gate
        c *= t[:, 2 * u : 3 * u]
        c *= 0.5  # c = i * c~
        h2 = t[:, 3 * u :] + 1.0  # H = 2h = (1 + tanh_o) * tanh(c)
        h2 *= np.tanh(c)
        tmp = np.empty_like(c)
        for step in range(1, WINDOW):
            z = z_input[step]
            z += h2 @ recurrent
            t = np.tanh(z, out=z)
            # c = f*c + i*c~ = ((1 + tanh_f) * c + (1 + tanh_i) * c~) / 2
            np.add(t[:, u : 2 * u], 1.0, out=tmp)
            c *= tmp
            np.add(t[:, :u], 1.0, out=tmp)
            tmp *= t[:, 2 * u : 3 * u]
            c += tmp
            c *= 0.5
            np.add(t[:, 3 * u :], 1.0, out=h2)
            h2 *= np.tanh(c)
        logit = h2 @ self._dense_kernel + self._dense_bias
        # sigmoid via tanh: no overflow warning for large |logit|.
        return (0.5 * np.tanh(0.5 * logit) + 0.5).astype(np.float32, copy=False)
