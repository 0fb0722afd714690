"""Reuters newswire topics: a drop-in for ``keras.datasets.reuters``.

::

    from safenpz.datasets import reuters    # was: from keras.datasets import reuters
    (x_train, y_train), (x_test, y_test) = reuters.load_data(num_words=10000)

:func:`load_data`, :func:`get_word_index` and :func:`get_label_names` take
Keras 3.15.1's parameters and return exactly what Keras returns. Unlike
``imdb.load_data``, Keras's ``reuters.load_data`` rejects unknown keyword
arguments with ``TypeError``, and so does this one. See
:mod:`safenpz.datasets` for downloads and the cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from numpy.typing import DTypeLike, NDArray

from safenpz._typing import KerasData, RaggedKerasData
from safenpz.datasets import _docs, _pipeline, _spec, _words
from safenpz.datasets._pipeline import Output
from safenpz.datasets._spec import Compat

__all__ = ["decode_newswire", "get_label_names", "get_word_index", "load_data"]

SPEC = _spec.REUTERS

_LABEL_NAMES = (
    "cocoa",
    "grain",
    "veg-oil",
    "earn",
    "acq",
    "wheat",
    "copper",
    "housing",
    "money-supply",
    "coffee",
    "sugar",
    "trade",
    "reserves",
    "ship",
    "cotton",
    "carcass",
    "crude",
    "nat-gas",
    "cpi",
    "money-fx",
    "interest",
    "gnp",
    "meal-feed",
    "alum",
    "oilseed",
    "gold",
    "tin",
    "strategic-metal",
    "livestock",
    "retail",
    "ipi",
    "iron-steel",
    "rubber",
    "heat",
    "jobs",
    "lei",
    "bop",
    "zinc",
    "orange",
    "pet-chem",
    "dlr",
    "gas",
    "silver",
    "wpi",
    "hog",
    "lead",
)


@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
    test_split: float = ...,
    seed: int = ...,
    start_char: int | None = ...,
    oov_char: int | None = ...,
    index_from: int = ...,
    *,
    output: Literal["lists", "padded"] = ...,
    compat: Compat = ...,
    pad_maxlen: int | None = ...,
    padding: Literal["pre", "post"] = ...,
    truncating: Literal["pre", "post"] = ...,
    pad_value: Any = ...,
    pad_dtype: DTypeLike = ...,
    progress: bool | None = ...,
) -> KerasData: ...
@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
    test_split: float = ...,
    seed: int = ...,
    start_char: int | None = ...,
    oov_char: int | None = ...,
    index_from: int = ...,
    *,
    output: Literal["ragged"],
    compat: Compat = ...,
    pad_maxlen: int | None = ...,
    padding: Literal["pre", "post"] = ...,
    truncating: Literal["pre", "post"] = ...,
    pad_value: Any = ...,
    pad_dtype: DTypeLike = ...,
    progress: bool | None = ...,
) -> RaggedKerasData: ...
@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
    test_split: float = ...,
    seed: int = ...,
    start_char: int | None = ...,
    oov_char: int | None = ...,
    index_from: int = ...,
    *,
    output: Output,
    compat: Compat = ...,
    pad_maxlen: int | None = ...,
    padding: Literal["pre", "post"] = ...,
    truncating: Literal["pre", "post"] = ...,
    pad_value: Any = ...,
    pad_dtype: DTypeLike = ...,
    progress: bool | None = ...,
) -> KerasData | RaggedKerasData: ...
@_docs.fill_doc(row="newswire", rows="newswires", remote="reuters.npz")
def load_data(
    path: str | os.PathLike[str] = "reuters.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    *,
    output: Output = "lists",
    compat: Compat = None,
    pad_maxlen: int | None = None,
    padding: Literal["pre", "post"] = "pre",
    truncating: Literal["pre", "post"] = "pre",
    pad_value: Any = 0,
    pad_dtype: DTypeLike = "int32",
    progress: bool | None = None,
) -> KerasData | RaggedKerasData:
    """Load the Reuters dataset exactly as ``keras.datasets.reuters.load_data``.

    11,228 newswires labelled over 46 topics (see :func:`get_label_names`),
    each a list of word ids, shuffled once and split into train and test.

    Parameters
    ----------
    %(path)s
    %(vocabulary)s
    %(maxlen)s
        Unlike IMDb, an empty result is not an error.
    test_split : float, default 0.2
        Fraction used as test data; the split index is
        ``int(n * (1 - test_split))``, with Python's slicing rules.
    %(seed)s
    %(markers)s
    %(output)s
    %(compat)s
        The data are otherwise the same as Keras 3's.
    %(padding)s
    %(progress)s

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``y_*`` are ``int64`` label arrays (``float64`` when `maxlen` left
        a split empty, as in Keras).

    Raises
    ------
    TypeError
        For an unknown keyword argument, as Keras.
    ValueError
        ``num_words`` is None and there is no row or an empty row ("max() arg
        is an empty sequence"); bad safenpz options.
    %(file_errors)s

    Examples
    --------
    >>> from safenpz.datasets import reuters
    >>> (x_train, y_train), (x_test, y_test) = reuters.load_data(
    ...     num_words=10000)  # doctest: +SKIP
    >>> len(x_train), len(x_test)  # doctest: +SKIP
    (8982, 2246)
    """
    params = _pipeline.Params(
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from, test_split
    )
    pad = _pipeline.PadOptions(pad_maxlen, pad_dtype, padding, truncating, pad_value)
    return _pipeline.load_dataset(
        SPEC, path, params, output=output, compat=compat, pad=pad, progress=progress
    )


def get_word_index(
    path: str | os.PathLike[str] = "reuters_word_index.json",
    *,
    progress: bool | None = None,
) -> dict[str, int]:
    """Return the word -> rank dict of the Reuters dataset, as Keras does.

    Parameters
    ----------
    path : str or path-like, default "reuters_word_index.json"
        A bare name (download cache; checked against Keras's md5) or a local
        path.
    progress : bool, optional
        Show a download progress bar.

    Returns
    -------
    dict of str to int

    Raises
    ------
    DownloadError, HashMismatchError
        The file cannot be downloaded or verified.
    FormatError
        The file is not a JSON object.
    """
    return _words.load_word_index(path, SPEC.word_index, progress=progress)


def get_label_names() -> tuple[str, ...]:
    """Return the 46 topic names, indexed like the labels (Keras's tuple).

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> from safenpz.datasets import reuters
    >>> reuters.get_label_names()[:4]
    ('cocoa', 'grain', 'veg-oil', 'earn')
    """
    return _LABEL_NAMES


def decode_newswire(
    ids: Iterable[int] | NDArray[Any],
    word_index: Mapping[str, int] | None = None,
    *,
    index_from: int = 3,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    pad_char: int | None = 0,
    start_token: str = "[START]",
    oov_token: str = "[OOV]",
    unknown_token: str = "[UNK]",
) -> str:
    """Turn a newswire's ids back into words.

    See :func:`safenpz.datasets.imdb.decode_review`; `word_index` defaults
    to :func:`get_word_index`.

    Examples
    --------
    >>> from safenpz.datasets import reuters
    >>> reuters.decode_newswire([1, 4, 5], {"the": 1, "of": 2})
    '[START] the of'
    """
    if word_index is None:
        word_index = get_word_index()
    return _words.decode_ids(
        ids,
        word_index,
        index_from=index_from,
        start_char=start_char,
        oov_char=oov_char,
        pad_char=pad_char,
        start_token=start_token,
        oov_token=oov_token,
        unknown_token=unknown_token,
    )
