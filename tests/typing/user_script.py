"""A user's script, checked by ``mypy --strict`` (``make check``) and run by
``tests/test_typing.py``: the static types safenpz declares are the ones a
user's code sees, and the run-time values have those types."""

from __future__ import annotations

import io
from typing import Any, assert_type

import numpy as np
from numpy.typing import NDArray

import safenpz
from safenpz import NpzFile, RaggedArray
from safenpz.datasets import imdb, reuters


def legacy_npz() -> bytes:
    x = np.empty(2, dtype=object)
    x[:] = [[1, 2], [3]]
    buf = io.BytesIO()
    np.savez(buf, x=x, y=np.arange(2))
    return buf.getvalue()


def legacy_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    return buf.getvalue()


def check_load() -> None:
    arr = safenpz.load_npy(legacy_npy())
    assert_type(arr, NDArray[Any])
    assert isinstance(arr, np.ndarray)

    rows = safenpz.load_npy(legacy_npy(), ragged=True)
    assert_type(rows, NDArray[Any] | RaggedArray)
    assert isinstance(rows, RaggedArray)

    with safenpz.load_npz(legacy_npz()) as f:
        assert_type(f, NpzFile[NDArray[Any]])
        x = f["x"]
        assert_type(x, NDArray[Any])
        assert isinstance(x, np.ndarray)
        for name, value in f.items():
            assert_type(name, str)
            assert_type(value, NDArray[Any])

    with safenpz.load_npz(legacy_npz(), ragged=True, max_depth=8) as g:
        member = g["x"]
        assert_type(member, NDArray[Any] | RaggedArray)
        if isinstance(member, RaggedArray):
            assert_type(member.pad(maxlen=2), NDArray[Any])
        else:
            raise AssertionError(type(member))

    anything = safenpz.load(legacy_npz())  # depends on the file: Any
    assert_type(anything, Any)
    anything.close()

    plain: NpzFile = safenpz.load_npz(legacy_npz())  # bare NpzFile is allowed
    plain.close()


def check_keras(path: str) -> None:
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=path, num_words=50)
    assert_type(x_train, NDArray[Any])
    assert_type(y_train, NDArray[Any])
    assert_type(x_test, NDArray[Any])
    assert isinstance(x_train, np.ndarray)
    assert isinstance(y_test, np.ndarray)

    (r_train, _), (r_test, _) = imdb.load_data(path=path, output="ragged")
    assert_type(r_train, RaggedArray)
    assert_type(r_test, RaggedArray)
    assert isinstance(r_train, RaggedArray)

    (p_train, _), _ = imdb.load_data(path=path, output="padded", pad_maxlen=5)
    assert_type(p_train, NDArray[Any])
    assert p_train.shape[1] == 5


def check_reuters(path: str) -> None:
    (x, y), _ = reuters.load_data(path=path)
    assert_type(x, NDArray[Any])
    assert_type(y, NDArray[Any])
    (r, _), _ = reuters.load_data(path=path, output="ragged")
    assert_type(r, RaggedArray)
    assert isinstance(r, RaggedArray)
