"""safenpz.datasets.keras_compat: Keras's own loaders through safenpz, scoped
(the real Keras 3 loaders: tests/internal/test_compat_internals.py)."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safenpz import UnsafeFileError
from safenpz.datasets import keras_compat

os.environ.setdefault("KERAS_BACKEND", "numpy")


def _typed(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, _typed(value.tolist()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value), value)


# -- a loader written like old Keras / tf.keras: np.load(..., allow_pickle=True) --

_OLD_STYLE_SOURCE = """
import numpy as np

def load_data(path):
    with np.load(path, allow_pickle=True) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
"""


@pytest.fixture
def old_style_module() -> Iterator[types.ModuleType]:
    """``fake_old_keras.datasets.imdb``: a dataset module that calls
    ``np.load(path, allow_pickle=True)``, as tf-keras and Keras < 3.15 do."""
    names = [
        "fake_old_keras",
        "fake_old_keras.datasets",
        "fake_old_keras.datasets.imdb",
    ]
    modules = []
    for name in names:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__path__ = []  # a package, so that submodules resolve
        sys.modules[name] = module
        modules.append(module)
    exec(_OLD_STYLE_SOURCE, vars(modules[-1]))  # our own test source
    try:
        yield modules[-1]
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_old_style_loader_is_redirected(
    old_style_module: types.ModuleType, keras_data: Any, tmp_path: Path
) -> None:
    file = keras_data.imdb()
    outside = old_style_module.load_data(file)  # a trusted file of our own
    name = old_style_module.__name__
    with keras_compat(modules=(name,)) as patched:
        assert patched == [f"{name}.np"]
        assert old_style_module.np is not np
        assert old_style_module.np.arange is np.arange  # everything else is NumPy
        assert np.load is _numpy_load  # the real NumPy is untouched
        inside = old_style_module.load_data(file)
        sentinel = tmp_path / "sentinel"
        with pytest.raises(UnsafeFileError, match="system"):
            old_style_module.load_data(keras_data.hostile(sentinel))
        assert not sentinel.exists()
    assert old_style_module.np is np
    assert _typed(inside) == _typed(outside)


_numpy_load = np.load


def test_restored_when_the_block_raises(old_style_module: types.ModuleType) -> None:
    name = old_style_module.__name__
    seen = []

    def block() -> None:
        with keras_compat(modules=(name,)):
            seen.append(old_style_module.np)
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        block()
    assert seen[0] is not np
    assert old_style_module.np is np


def test_nested_blocks(old_style_module: types.ModuleType) -> None:
    name = old_style_module.__name__
    with keras_compat(modules=(name,)):
        first = old_style_module.np
        with keras_compat(modules=(name,)):
            assert old_style_module.np is not np
        assert old_style_module.np is first
    assert old_style_module.np is np


def test_missing_modules_are_skipped() -> None:
    with keras_compat(modules=("no_such_package.datasets.imdb",)) as patched:
        assert patched == []
    with keras_compat(modules=()) as patched:
        assert patched == []
