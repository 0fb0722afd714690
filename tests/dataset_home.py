"""A dataset test's surroundings: a fresh cache, an empty Keras home, no downloads.

Shared by tests/test_datasets.py and tests/internal/test_datasets_cache.py:
:func:`isolate` is what their autouse ``cache`` fixture does, :func:`converted`
lists the converted files in a cache, and :func:`assert_same_data` compares two
``load_data`` results split by split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safenpz import RaggedArray

__all__ = ["assert_same_data", "converted", "isolate"]


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every place a loader looks at under `tmp_path`; return the cache.

    The safenpz cache, the Keras home and ``$HOME`` (tf.keras searches
    ``~/.keras/datasets`` too: never the real one) are fresh directories, and
    downloads go to a refused port unless a test starts a local server.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", "http://127.0.0.1:9/")  # refused
    monkeypatch.delenv("SAFENPZ_OFFLINE", raising=False)
    return cache


def converted(cache: Path) -> list[Path]:
    """The converted dataset files in `cache`, sorted."""
    return sorted(cache.glob("*.safenpz.npz"))


def assert_same_data(a: Any, b: Any) -> None:
    """Two ``((x_train, y_train), (x_test, y_test))`` results hold the same data.

    ``x`` splits are compared as ragged arrays or by dtype, shape and rows;
    ``y`` splits by dtype and values.
    """
    (ax, ay), (bx, by) = a
    (cx, cy), (dx, dy) = b
    for got, want in ((ax, cx), (bx, dx)):
        if isinstance(got, RaggedArray):
            assert got.equals(want)
        else:
            assert got.dtype == want.dtype
            assert got.shape == want.shape
            assert got.tolist() == want.tolist()
    for got, want in ((ay, cy), (by, dy)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
