"""Row selection for :class:`~safenpz.RaggedArray`: slices, gathers, masks.

Free functions on the two arrays of the layout (``values``, ``offsets``),
each returning a new ``(values, offsets)`` pair that keeps the layout's
rules (offsets start at 0, never decrease, end at ``len(values)``), so the
caller builds the result with ``validate=False``. Vectorised: one gather
over ``values``, never a loop over rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from safenpz._infer import offsets_from_lengths

__all__ = ["contiguous", "filter_rows", "gather", "row_number", "take"]

_Pair = tuple[NDArray[Any], NDArray[np.int64]]


def row_number(index: int, n: int) -> int:
    """`index` (negative counts from the end) as a row number below `n`.

    Raises
    ------
    IndexError
        If it is out of range.
    """
    i = index + n if index < 0 else index
    if not 0 <= i < n:
        msg = f"row index {index} is out of range for {n} rows"
        raise IndexError(msg)
    return i


def contiguous(
    values: NDArray[Any], offsets: NDArray[np.int64], start: int, stop: int
) -> _Pair:
    """Rows ``start:stop`` as views of `values` and `offsets`."""
    offs = offsets[start : stop + 1]
    base = int(offs[0])
    return values[base : int(offs[-1])], offs - base if base else offs


def gather(
    values: NDArray[Any], offsets: NDArray[np.int64], idx: NDArray[np.int64]
) -> _Pair:
    """Rows at the (in-range, non-negative) `idx`, as new arrays."""
    starts = offsets[idx]
    lengths = offsets[idx + 1] - starts
    new_offsets = offsets_from_lengths(lengths)
    total = int(new_offsets[-1])
    source = np.repeat(starts - new_offsets[:-1], lengths)
    source += np.arange(total, dtype=np.int64)
    return values[source], new_offsets


def take(values: NDArray[Any], offsets: NDArray[np.int64], indices: ArrayLike) -> _Pair:
    """Return the rows at `indices`, in that order (repeats allowed).

    Vectorised: one gather over `values`, no loop over rows. A boolean
    array is treated as a mask (see `filter`).

    Parameters
    ----------
    indices : array_like of int or bool
        Row numbers (negative counts from the end) or a mask.

    Returns
    -------
    RaggedArray
        New arrays; the result never shares memory with `self`.

    Raises
    ------
    IndexError
        If an index is out of range.
    TypeError
        If `indices` are not integers or bools.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1], [2, 3], [4, 5, 6]])
    >>> r.take([2, 0, 2]).to_lists()
    [[4, 5, 6], [1], [4, 5, 6]]
    >>> r.take([-1]).to_lists()
    [[4, 5, 6]]
    """
    idx = np.asarray(indices)
    if idx.dtype == np.bool_:
        return filter_rows(values, offsets, idx)
    if idx.size == 0:
        idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        msg = (
            "row indices must be integers or a boolean mask, "
            f"got an array of dtype {idx.dtype}"
        )
        raise TypeError(msg)
    if idx.ndim != 1:
        msg = f"row indices must be 1-D, got shape {idx.shape}"
        raise ValueError(msg)
    n = len(offsets) - 1
    if idx.size:
        low, high = int(idx.min()), int(idx.max())
        if low < -n or high >= n:
            bad = low if low < -n else high
            msg = f"row index {bad} is out of range for {n} rows"
            raise IndexError(msg)
        idx = idx.astype(np.int64, copy=False)
        if low < 0:
            idx = np.where(idx < 0, idx + n, idx)
    return gather(values, offsets, idx)


def filter_rows(
    values: NDArray[Any], offsets: NDArray[np.int64], mask: ArrayLike
) -> _Pair:
    """Return the rows where `mask` is True, in their order.

    Parameters
    ----------
    mask : array_like of bool
        One entry per row.

    Raises
    ------
    ValueError
        If `mask` does not have one entry per row.
    TypeError
        If `mask` is not boolean.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1], [2, 3], [4, 5, 6]])
    >>> r.filter(r.lengths() < 3).to_lists()
    [[1], [2, 3]]
    """
    keep = np.asarray(mask)
    n = len(offsets) - 1
    if keep.dtype != np.bool_:
        msg = f"a row mask must be boolean, got dtype {keep.dtype}"
        raise TypeError(msg)
    if keep.shape != (n,):
        msg = f"a row mask needs one entry per row: got shape {keep.shape} for {n} rows"
        raise ValueError(msg)
    lengths = np.diff(offsets)
    return values[np.repeat(keep, lengths)], offsets_from_lengths(lengths[keep])
