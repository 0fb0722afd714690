"""Tests for safenpz.datasets (imdb, reuters) beyond Keras parity.

No network: nothing here downloads (``$SAFENPZ_DATASETS_URL`` points at a
refused port). Downloads and the converted cache, which need the private hash
table and spies, are tested in tests/internal/test_datasets_cache.py; parity
with the real Keras is in test_keras_parity.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safenpz
from dataset_home import assert_same_data, converted, isolate
from safenpz import (
    DownloadError,
    FormatError,
    RaggedArray,
    UnsafeFileError,
)
from safenpz.datasets import imdb, reuters


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache, an empty Keras home, no real downloads."""
    return isolate(tmp_path, monkeypatch)


# -- outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_words": 20},
        {"maxlen": 15},
        {"start_char": None, "num_words": 50},
        {"oov_char": None, "num_words": 30, "skip_top": 4},
        {"seed": 5},
        {"index_from": 0},
    ],
    ids=["defaults", "num_words", "maxlen", "no-start", "drop-oov", "seed", "index0"],
)
@pytest.mark.parametrize("dataset", ["imdb", "reuters"])
def test_output_modes_agree(
    dataset: str, kwargs: dict[str, Any], keras_data: Any
) -> None:
    module = imdb if dataset == "imdb" else reuters
    file = str(getattr(keras_data, dataset)())
    (x_train, y_train), (x_test, y_test) = module.load_data(file, **kwargs)
    (r_train, ry_train), (r_test, ry_test) = module.load_data(
        file, output="ragged", **kwargs
    )
    assert isinstance(r_train, RaggedArray)
    assert r_train.dtype == np.int32
    assert r_train.to_lists() == x_train.tolist()
    assert r_test.to_lists() == x_test.tolist()
    np.testing.assert_array_equal(ry_train, y_train)
    np.testing.assert_array_equal(ry_test, y_test)
    (p_train, _), (p_test, _) = module.load_data(
        file, output="padded", pad_maxlen=12, padding="post", pad_value=-1, **kwargs
    )
    want = RaggedArray.from_lists(x_train.tolist()).pad(12, padding="post", value=-1)
    np.testing.assert_array_equal(p_train, want)
    assert p_train.dtype == np.int32
    assert p_test.shape == (len(x_test), 12)


def test_lists_are_python_lists_of_python_ints(keras_data: Any) -> None:
    (x_train, y_train), (x_test, y_test) = imdb.load_data(str(keras_data.imdb()))
    assert x_train.dtype == object
    assert x_train.ndim == 1
    assert type(x_train[0]) is list
    assert type(x_train[0][0]) is int
    assert x_train[0][0] == 1  # start_char
    assert y_train.dtype == np.int64
    assert len(y_train) == len(x_train) == 120
    assert len(x_test) == len(y_test) == 80


def test_equal_length_rows_give_a_2d_object_array(keras_data: Any) -> None:
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb(width=4)))
    assert x_train.shape == (120, 5)
    assert x_train.dtype == object
    assert type(x_train[0, 0]) is int
    (x_train, _), _ = imdb.load_data(
        str(keras_data.imdb("e.npz", width=0)), start_char=None, num_words=3
    )
    assert x_train.shape == (120, 0)


def test_option_errors(keras_data: Any) -> None:
    file = str(keras_data.imdb())
    with pytest.raises(ValueError, match="output must be one of"):
        imdb.load_data(file, output="tensor")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="compat must be"):
        imdb.load_data(file, compat="keras1")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="only apply to output='padded'"):
        imdb.load_data(file, pad_maxlen=10)
    with pytest.raises(ValueError, match="only apply to output='padded'"):
        reuters.load_data(str(keras_data.reuters()), output="ragged", padding="post")


def test_imdb_ignores_unknown_keywords_reuters_rejects_them(keras_data: Any) -> None:
    imdb.load_data(str(keras_data.imdb()), nb_words=3, anything="goes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'nb_words'"):
        reuters.load_data(str(keras_data.reuters()), nb_words=3)  # type: ignore[call-overload]


def test_decode_review_and_newswire() -> None:
    word_index = {"the": 1, "movie": 17, "great": 84}
    ids = [0, 0, 1, 4, 20, 2, 87, 5000]
    assert imdb.decode_review(ids, word_index) == "[START] the movie [OOV] great [UNK]"
    assert imdb.decode_review(np.array(ids), word_index, pad_char=None).startswith(
        "[UNK] [UNK] [START]"
    )
    # index_from=0: ids are the ranks; start/oov take precedence over words 1 and 2
    assert imdb.decode_review([1, 17, 84], word_index, index_from=0) == (
        "[START] movie great"
    )
    assert imdb.decode_review([1, 17], word_index, index_from=0, start_char=None) == (
        "the movie"
    )
    assert reuters.decode_newswire([1, 4, 5], {"the": 1, "of": 2}) == "[START] the of"


def test_decode_round_trip(keras_data: Any, tmp_path: Path) -> None:
    words = {f"w{i}": i for i in range(1, 301)}
    index_file = tmp_path / "idx" / "imdb_word_index.json"
    index_file.parent.mkdir()
    index_file.write_text(json.dumps(words))
    word_index = imdb.get_word_index(str(index_file))
    assert word_index == words
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb()), index_from=5, start_char=3)
    text = imdb.decode_review(x_train[0], word_index, index_from=5, start_char=3)
    assert text.split()[0] == "[START]"
    # id 2 is the OOV id (the largest id too: Keras's num_words=None quirk)
    shown = [("[OOV]" if i == 2 else f"w{i - 5}") for i in x_train[0][1:]]
    assert text.split()[1:] == shown


def test_label_names() -> None:
    names = reuters.get_label_names()
    assert len(names) == 46
    assert names[:3] == ("cocoa", "grain", "veg-oil")
    assert names[-1] == "lead"


# -- Keras 2.2 compatibility -----------------------------------------------------------


def keras22_imdb(
    path: Path,
    num_words: Any = None,
    skip_top: Any = 0,
    maxlen: Any = None,
    seed: Any = 113,
    start_char: Any = 1,
    oov_char: Any = 2,
    index_from: Any = 3,
) -> Any:
    """Keras 2.2.4's ``imdb.load_data`` steps, as an independent oracle.

    Reads our own generated file with ``allow_pickle=True`` (trusted here),
    and builds the results with ``dtype=object`` (what Keras 2.2 got from
    NumPy of its time for ragged rows, and what the compat mode returns).
    """
    with np.load(path, allow_pickle=True) as f:
        x_train, labels_train = f["x_train"], f["y_train"]
        x_test, labels_test = f["x_test"], f["y_test"]
    np.random.seed(seed)  # noqa: NPY002
    indices = np.arange(len(x_train))
    np.random.shuffle(indices)  # noqa: NPY002
    x_train, labels_train = x_train[indices], labels_train[indices]
    indices = np.arange(len(x_test))
    np.random.shuffle(indices)  # noqa: NPY002
    x_test, labels_test = x_test[indices], labels_test[indices]
    xs: Any = np.concatenate([x_train, x_test])
    labels: Any = np.concatenate([labels_train, labels_test])
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        kept = [(x, y) for x, y in zip(xs, labels, strict=True) if len(x) < maxlen]
        xs, labels = [x for x, _ in kept], [y for _, y in kept]
        if not xs:
            msg = f"After filtering for sequences shorter than maxlen={maxlen}, ..."
            raise ValueError(msg)
    if not num_words:
        num_words = max([max(x) for x in xs])
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    idx = len(x_train)
    return (
        (np.array(xs[:idx], dtype=object), np.array(labels[:idx])),
        (np.array(xs[idx:], dtype=object), np.array(labels[idx:])),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"maxlen": 15},
        {"maxlen": 25, "num_words": 40},
        {"seed": 3, "oov_char": None, "num_words": 60},
        {"maxlen": 2, "num_words": 10},
        {"start_char": None, "index_from": 0, "num_words": 99},
    ],
    ids=["defaults", "maxlen", "maxlen-nw", "seed-drop", "tiny-maxlen", "no-shift"],
)
def test_keras22_compat_matches_keras_224(
    kwargs: dict[str, Any], keras_data: Any
) -> None:
    file = keras_data.imdb()
    want = keras22_imdb(file, **kwargs)
    want_state = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    got = imdb.load_data(str(file), compat="keras2.2", **kwargs)
    # Keras 2.2 left NumPy's global RNG seeded and advanced; so does safenpz.
    np.testing.assert_array_equal(np.random.get_state()[1], want_state)  # type: ignore[index]  # noqa: NPY002
    assert_same_data(got, want)
    (r_train, _), (r_test, _) = imdb.load_data(
        str(file), compat="keras2.2", output="ragged", **kwargs
    )
    assert r_train.to_lists() == [list(r) for r in want[0][0]]
    assert r_test.to_lists() == [list(r) for r in want[1][0]]


def test_keras22_maxlen_moves_test_rows_into_train(keras_data: Any) -> None:
    file = str(keras_data.imdb())
    (x_train, y_train), _ = imdb.load_data(file, maxlen=15, compat="keras2.2")
    (k_train, _), (k_test, _) = imdb.load_data(file, maxlen=15)
    # Keras 2.2 split the filtered train+test at the original 120 training rows
    assert len(x_train) == min(120, len(k_train) + len(k_test)) == len(y_train)
    assert len(x_train) > len(k_train)


def test_keras22_errors(keras_data: Any) -> None:
    with pytest.raises(ValueError, match="maxlen=1, no sequence was kept"):
        imdb.load_data(str(keras_data.imdb()), maxlen=1, compat="keras2.2")


def test_keras22_reuters_only_changes_the_rng(keras_data: Any) -> None:
    file = str(keras_data.reuters())
    np.random.seed(1)  # noqa: NPY002
    assert_same_data(
        reuters.load_data(file, compat="keras2.2"), reuters.load_data(file)
    )
    np.random.seed(113)  # noqa: NPY002
    np.random.shuffle(np.arange(150))  # noqa: NPY002
    want = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    reuters.load_data(file, compat="keras2.2")
    np.testing.assert_array_equal(np.random.get_state()[1], want)  # type: ignore[index]  # noqa: NPY002


# -- offline, word indexes -------------------------------------------------------------


def test_offline_error_says_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline") as info:
        imdb.load_data()
    assert str(cache / "imdb.npz") in str(info.value)


def test_word_index_must_be_an_object(tmp_path: Path) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(FormatError, match="not a word index"):
        imdb.get_word_index(str(bad))
    bad.write_text("{")
    with pytest.raises(FormatError, match="not a JSON word index"):
        reuters.get_word_index(str(bad))


# -- local paths -----------------------------------------------------------------------


def test_relative_path_with_directory(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(keras_data.root.parent)
    keras_data.imdb()
    (x_train, _), _ = imdb.load_data(os.path.join("keras-data", "imdb.npz"))
    assert len(x_train) == 120
    with pytest.raises(FileNotFoundError, match="does not exist"):
        imdb.load_data(os.path.join("keras-data", "missing.npz"))


def test_unwritable_cache_still_loads(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(not_a_dir))
    (x_train, _), _ = imdb.load_data(str(keras_data.imdb()))
    assert len(x_train) == 120


def test_missing_member_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x" / "imdb.npz"
    path.parent.mkdir()
    np.savez(path, x_train=np.zeros(3), y_train=np.zeros(3))
    with pytest.raises(FormatError, match="no member 'x_test'"):
        imdb.load_data(str(path))


def test_rows_that_are_not_lists_still_load(tmp_path: Path) -> None:
    # A 2-D numeric x cannot take the fast layout; the Keras steps still run.
    path = tmp_path / "x" / "reuters.npz"
    path.parent.mkdir()
    np.savez(path, x=np.arange(40).reshape(10, 4), y=np.arange(10))
    (x_train, y_train), (x_test, _) = reuters.load_data(str(path), num_words=30)
    assert x_train.shape == (8, 5)
    assert len(x_test) == 2
    # what Keras gives for such rows: NumPy integers (oov_char stays an int)
    assert {type(w) for w in x_train.ravel()} == {int, np.int64}
    assert sorted(
        y_train.tolist() + reuters.load_data(str(path))[1][1].tolist()
    ) == list(range(10))


# -- hostile files ---------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["imdb", "reuters"])
def test_hostile_local_file(
    dataset: str, keras_data: Any, tmp_path: Path, cache: Path
) -> None:
    sentinel = tmp_path / "sentinel"
    path = keras_data.hostile(sentinel, reuters=dataset == "reuters")
    module = imdb if dataset == "imdb" else reuters
    with pytest.raises(UnsafeFileError, match="system"):
        module.load_data(str(path))
    assert not sentinel.exists()
    assert converted(cache) == []


# -- the namespace ---------------------------------------------------------------------


def test_public_exports() -> None:
    import safenpz.datasets as datasets

    assert datasets.__all__ == ["imdb", "keras_compat", "reuters"]
    assert imdb.__all__ == ["decode_review", "get_word_index", "load_data"]
    assert reuters.__all__ == [
        "decode_newswire",
        "get_label_names",
        "get_word_index",
        "load_data",
    ]
    assert safenpz.datasets is datasets
