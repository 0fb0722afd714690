"""Decoding one ``.npy`` image held in memory: numeric data as a view, object
data through safenpz's own decoders.

For a numeric dtype the data must be exactly ``prod(shape) * itemsize`` bytes
(:func:`safenpz._header.check_data_size`); the array is a view of them. A
zero-width dtype (``S0``, ``U0``, ``V0``) holds no data, so its element count
is bounded by ``max_items`` instead. For ``dtype=object`` the data is a pickle
of the whole array: object arrays of integer lists go straight to values +
offsets (:mod:`safenpz._pickle._fastrows`, not even imported for a stream
:mod:`safenpz._pickle._fast_probe` rules out), anything else through the
closed table of constructors (:mod:`safenpz._pickle._decode`); the result must be an
array of the shape and dtype the header promises, and bytes after the pickle's
``STOP`` are an error. With ``ragged=True`` a 1-D object array of numeric rows
becomes a :class:`~safenpz.RaggedArray`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ._exceptions import SafenpzError, Where
from ._header import NPY, Header, check_data_size, check_pickled, parse_header
from ._limits import DEFAULT_LIMITS, Limits
from ._pickle._decode import safe_loads
from ._pickle._fast_probe import never_int_rows
from ._preview import preview

__all__ = ["decode_npy_bytes", "decode_object", "zero_width"]


def _pickle_label(where: Where) -> str:
    """How the pickle layer names what it decodes: the member's escaped name,
    or the file's."""
    if where.member is not None:
        return preview(where.member, quote=False)
    return where.source or "<npy>"


def decode_object(
    body: bytes | memoryview,
    header: Header,
    *,
    where: Where,
    limits: Limits,
    ragged: bool,
    encoding: str,
) -> Any:
    """Decode the pickle `body` of an object ``.npy`` whose `header` is parsed
    into the array it promises (see :func:`decode_npy_bytes`). Given as
    bytes, `body` needs no copy before the pickle layer reads it."""
    limits.check("max_items", header.count, where, what="object array")
    from ._ragged import RaggedArray

    fast = None
    # the fast path's modules load only for a stream it may take
    if header.dtype == np.dtype(object) and not never_int_rows(body):
        from ._pickle._fastrows import decode_int_rows

        fast = decode_int_rows(body)
    # rows shared through the memo are expanded here: beyond what the final
    # walk would count (each row once, as the scanner does) the general
    # decoder keeps them shared and counts them as the walk does
    if (
        fast is not None
        and fast.shape == header.shape
        and header.count + fast.values.size <= limits.max_items
    ):
        if ragged and len(header.shape) == 1:
            return RaggedArray(fast.values, fast.offsets, validate=False)
        return fast.to_object_array()
    obj = safe_loads(
        body,
        member=_pickle_label(where),
        limits=limits,
        encoding=encoding,
    )
    if isinstance(obj, np.ndarray):
        check_pickled(where, header, "ndarray", obj.shape, obj.dtype)
    else:
        check_pickled(where, header, type(obj).__name__)
    if ragged and obj.ndim == 1 and obj.dtype == np.dtype(object):
        return _maybe_ragged(obj, limits, where)
    return obj


def _maybe_ragged(obj: np.ndarray[Any, Any], limits: Limits, where: Where) -> Any:
    """Turn a 1-D object array of numeric rows into a RaggedArray, else keep it."""
    from ._ragged import RaggedArray

    rows = obj.tolist()
    if not all(isinstance(r, list | tuple | np.ndarray) for r in rows):
        return obj
    # shared rows are expanded by the conversion: bound what that can cost
    limits.check("max_items", sum(map(len, rows)), where, what="ragged values")
    try:
        ragged = RaggedArray.from_lists(obj)
    except (SafenpzError, TypeError, ValueError, OverflowError):
        return obj
    if ragged.values.dtype.kind not in "biufc":
        return obj
    return ragged


def decode_npy_bytes(
    buf: bytes | bytearray | memoryview,
    *,
    where: Where = NPY,
    limits: Limits = DEFAULT_LIMITS,
    ragged: bool = False,
    encoding: str = "latin1",
) -> Any:
    """Decode one complete ``.npy`` image held in memory; errors carry
    `where` (the file, or the archive and member)."""
    header = parse_header(buf, where=where, limits=limits)
    view = memoryview(buf)
    body = view[header.data_offset :]
    if header.dtype.hasobject:
        return decode_object(
            body, header, where=where, limits=limits, ragged=ragged, encoding=encoding
        )
    # the data is already in memory (inflated under the limits): only its size
    # must match the header, then the array is a view of it
    check_data_size(where, header, len(body))
    if header.dtype.itemsize == 0:
        return zero_width(header, limits, where)
    arr = np.frombuffer(
        view, dtype=header.dtype, count=header.count, offset=header.data_offset
    )
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr.reshape(header.shape, order="F" if header.fortran_order else "C")


def zero_width(header: Header, limits: Limits, where: Where) -> np.ndarray[Any, Any]:
    """An array of a zero-width dtype (``S0``, ``U0``, ``V0``): empty items.

    It holds no data, so its element count is bounded by ``max_items`` instead
    (a tiny file could otherwise claim billions of them)."""
    limits.check("max_items", header.count, where, what="zero-width array")
    # np.ndarray, not np.empty: np.empty widens S0 to S1 (uninitialised bytes)
    order: Literal["F", "C"] = "F" if header.fortran_order else "C"
    return np.ndarray(header.shape, dtype=header.dtype, order=order)
