"""A Keras IMDb tutorial, run twice: with Keras's loader and with safenpz's.

Switching the import must change nothing but the speed: the multi-hot
vectors, the padded sequences and the training losses (with the same seed)
are identical.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "numpy")
keras = pytest.importorskip("keras")
keras_imdb = pytest.importorskip("keras.src.datasets.imdb")

from safenpz.datasets import imdb  # noqa: E402

pytestmark = pytest.mark.keras

NUM_WORDS = 300


def vectorize_sequences(sequences: Any, dimension: int = NUM_WORDS) -> np.ndarray:
    """The multi-hot encoding of the Deep Learning with Python tutorial."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.0
    return results


def train(x: np.ndarray, y: np.ndarray) -> list[float]:
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    return [float(v) for v in history.history["loss"]]


@pytest.fixture
def tutorial_file(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    path: Path = keras_data.imdb(n_train=160, n_test=60, vocab=600, max_len=40)
    monkeypatch.setattr(keras_imdb, "get_file", lambda *a, **k: str(path))
    return path


def test_switching_the_import_changes_nothing(tutorial_file: Path) -> None:
    (k_train, _), (k_test, _) = keras.datasets.imdb.load_data(num_words=NUM_WORDS)
    (s_train, _), (s_test, _) = imdb.load_data(
        path=str(tutorial_file), num_words=NUM_WORDS
    )

    # multi-hot, as in the classic tutorial
    k_vec, s_vec = vectorize_sequences(k_train), vectorize_sequences(s_train)
    np.testing.assert_array_equal(k_vec, s_vec)
    np.testing.assert_array_equal(
        vectorize_sequences(k_test), vectorize_sequences(s_test)
    )

    # padding, as in the Keras examples
    pad = keras.utils.pad_sequences
    np.testing.assert_array_equal(pad(k_train, maxlen=20), pad(s_train, maxlen=20))
    (p_train, _), _ = imdb.load_data(
        path=str(tutorial_file), num_words=NUM_WORDS, output="padded", pad_maxlen=20
    )
    np.testing.assert_array_equal(pad(k_train, maxlen=20), p_train)


@pytest.mark.skipif(
    keras.backend.backend() == "numpy",
    reason="Keras's numpy backend cannot train; `make test` runs this file again "
    "with KERAS_BACKEND=jax",
)
def test_training_on_either_input_gives_the_same_losses(tutorial_file: Path) -> None:
    (k_train, k_ytrain), _ = keras.datasets.imdb.load_data(num_words=NUM_WORDS)
    (s_train, s_ytrain), _ = imdb.load_data(
        path=str(tutorial_file), num_words=NUM_WORDS
    )
    k_vec, s_vec = vectorize_sequences(k_train), vectorize_sequences(s_train)
    y_k = k_ytrain.astype("float32")
    y_s = s_ytrain.astype("float32")
    losses = train(k_vec, y_k)
    assert losses == train(s_vec, y_s)
    assert all(np.isfinite(losses))
