"""Building the ragged layout from Python rows: row checks and dtype inference.

:func:`from_rows` turns what :meth:`safenpz.RaggedArray.from_lists` accepts (a
sequence of rows, a 1-D object array as ``np.load(..., allow_pickle=True)``
returns for Keras datasets, or a 2-D array) into ``(values, offsets)``. The
rows' lengths give the offsets; the flattened elements give the values, whose
dtype follows the rules below.

The docstring of :func:`from_rows` is also that of
:meth:`safenpz.RaggedArray.from_lists`, which builds the RaggedArray from
the ``(values, offsets)`` returned here: it is written for the method's
caller.

dtype rules of :meth:`RaggedArray.from_lists`
---------------------------------------------
With ``dtype=None`` the dtype is what ``np.asarray(flat)`` would infer for the
flattened elements, with these fixed choices:

- Python or NumPy integers (bools may be mixed in) give ``int64`` on every
  platform; only when a value does not fit ``int64`` but all fit ``uint64``
  does the result become ``uint64``. Python ints that fit neither raise
  ``ValueError`` (``np.asarray`` would silently round them to ``float64``).
- Only bools give ``bool``; any float gives ``float64`` (``float32`` only if
  every element is a ``np.float32`` scalar); complex gives ``complex128``.
- Rows that are NumPy arrays keep their dtype (``np.concatenate``
  promotion; empty rows do not take part unless all rows are empty); a 2-D
  numeric array keeps its dtype.
- No elements at all give ``int64`` (``np.asarray([])`` would say
  ``float64``; token ids are the common case).
- Elements that would need an ``object`` array raise ``TypeError``.

With an explicit ``dtype`` the elements are converted as
``np.asarray(flat, dtype=dtype)`` would (floats truncated towards zero,
out-of-range Python ints raise ``OverflowError`` on NumPy 2); passing
``dtype=np.int64`` for integer rows skips the type scan and is about twice
as fast. ``object`` and structured dtypes raise ``TypeError``.

>>> values, offsets = from_rows([[1, 2], [], [True]], None)
>>> values.dtype, values.tolist(), offsets.tolist()
(dtype('int64'), [1, 2, 1], [0, 2, 2, 3])
>>> from_rows([[1], [2**63]], None)[0].dtype
dtype('uint64')
>>> from_rows([[1], [2.5]], None)[0].dtype
dtype('float64')
>>> from_rows([], None)[0].dtype
dtype('int64')
"""

from __future__ import annotations

import collections.abc
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["check_plain_dtype", "from_rows", "offsets_from_lengths"]

_UINT64_MAX = int(np.iinfo(np.uint64).max)

Layout = tuple[NDArray[Any], NDArray[np.int64]]


def from_rows(
    rows: Iterable[Iterable[Any]] | ArrayLike, dtype: DTypeLike | None
) -> Layout:
    """Build a RaggedArray from a sequence of rows.

    Parameters
    ----------
    rows : sequence of sequences, 1-D object array, or 2-D array
        Each row is a list, tuple, 1-D array or other sequence of
        numbers (not a string). A 2-D array gives one row per line; a 1-D
        object array (as ``np.load(..., allow_pickle=True)`` returns for
        Keras datasets) gives one row per element.
    dtype : data-type, optional
        dtype of `values`. If omitted it is inferred; see the dtype rules
        in ``safenpz._infer`` (integers give ``int64``, any float
        ``float64``, only bools ``bool``, no elements ``int64``).

    Returns
    -------
    RaggedArray

    Raises
    ------
    TypeError
        If a row is not a sequence, or the elements are not numbers.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1, 2, 3], [], [4]])
    >>> r.offsets.tolist(), r.values.tolist(), r.dtype
    ([0, 3, 3, 4], [1, 2, 3, 4], dtype('int64'))
    >>> RaggedArray.from_lists([[1, 2.5]]).dtype
    dtype('float64')
    >>> len(RaggedArray.from_lists([]))
    0
    """
    if dtype is not None:
        check_plain_dtype(np.dtype(dtype), "from_lists")
    if isinstance(rows, np.ndarray) and not (rows.dtype == object and rows.ndim == 1):
        return _from_2d_array(rows, dtype)
    if not isinstance(rows, collections.abc.Sized):
        rows = list(rows)  # type: ignore[arg-type]
    rows_seq: Sequence[Any] = rows  # type: ignore[assignment]
    n = len(rows_seq)
    if n == 0:
        empty = np.empty(0, dtype=np.int64 if dtype is None else dtype)
        return empty, np.zeros(1, dtype=np.int64)
    row_types = set(map(type, rows_seq))
    for row_type in row_types:
        if not _is_row_type(row_type):
            i = next(i for i, r in enumerate(rows_seq) if type(r) is row_type)
            msg = (
                f"from_lists() needs each row to be a sequence of numbers; "
                f"row {i} is a {row_type.__name__}"
            )
            raise TypeError(msg)
    if all(issubclass(t, np.ndarray) for t in row_types):
        return _from_array_rows(rows_seq, dtype)
    lengths = np.fromiter(map(len, rows_seq), dtype=np.int64, count=n)
    offsets = offsets_from_lengths(lengths)
    values = _flat_values(
        lambda: itertools.chain.from_iterable(rows_seq), int(offsets[-1]), dtype
    )
    return values, offsets


def check_plain_dtype(dtype: np.dtype[Any], what: str) -> None:
    """Reject dtypes a RaggedArray cannot hold, for arguments from the caller."""
    if dtype.kind in "OV":
        msg = (
            f"{what}(): a RaggedArray holds plain data, not dtype {dtype} "
            "(object and structured dtypes are not allowed)"
        )
        raise TypeError(msg)


def offsets_from_lengths(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return ``[0, *cumsum(lengths)]`` as a new ``int64`` array."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _from_2d_array(rows: NDArray[Any], dtype: DTypeLike | None) -> Layout:
    if rows.ndim != 2:
        msg = (
            "from_lists() needs a sequence of rows, a 1-D object array or "
            f"a 2-D array; got an array of shape {rows.shape}"
        )
        raise TypeError(msg)
    n, m = rows.shape
    offsets = np.arange(n + 1, dtype=np.int64) * m
    flat = rows.reshape(-1)
    if rows.dtype == object:
        items = flat.tolist()
        values = _flat_values(lambda: iter(items), len(items), dtype)
    elif dtype is None:
        values = flat.copy()
    else:
        values = flat.astype(dtype)
    return values, offsets


def _from_array_rows(rows: Sequence[Any], dtype: DTypeLike | None) -> Layout:
    arrays: list[NDArray[Any]] = list(rows)
    ndims = {a.ndim for a in arrays}
    if ndims != {1}:
        i = next(i for i, a in enumerate(arrays) if a.ndim != 1)
        msg = (
            "from_lists() needs 1-D rows; "
            f"row {i} is an array of shape {arrays[i].shape}"
        )
        raise TypeError(msg)
    lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
    nonempty = [a for a in arrays if len(a)] or arrays
    values = np.concatenate(nonempty)
    if values.dtype == object:
        items = values.tolist()
        values = _flat_values(lambda: iter(items), len(items), dtype)
    elif dtype is not None:
        values = values.astype(dtype)
    return values, offsets_from_lengths(lengths)


def _is_row_type(row_type: type) -> bool:
    if issubclass(row_type, (str, bytes, bytearray)):
        return False
    return issubclass(row_type, (np.ndarray, collections.abc.Sequence))


def _flat_values(
    elements: Callable[[], Iterator[Any]], total: int, dtype: DTypeLike | None
) -> NDArray[Any]:
    """Make the values array from the flattened elements.

    `elements` is called once or twice (a type scan, then the fill), so that
    plain Python ints go through ``np.fromiter`` instead of ``np.asarray``'s
    slower inference.
    """
    if dtype is not None:
        target = np.dtype(dtype)
        if target.kind in "biufc":
            return np.fromiter(elements(), dtype=target, count=total)
        return np.asarray(list(elements()), dtype=target)
    if total == 0:
        return np.empty(0, dtype=np.int64)
    kinds = set(map(type, elements()))
    if kinds <= {int, bool}:
        if kinds == {bool}:
            return np.fromiter(elements(), dtype=np.bool_, count=total)
        try:
            return np.fromiter(elements(), dtype=np.int64, count=total)
        except OverflowError:
            return _beyond_int64(elements, total)
    elif kinds <= {int, bool, float}:
        try:
            return np.fromiter(elements(), dtype=np.float64, count=total)
        except OverflowError as err:
            msg = (
                f"from_lists(): an integer mixed with floats overflows float64 ({err})"
            )
            raise ValueError(msg) from err
    return _inferred(list(elements()), kinds)


def _beyond_int64(
    elements: Callable[[], Iterator[Any]], total: int
) -> NDArray[np.uint64]:
    """Python ints, some outside int64: uint64 if they all fit, else an error.

    (``np.asarray`` would silently round them to float64.)
    """
    low, high = min(elements()), max(elements())
    if low < 0 or high > _UINT64_MAX:
        msg = (
            f"from_lists(): the integers range from {low} to {high}, which fits "
            "neither int64 nor uint64; pass dtype=np.float64 if rounding them "
            "is acceptable"
        )
        raise ValueError(msg)
    return np.fromiter(elements(), dtype=np.uint64, count=total)


def _inferred(items: list[Any], kinds: set[type]) -> NDArray[Any]:
    names = ", ".join(sorted(k.__name__ for k in kinds))
    msg = (
        "from_lists() needs rows of numbers (one NumPy dtype); "
        f"the elements are of type {names}"
    )
    try:
        values = np.asarray(items)
    except (ValueError, TypeError, OverflowError) as err:
        raise TypeError(msg) from err
    if values.ndim != 1 or values.dtype.kind in "OV":
        raise TypeError(msg)
    if values.dtype.kind in "iu" and values.dtype != np.uint64:
        values = values.astype(np.int64)
    return values
