"""The Keras network: raw 0/1 bits in, probability of y=1 out.

The reference notebook fed raw 0/1 bits straight into the LSTM and, re-run on TF 2.21 / Keras 3,
mostly stayed at chance (loss 0.693). Centring the bits to -1/+1 makes it converge on every seed
we tried, so the centring is the first layer *inside* the model: the saved model still takes raw
bits, and no caller can forget to normalise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.data import N_FEATURES, WINDOW

if TYPE_CHECKING:  # pragma: no cover - typing only, keeps TensorFlow out of import time
    import keras

# x' = INPUT_SCALE * x + INPUT_OFFSET maps the bits {0, 1} to {-1, +1}.
INPUT_SCALE = 2.0
INPUT_OFFSET = -1.0

NORMALISE_LAYER = "centre_bits"
LSTM_LAYER = "lstm"
DENSE_LAYER = "output"


def build_model(units: int = 10, learning_rate: float = 1e-3) -> keras.Model:
    """A compiled LSTM(units) -> Dense(1, sigmoid) classifier over [WINDOW, N_FEATURES] windows.

    Weights are initialised from Keras' global seed, so call ``keras.utils.set_random_seed`` first
    for a reproducible run.
    """
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(WINDOW, N_FEATURES), dtype="float32", name="window"),
            keras.layers.Rescaling(scale=INPUT_SCALE, offset=INPUT_OFFSET, name=NORMALISE_LAYER),
            keras.layers.LSTM(units, name=LSTM_LAYER),
            keras.layers.Dense(1, activation="sigmoid", name=DENSE_LAYER),
        ],
        name="xor_lstm",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model
