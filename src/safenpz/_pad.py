"""Padding ragged rows into a 2-D array with ``keras.utils.pad_sequences`` parity.

:func:`pad` works on the layout's two arrays (``values`` + ``offsets``) and
returns exactly what Keras 3.15.1 returns for ``pad_sequences(rows, maxlen,
dtype, padding, truncating, value)``: same shape, dtype and values, and the
same error first when several are possible. It is vectorised (no loop over
rows): keep ``min(length, width)`` values of each row, then assign them all
at once through a boolean mask over the output.

Keras works row by row, so its errors depend on the order of the rows; this
module reproduces that order explicitly:

1. ``np.max(lengths)`` (no rows with ``maxlen=None`` fails here), the
   string-`value` check, then ``np.full`` (bad `maxlen`/`dtype`/`value`).
2. Nothing else is checked when every row is empty.
3. An unknown `truncating`, then the conversion of the *first non-empty*
   row (overflow, NaN to int, ...), then an unknown `padding`.
4. Width 0 with ``truncating="pre"``: Keras slices ``s[-0:]`` (the whole
   row) into a 0-wide slot; length-1 rows broadcast away, the first longer
   row fails with NumPy's broadcast error after the rows before it converted.
5. Otherwise the kept values are converted as one array, exactly as
   ``np.asarray(row.tolist(), dtype)`` would convert each row.

The docstring of :func:`pad` is also that of :meth:`safenpz.RaggedArray.pad`,
which passes its own ``values`` and ``offsets``: it is written for the
method's caller and documents the parameters after those two.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["pad"]


def pad(
    values: NDArray[Any],
    offsets: NDArray[np.int64],
    maxlen: int | None = None,
    dtype: DTypeLike | None = "int32",
    padding: Literal["pre", "post"] = "pre",
    truncating: Literal["pre", "post"] = "pre",
    value: Any = 0.0,
) -> NDArray[Any]:
    """Pad and truncate the rows into a 2-D array, as Keras does.

    Returns exactly what ``keras.utils.pad_sequences(self.to_lists(),
    maxlen, dtype, padding, truncating, value)`` (Keras 3.15.1) returns:
    same shape, dtype and values, and the same errors in the same order,
    quirks included (``maxlen=0`` with ``truncating="pre"`` fails on the
    first non-empty row; bad `padding`/`truncating` strings are only
    noticed when some row is non-empty; no rows with ``maxlen=None``
    fails in ``np.max``). Vectorised: no loop over rows.

    Parameters
    ----------
    maxlen : int, optional
        Number of columns; default the longest row.
    dtype : data-type, default "int32"
        dtype of the result.
    padding : {"pre", "post"}, default "pre"
        Pad before or after each row.
    truncating : {"pre", "post"}, default "pre"
        Drop values from the start ("pre") or end ("post") of long rows.
    value : scalar, default 0.0
        The padding value.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(self), maxlen)``.

    Raises
    ------
    ValueError
        For an unknown `padding` or `truncating`, a string `value` with a
        non-string `dtype`, and the other cases Keras rejects.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1], [2, 3], [4, 5, 6]])
    >>> padded = r.pad()
    >>> padded.dtype, padded.tolist()
    (dtype('int32'), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    >>> r.pad(maxlen=2, padding="post", truncating="post", value=-1).tolist()
    [[1, -1], [2, 3], [4, 5]]
    """
    lengths = np.diff(offsets)
    # Keras passes these straight to NumPy; so do we, for the same errors.
    columns_arg: Any = np.max(lengths) if maxlen is None else maxlen
    dtype_arg: Any = dtype
    _check_value_type(value, dtype_arg)
    out: NDArray[Any] = np.full((len(lengths), columns_arg), value, dtype=dtype_arg)
    nonempty = lengths > 0
    if not nonempty.any():
        return out
    if truncating not in ("pre", "post"):
        msg = f'Truncating type "{truncating}" not understood'
        raise ValueError(msg)
    keep, kept = _kept_values(values, offsets, out.shape[1], truncating == "pre")
    keep_stops = np.cumsum(keep)
    first = int(np.argmax(nonempty))
    # Keras converts, then checks padding, then assigns row by row: the
    # first non-empty row decides which error comes first.
    _cast_like_list(
        kept[int(keep_stops[first] - keep[first]) : keep_stops[first]], dtype
    )
    if padding not in ("pre", "post"):
        msg = f'Padding type "{padding}" not understood'
        raise ValueError(msg)
    _fill(out, kept, keep, keep_stops, pad_end=padding == "post", dtype=dtype)
    return out


def _fill(
    out: NDArray[Any],
    kept: NDArray[Any],
    keep: NDArray[np.int64],
    keep_stops: NDArray[np.int64],
    *,
    pad_end: bool,
    dtype: DTypeLike | None,
) -> None:
    """Put the kept values of each row into its line of `out`, in one step."""
    width = int(out.shape[1])
    if width == 0:
        _convert_zero_width(kept, keep, keep_stops, dtype)
        return
    columns = np.arange(width, dtype=np.int64)
    if pad_end:
        where = columns < keep[:, np.newaxis]
    else:
        where = columns >= (width - keep)[:, np.newaxis]
    out[where] = _cast_like_list(kept, dtype)


def _check_value_type(value: Any, dtype: Any) -> None:
    """Keras's check that a string `value` goes with a string or object dtype."""
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        msg = (
            f"`dtype` {dtype} is not compatible with `value`'s type: "
            f"{type(value)}\nYou should set `dtype=object` for variable length "
            "strings."
        )
        raise ValueError(msg)


def _convert_zero_width(
    kept: NDArray[Any],
    keep: NDArray[np.int64],
    keep_stops: NDArray[np.int64],
    dtype: DTypeLike | None,
) -> None:
    """Raise what Keras raises when whole rows meet a 0-wide output.

    With ``truncating="pre"`` Keras keeps the whole row (``s[-0:]``) and
    assigns it to a 0-wide slot: length-1 rows broadcast away, the first
    longer row fails (after the rows before it converted).
    """
    long_rows = np.flatnonzero(keep >= 2)
    if len(long_rows):
        row = int(long_rows[0])
        _cast_like_list(kept[: int(keep_stops[row])], dtype)
        msg = (
            "could not broadcast input array from shape "
            f"({int(keep[row])},) into shape (0,)"
        )
        raise ValueError(msg)
    _cast_like_list(kept, dtype)


def _kept_values(
    values: NDArray[Any], offsets: NDArray[np.int64], width: int, from_end: bool
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """How many values each row keeps in `width` columns, and those values.

    With width 0 and truncating="pre" (`from_end`) Keras slices ``s[-0:]``:
    the whole row.
    """
    lengths = np.diff(offsets)
    whole_rows = width == 0 and from_end
    keep = lengths if whole_rows else np.minimum(lengths, width)
    if bool((keep == lengths).all()):
        return keep, values
    position = np.arange(len(values), dtype=np.int64)
    position -= np.repeat(offsets[:-1], lengths)
    if from_end:
        mask = position >= np.repeat(lengths - keep, lengths)
    else:
        mask = position < np.repeat(keep, lengths)
    return keep, values[mask]


def _cast_like_list(values: NDArray[Any], dtype: DTypeLike | None) -> NDArray[Any]:
    """Return ``np.asarray(values.tolist(), dtype=dtype)``, fast when possible.

    The fast path casts the array directly wherever that gives the same
    numbers (and errors) as going through Python scalars; everything else
    (out-of-range integers, NaN to int, strings, objects, complex) takes the
    slow path so NumPy itself decides.
    """
    if dtype is None or values.size == 0:
        return np.asarray(values.tolist(), dtype=dtype)
    target = np.dtype(dtype)
    source = values.dtype.kind
    if target.kind not in "biuf" or source not in "biuf":
        return np.asarray(values.tolist(), dtype=target)
    if target.kind == "b" or source == "b":
        return values.astype(target)
    if target.kind == "f":
        if source == "f":
            return values.astype(target)
        # NumPy converts a Python int to float64 first, then to the target.
        return values.astype(np.float64).astype(target)
    info = np.iinfo(target)
    whole = values
    if source == "f":
        if not bool(np.isfinite(values).all()):
            return np.asarray(values.tolist(), dtype=target)
        whole = np.trunc(values)
    if int(whole.min()) < info.min or int(whole.max()) > info.max:
        return np.asarray(values.tolist(), dtype=target)
    return values.astype(target)
