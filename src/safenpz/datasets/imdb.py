"""IMDb sentiment dataset: a drop-in for ``keras.datasets.imdb``.

Change one import line and get the same data, without ``allow_pickle=True``::

    from safenpz.datasets import imdb       # was: from keras.datasets import imdb
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)

or, padded for training::

    (x_train, y_train), _ = imdb.load_data(
        num_words=10000, output="padded", pad_maxlen=200)
    x_train.shape, x_train.dtype    # ((25000, 200), dtype('int32'))

:func:`load_data`, :func:`get_word_index` take Keras 3.15.1's parameters and
return exactly what Keras returns (values, row order, container types and
dtypes, errors). The file is downloaded from Keras's origin (or
``$SAFENPZ_DATASETS_URL``), its sha256 is checked before anything is decoded,
it is decoded without running code from it, and a pickle-free copy is cached
so that the next load takes a fraction of a second. See
:mod:`safenpz.datasets` for the cache and environment variables.
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

__all__ = ["decode_review", "get_word_index", "load_data"]

SPEC = _spec.IMDB


@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
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
    **kwargs: Any,
) -> KerasData: ...
@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
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
    **kwargs: Any,
) -> RaggedKerasData: ...
@overload
def load_data(
    path: str | os.PathLike[str] = ...,
    num_words: int | None = ...,
    skip_top: int = ...,
    maxlen: int | None = ...,
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
    **kwargs: Any,
) -> KerasData | RaggedKerasData: ...
@_docs.fill_doc(
    row="review", rows="reviews", remote="imdb.npz", seed_order=", train then test"
)
def load_data(
    path: str | os.PathLike[str] = "imdb.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
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
    **kwargs: Any,
) -> KerasData | RaggedKerasData:
    """Load the IMDb dataset exactly as ``keras.datasets.imdb.load_data`` does.

    25,000 training and 25,000 test reviews labelled by sentiment (1
    positive, 0 negative); each review is a list of word ids, ranked by
    frequency (id ``i + index_from`` is the ``i``-th most frequent word).

    The positional parameters are Keras 3.15.1's, with the same defaults and
    meaning; everything after them is safenpz's and keyword-only. Like Keras,
    unknown keyword arguments are accepted and ignored.

    Parameters
    ----------
    %(path)s
    %(vocabulary)s
    %(maxlen)s
        Train and test are filtered separately; a split left empty raises
        ``ValueError``.
    %(seed)s
    %(markers)s
    %(output)s
    %(compat)s
        It also applied `maxlen` to train and test together, then split at the
        file's number of training reviews (so test reviews could move into
        train); results are object arrays (NumPy's ``dtype=object`` rule).
    %(padding)s
    %(progress)s
    **kwargs
        Ignored, as Keras 3 ignores them.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x_*`` as selected by `output`; ``y_*`` are the label arrays
        (``int64``).

    Raises
    ------
    ValueError
        Keras's errors: `maxlen` left a split empty ("After filtering for
        sequences shorter than maxlen=..."), or ``num_words`` is None,
        `start_char` is None and a review is empty ("max() arg is an empty
        sequence"); and a bad `output`, `compat` or padding option.
    %(file_errors)s

    Examples
    --------
    >>> from safenpz.datasets import imdb
    >>> (x_train, y_train), (x_test, y_test) = imdb.load_data(
    ...     num_words=10000)  # doctest: +SKIP
    >>> x_train.shape, x_train[0][:4], y_train.dtype  # doctest: +SKIP
    ((25000,), [1, 14, 22, 16], dtype('int64'))
    """
    del kwargs  # Keras 3 silently ignores unknown keyword arguments
    params = _pipeline.Params(
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from
    )
    pad = _pipeline.PadOptions(pad_maxlen, pad_dtype, padding, truncating, pad_value)
    return _pipeline.load_dataset(
        SPEC, path, params, output=output, compat=compat, pad=pad, progress=progress
    )


def get_word_index(
    path: str | os.PathLike[str] = "imdb_word_index.json",
    *,
    progress: bool | None = None,
) -> dict[str, int]:
    """Return the word -> rank dict of the IMDb dataset, as Keras does.

    Word ``w`` appears in the data as id ``word_index[w] + index_from``.

    Parameters
    ----------
    path : str or path-like, default "imdb_word_index.json"
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

    Examples
    --------
    >>> from safenpz.datasets import imdb
    >>> imdb.get_word_index()["the"]  # doctest: +SKIP
    1
    """
    return _words.load_word_index(path, SPEC.word_index, progress=progress)


def decode_review(
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
    """Turn a review's ids back into words.

    Pass the same `index_from`, `start_char` and `oov_char` as to
    :func:`load_data`; `pad_char` ids (the padding of ``output="padded"``)
    are skipped.

    Parameters
    ----------
    ids : iterable of int
        One review: a list, a RaggedArray row, or a row of a padded array.
    word_index : mapping, optional
        Word -> rank, as :func:`get_word_index` returns (fetched if omitted).
    index_from, start_char, oov_char : int or None
        As given to :func:`load_data`.
    pad_char : int or None, default 0
        Id to skip; None keeps every id.
    start_token, oov_token, unknown_token : str
        Shown for `start_char`, `oov_char`, and ids without a word.

    Returns
    -------
    str
        The words separated by single spaces.

    Examples
    --------
    >>> from safenpz.datasets import imdb
    >>> word_index = {"the": 1, "movie": 17, "great": 84}
    >>> imdb.decode_review([0, 0, 1, 4, 20, 2, 87], word_index)
    '[START] the movie [OOV] great'
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
