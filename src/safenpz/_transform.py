"""New values for an existing ragged layout: map, replace, prepend.

Each function takes the layout's arrays and returns the new ``values`` (and,
for :func:`prepend`, the new ``offsets``); :class:`safenpz.RaggedArray` wraps
the result without re-validating, because the offsets are either unchanged
or valid by construction. Arguments that would give values a RaggedArray
cannot hold (``object`` or structured dtypes, the wrong length, a scalar that
does not survive the cast) are refused here, before anything is allocated
for the result.

The docstrings of :func:`map_values`, :func:`with_values` and :func:`prepend`
are also those of the :class:`safenpz.RaggedArray` methods of the same name,
which pass their own ``values`` (and ``offsets``): they are written for the
method's caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from safenpz._infer import check_plain_dtype

__all__ = ["map_values", "prepend", "with_values"]


def map_values(
    values: NDArray[Any],
    func_or_table: Callable[[NDArray[Any]], ArrayLike] | ArrayLike,
) -> NDArray[Any]:
    """Return a RaggedArray with the same offsets and transformed values.

    Parameters
    ----------
    func_or_table : callable or array_like
        Either a function applied once to the whole `values` array (it
        must return an array of the same length), or a 1-D lookup table
        indexed by the (integer) values: ``table[values]``.

    Raises
    ------
    ValueError
        If the function changes the number of values, or the table is
        not 1-D.
    TypeError
        If a lookup table is used with non-integer values.
    IndexError
        If a value is not a valid index into the table.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[0, 1], [2]])
    >>> r.map_values(lambda v: v + 3).to_lists()
    [[3, 4], [5]]
    >>> r.map_values([10, 20, 30]).to_lists()
    [[10, 20], [30]]
    """
    if callable(func_or_table):
        new = np.asarray(func_or_table(values))
        check_plain_dtype(new.dtype, "map_values")
        if new.shape != values.shape:
            msg = (
                f"map_values: the function returned shape {new.shape}, "
                f"expected {values.shape}; it must map the values "
                "elementwise"
            )
            raise ValueError(msg)
        return new
    table = np.asarray(func_or_table)
    if table.ndim != 1:
        msg = f"map_values: a lookup table must be 1-D, got shape {table.shape}"
        raise ValueError(msg)
    if values.dtype.kind not in "iub":
        msg = (
            "map_values: a lookup table needs integer values, "
            f"not {values.dtype}; pass a function instead"
        )
        raise TypeError(msg)
    if values.size:
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= len(table):
            bad = low if low < 0 else high
            msg = (
                f"map_values: value {bad} is not an index into a lookup "
                f"table of length {len(table)}"
            )
            raise IndexError(msg)
    check_plain_dtype(table.dtype, "map_values")
    mapped: NDArray[Any] = table[values.astype(np.intp, copy=False)]
    return mapped


def with_values(values: NDArray[Any], new_values: ArrayLike) -> NDArray[Any]:
    """Return a RaggedArray with the same offsets and new `values`.

    Raises
    ------
    ValueError
        If `values` does not have the same length as the current values.

    Examples
    --------
    >>> import numpy as np
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1, 2], [3]])
    >>> r.with_values(np.array([7.5, 8.5, 9.5])).to_lists()
    [[7.5, 8.5], [9.5]]
    """
    new = np.asarray(new_values)
    check_plain_dtype(new.dtype, "with_values")
    if new.shape != values.shape:
        msg = (
            f"with_values: got shape {new.shape}, expected "
            f"{values.shape} (one value per existing value)"
        )
        raise ValueError(msg)
    return new


def prepend(
    values: NDArray[Any], offsets: NDArray[np.int64], value: Any
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Return a RaggedArray where every row starts with `value`.

    Empty rows become ``[value]``. The dtype stays the same.

    Raises
    ------
    ValueError
        If `value` cannot be stored in this dtype without changing it
        (for example 1.5 or 300 into ``uint8``).
    TypeError
        If `value` is not a scalar.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> RaggedArray.from_lists([[5, 6], [], [7]]).prepend(1).to_lists()
    [[1, 5, 6], [1], [1, 7]]
    """
    fill = _exact_scalar(value, values.dtype)
    n = len(offsets) - 1
    new_offsets = offsets + np.arange(n + 1, dtype=np.int64)
    out = np.empty(len(values) + n, dtype=values.dtype)
    heads = new_offsets[:-1]
    out[heads] = fill
    rest = np.ones(len(out), dtype=np.bool_)
    rest[heads] = False
    out[rest] = values
    return out, new_offsets


def _exact_scalar(value: Any, dtype: np.dtype[Any]) -> NDArray[Any]:
    """`value` as a 0-d array of `dtype`, or ValueError if that changes it."""
    scalar = np.asarray(value)
    if scalar.ndim != 0:
        msg = f"expected a scalar, got an array of shape {scalar.shape}"
        raise TypeError(msg)
    msg = (
        f"{value!r} cannot be stored as {dtype} without changing it; "
        "convert the RaggedArray first with astype()"
    )
    if scalar.dtype.kind == "c" and dtype.kind != "c":
        if scalar.imag != 0:
            raise ValueError(msg)
        scalar = scalar.real
    try:
        with np.errstate(all="ignore"):
            cast = scalar.astype(dtype)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(msg) from err
    before, after = scalar.item(), cast.item()
    same = before == after or (before != before and after != after)
    if not same:
        raise ValueError(msg)
    return cast
