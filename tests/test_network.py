"""Against the real hosted Keras datasets (needs the internet).

Never run in CI (no network there): set ``SAFENPZ_NETWORK_TESTS=1`` to run
them by hand. They download Keras's files, check the published hashes, and
compare safenpz's outputs with Keras's own loader on the real data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(
        os.environ.get("SAFENPZ_NETWORK_TESTS") != "1",
        reason="needs the internet; set SAFENPZ_NETWORK_TESTS=1",
    ),
]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))


def _same(got: Any, want: Any) -> None:
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert gx.shape == wx.shape
        assert gx.dtype == wx.dtype
        assert gx.tolist() == wx.tolist()
        np.testing.assert_array_equal(gy, wy)
        assert gy.dtype == wy.dtype


@pytest.mark.parametrize("name", ["imdb", "reuters"])
def test_real_dataset_matches_keras(name: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    from safenpz.datasets import imdb, reuters

    ours = {"imdb": imdb, "reuters": reuters}[name]
    theirs = getattr(keras.datasets, name)
    _same(ours.load_data(num_words=10000), theirs.load_data(num_words=10000))
    _same(ours.load_data(), theirs.load_data())  # second load: converted cache
    assert ours.get_word_index() == theirs.get_word_index()
