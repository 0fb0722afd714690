"""safenpz.datasets against the real Keras 3.15 loaders, argument by argument.

Both read the same small Keras-format file written by NumPy (Keras's
``get_file`` is pointed at it); results must be identical: values, order,
Python and NumPy types, dtypes, shapes, and the same exceptions with the same
messages.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "numpy")
keras = pytest.importorskip("keras")
keras_imdb = pytest.importorskip("keras.src.datasets.imdb")
keras_reuters = pytest.importorskip("keras.src.datasets.reuters")

from safenpz.datasets import imdb, reuters  # noqa: E402

pytestmark = pytest.mark.keras


# -- comparing outcomes --------------------------------------------------------


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as err:  # compared, not swallowed
        return "error", (type(err), str(err))


def _typed(value: Any) -> Any:
    """A structure that compares equal only if values *and* types match."""
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value), value)


def _assert_x_equal(got: Any, want: Any) -> None:
    assert type(got) is type(want) is np.ndarray
    assert got.dtype == want.dtype == np.dtype(object)
    assert got.shape == want.shape
    assert _typed(got.tolist()) == _typed(want.tolist())


def _assert_y_equal(got: Any, want: Any) -> None:
    assert type(got) is type(want) is np.ndarray
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def assert_same(got: tuple[str, Any], want: tuple[str, Any]) -> None:
    """Same exception (type and message), or the same two splits."""
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got[1] == want[1]
        return
    (gx_train, gy_train), (gx_test, gy_test) = got[1]
    (wx_train, wy_train), (wx_test, wy_test) = want[1]
    _assert_x_equal(gx_train, wx_train)
    _assert_x_equal(gx_test, wx_test)
    _assert_y_equal(gy_train, wy_train)
    _assert_y_equal(gy_test, wy_test)


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFENPZ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("SAFENPZ_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def files(keras_data_session: Any) -> dict[str, Path]:
    data = keras_data_session
    return {
        "imdb": data.imdb("parity-imdb.npz"),
        "imdb-equal": data.imdb(
            "parity-imdb-equal.npz", width=6, n_train=40, n_test=30
        ),
        "imdb-empty-test": data.imdb("parity-imdb-empty-test.npz", n_test=0),
        "reuters": data.reuters("parity-reuters.npz"),
        "reuters-equal": data.reuters("parity-reuters-equal.npz", width=5, n=50),
        **_unusual_files(data.root),
    }


def _unusual_files(root: Path) -> dict[str, Path]:
    """Reuters-shaped files whose rows are not lists of Python ints."""
    rng = np.random.default_rng(3)
    out = {}

    def rows(make: Callable[[int], Any]) -> Any:
        arr = np.empty(30, dtype=object)
        for i in range(30):
            arr[i] = make(int(rng.integers(0, 8)))
        return arr

    variants = {
        "numeric-2d": rng.integers(1, 60, (30, 4)),
        "int32-array-rows": rows(lambda n: rng.integers(1, 60, n).astype(np.int32)),
        "float-rows": rows(lambda n: [float(v) for v in rng.integers(1, 60, n)]),
        "tuple-rows": rows(lambda n: tuple(int(v) for v in rng.integers(1, 60, n))),
        "bool-rows": rows(lambda n: [bool(v) for v in rng.integers(0, 2, n + 1)]),
        # ids beyond the lookup table, and negative ids: the arithmetic path
        "big-ids": rows(lambda n: [int(v) for v in rng.integers(1, 2**40, n)]),
        "negative-ids": rows(lambda n: [int(v) for v in rng.integers(-50, 60, n)]),
    }
    for name, x in variants.items():
        path = root / f"{name}.npz"
        np.savez(path, x=x, y=rng.integers(0, 46, 30))
        out[name] = path
    return out


def _keras(module: Any, file: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(module, "get_file", lambda *a, **k: str(file))
    return module.load_data


def compare_imdb(
    file: Path, monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any
) -> None:
    keras_load = _keras(keras_imdb, file, monkeypatch)
    want = _outcome(lambda: keras_load(*args, **kwargs))
    got = _outcome(lambda: imdb.load_data(str(file), *args[1:], **kwargs))
    assert_same(got, want)


def compare_reuters(
    file: Path, monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any
) -> None:
    keras_load = _keras(keras_reuters, file, monkeypatch)
    want = _outcome(lambda: keras_load(*args, **kwargs))
    got = _outcome(lambda: reuters.load_data(str(file), *args[1:], **kwargs))
    assert_same(got, want)


# -- the grid --------------------------------------------------------------------

# Each argument's values; "larger than vocab" is 10000 (ids stop at 300 + 5).
GRID: dict[str, list[Any]] = {
    "num_words": [None, 0, 1, 10, 50, 10000],
    "skip_top": [0, 5],
    "maxlen": [None, 0, 1, 2, 15, 1000],
    "seed": [113, 0],
    "start_char": [1, None, 7],
    "oov_char": [2, None, 9],
    "index_from": [3, 0, 5],
}
BASE = {name: values[0] for name, values in GRID.items()}


def _one_at_a_time() -> list[dict[str, Any]]:
    cases = [dict(BASE)]
    for name, values in GRID.items():
        cases += [{**BASE, name: v} for v in values[1:]]
    return cases


def _pairs() -> list[dict[str, Any]]:
    """Every pair of non-default values of two arguments."""
    cases = []
    for (a, va), (b, vb) in itertools.combinations(GRID.items(), 2):
        for x, y in itertools.product(va[1:], vb[1:]):
            cases.append({**BASE, a: x, b: y})
    return cases


def _random(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{k: rng.choice(v) for k, v in GRID.items()} for _ in range(n)]


def _cases() -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for case in _one_at_a_time() + _pairs() + _random(60, 7):
        key = tuple(case.values())
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out


CASES = _cases()


def _id(case: dict[str, Any]) -> str:
    changed = [f"{k}={v}" for k, v in case.items() if k not in BASE or BASE[k] != v]
    return ",".join(changed) or "defaults"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_imdb_grid(
    case: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_imdb(files["imdb"], monkeypatch, **case)


REUTERS_CASES = [
    {**c, "test_split": ts}
    for c, ts in zip(
        _one_at_a_time() + _random(40, 11),
        itertools.cycle([0.2, 0, 1, 0.5, 1.5]),
        strict=False,
    )
] + [{**BASE, "test_split": ts} for ts in (0, 0.2, 1, 0.999, 1.5, -0.5)]


@pytest.mark.parametrize("case", REUTERS_CASES, ids=[_id(c) for c in REUTERS_CASES])
def test_reuters_grid(
    case: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_reuters(files["reuters"], monkeypatch, **case)


# -- special files and arguments ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_words": 10}, {"maxlen": 20}, {"start_char": None}, {"oov_char": None}],
    ids=["defaults", "num_words", "maxlen", "no-start", "no-oov"],
)
def test_equal_length_rows_give_2d_object_arrays(
    kwargs: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_imdb(files["imdb-equal"], monkeypatch, **kwargs)
    compare_reuters(files["reuters-equal"], monkeypatch, **kwargs)
    (x_train, _), _ = imdb.load_data(str(files["imdb-equal"]), **kwargs)
    if "oov_char" not in kwargs:
        assert x_train.ndim == 2
        assert type(x_train[0, 0]) is int


@pytest.mark.parametrize(
    "kwargs", [{}, {"maxlen": 10}, {"num_words": 20}], ids=["plain", "maxlen", "nw"]
)
def test_empty_split_in_file(
    kwargs: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_imdb(files["imdb-empty-test"], monkeypatch, **kwargs)


def test_reuters_emptied_by_maxlen_gives_float_labels(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_reuters(files["reuters"], monkeypatch, maxlen=1, num_words=10)
    (x_train, y_train), _ = reuters.load_data(
        str(files["reuters"]), maxlen=1, num_words=10
    )
    assert x_train.shape == (0,)
    assert y_train.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start_char": np.int64(1)},
        {"start_char": True},
        {"oov_char": np.int32(2), "num_words": 20},
        {"index_from": np.int64(3)},
        {"index_from": 2.0},
        {"index_from": True},
        {"num_words": 20.5},
        {"num_words": np.int64(20)},
        {"skip_top": np.uint8(4), "num_words": 30},
        {"skip_top": 2.5},
        {"maxlen": 12.5},
        {"maxlen": np.int64(12)},
        {"maxlen": float("nan")},
        {"maxlen": True},
        {"num_words": 2**70},
        {"skip_top": -(2**70)},
        {"oov_char": 2**40, "num_words": 30},
        {"start_char": "a"},
        {"index_from": None},
        {"start_char": None, "index_from": None},
        {"skip_top": None},
        {"seed": -1},
        {"seed": 2**32 - 1},
        {"seed": np.int64(5)},
    ],
    ids=repr,
)
def test_unusual_argument_types(
    kwargs: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_imdb(files["imdb"], monkeypatch, **kwargs)
    compare_reuters(files["reuters"], monkeypatch, **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "numeric-2d",
        "int32-array-rows",
        "float-rows",
        "tuple-rows",
        "bool-rows",
        "big-ids",
        "negative-ids",
    ],
)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_words": 20},
        {"maxlen": 5, "num_words": 30},
        {"oov_char": None, "skip_top": 9},
    ],
    ids=["defaults", "num_words", "maxlen", "drop"],
)
def test_rows_that_are_not_int_lists(
    name: str,
    kwargs: dict[str, Any],
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compare_reuters(files[name], monkeypatch, **kwargs)
    if name in ("big-ids", "negative-ids"):  # int lists: ragged output too
        keras_load = _keras(keras_reuters, files[name], monkeypatch)
        (kx_train, _), (kx_test, _) = _outcome(lambda: keras_load(**kwargs))[1]
        (x_train, _), (x_test, _) = reuters.load_data(
            str(files[name]), output="ragged", **kwargs
        )
        assert x_train.to_lists() == [list(r) for r in kx_train]
        assert x_test.to_lists() == [list(r) for r in kx_test]


@pytest.mark.parametrize("test_split", [0.2, "x", None, float("nan")], ids=repr)
def test_reuters_odd_test_split(
    test_split: Any, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_reuters(files["reuters"], monkeypatch, test_split=test_split)


def test_positional_arguments(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    compare_imdb(files["imdb"], monkeypatch, "imdb.npz", 40, 2, 25, 7, 1, 2, 3)
    compare_reuters(files["reuters"], monkeypatch, "reuters.npz", 40, 2, 25, 0.3, 7)


def test_unknown_keyword_arguments(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keras 3's imdb ignores them; its reuters raises TypeError.
    compare_imdb(files["imdb"], monkeypatch, nb_words=10, bogus=True)
    compare_reuters(files["reuters"], monkeypatch, nb_words=10)


def test_too_many_positional_arguments(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    keras_load = _keras(keras_reuters, files["reuters"], monkeypatch)
    args: tuple[Any, ...] = ("reuters.npz", None, 0, None, 0.2, 113, 1, 2, 3, "extra")
    want = _outcome(lambda: keras_load(*args))
    got = _outcome(lambda: reuters.load_data(*args))
    assert got[0] == want[0] == "error"
    assert got[1][0] is want[1][0] is TypeError


# -- outputs beyond Keras, checked against Keras's own tools -----------------------


@pytest.mark.parametrize(
    ("pad", "load"),
    [
        ({}, {}),
        ({"maxlen": 10}, {"num_words": 50}),
        ({"maxlen": 10, "padding": "post", "truncating": "post"}, {"maxlen": 20}),
        (
            {"maxlen": 40, "value": -1, "dtype": "int64"},
            {"start_char": None, "num_words": 99},
        ),
        ({"maxlen": 5, "dtype": "float32"}, {"oov_char": None, "num_words": 30}),
    ],
    ids=["defaults", "maxlen", "post", "value-dtype", "float"],
)
def test_padded_output_is_keras_pad_sequences(
    pad: dict[str, Any],
    load: dict[str, Any],
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keras_load = _keras(keras_imdb, files["imdb"], monkeypatch)
    (kx_train, ky_train), (kx_test, _) = keras_load(**load)
    ours = {
        f"pad_{k}" if k in ("maxlen", "value", "dtype") else k: v
        for k, v in pad.items()
    }
    (x_train, y_train), (x_test, _) = imdb.load_data(
        str(files["imdb"]), output="padded", **ours, **load
    )
    for got, rows in ((x_train, kx_train), (x_test, kx_test)):
        want = keras.utils.pad_sequences(list(rows), **pad)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    _assert_y_equal(y_train, ky_train)


@pytest.mark.parametrize(
    "load", [{}, {"num_words": 10, "oov_char": None}, {"maxlen": 12}]
)
def test_ragged_output_has_keras_rows(
    load: dict[str, Any], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module, ours, name in (
        (keras_imdb, imdb, "imdb"),
        (keras_reuters, reuters, "reuters"),
    ):
        keras_load = _keras(module, files[name], monkeypatch)
        (kx_train, ky_train), (kx_test, ky_test) = keras_load(**load)
        (x_train, y_train), (x_test, y_test) = ours.load_data(
            str(files[name]), output="ragged", **load
        )
        assert x_train.to_lists() == [list(r) for r in kx_train]
        assert x_test.to_lists() == [list(r) for r in kx_test]
        _assert_y_equal(y_train, ky_train)
        _assert_y_equal(y_test, ky_test)


def test_label_names_and_word_index_defaults() -> None:
    assert reuters.get_label_names() == keras_reuters.get_label_names()
    import inspect

    for ours, theirs in (
        (imdb.get_word_index, keras_imdb.get_word_index),
        (reuters.get_word_index, keras_reuters.get_word_index),
    ):
        assert (
            inspect.signature(ours).parameters["path"].default
            == inspect.signature(theirs).parameters["path"].default
        )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (imdb.load_data, keras_imdb.load_data),
        (reuters.load_data, keras_reuters.load_data),
    ],
    ids=["imdb", "reuters"],
)
def test_signatures_start_like_keras(ours: Any, theirs: Any) -> None:
    import inspect

    keras_params = list(inspect.signature(theirs).parameters.values())
    our_params = list(inspect.signature(ours).parameters.values())
    positional = [p for p in keras_params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [(p.name, p.default) for p in our_params[: len(positional)]] == [
        (p.name, p.default) for p in positional
    ]
    extra = our_params[len(positional) :]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in extra)
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in keras_params)
    assert has_var_kw == any(p.kind is p.VAR_KEYWORD for p in our_params)
