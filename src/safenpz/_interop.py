"""Arrow and PyTorch bridges for the ragged layout (``values`` + ``offsets``).

The layout is already Arrow's ``large_list`` without a validity bitmap and the
``values`` + ``offsets`` pair of a ``torch.jagged`` nested tensor, so each
bridge is a handful of buffer hand-overs, sharing memory where the other
library allows it. pyarrow and torch are optional extras: they are imported
only when a bridge is called, and a missing one raises ``ImportError`` naming
the extra to install. pyarrow errors are translated to ``TypeError`` here.

The docstrings of :func:`to_arrow`, :func:`from_arrow` and :func:`to_torch`
are also those of the :class:`safenpz.RaggedArray` methods of the same name,
which pass their own ``values`` and ``offsets`` (``from_arrow`` returns the
two arrays, and the classmethod builds the validated RaggedArray): they are
written for the method's caller.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safenpz import _pad

__all__ = ["from_arrow", "to_arrow", "to_torch"]

_ARROW_INT32_MAX = int(np.iinfo(np.int32).max)
_PYARROW_HINT = "pip install 'safenpz[arrow]'"
_TORCH_HINT = "pip install 'safenpz[torch]'"


def to_torch(
    values: NDArray[Any], offsets: NDArray[np.int64], layout: str, **pad_options: Any
) -> Any:
    """Return the rows as a PyTorch tensor.

    Parameters
    ----------
    layout : {"jagged", "padded"}
        ``"jagged"``: a nested tensor of ``torch.jagged`` layout built from
        values + offsets (the values are shared with NumPy when they are
        writable; the small offsets array is copied). ``"padded"``: the
        2-D tensor of :meth:`pad` (its keyword arguments are accepted).
    **pad_options
        For ``layout="padded"``: ``maxlen``, ``dtype``, ``padding``,
        ``truncating``, ``value``, as for :meth:`pad`.

    Raises
    ------
    ImportError
        If torch is not installed (``pip install 'safenpz[torch]'``;
        pick the CPU or CUDA wheel you want first).
    ValueError
        Unknown `layout`, or pad options with the jagged layout.

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> r = RaggedArray.from_lists([[1, 2], [], [3]])
    >>> [t.tolist() for t in r.to_torch().unbind()]  # doctest: +SKIP
    [[1, 2], [], [3]]
    >>> r.to_torch(layout="padded", maxlen=2).tolist()  # doctest: +SKIP
    [[1, 2], [0, 0], [0, 3]]
    """
    if layout not in ("jagged", "padded"):
        msg = f"layout must be 'jagged' or 'padded', not {layout!r}"
        raise ValueError(msg)
    if layout == "jagged" and pad_options:
        msg = f"pad options {sorted(pad_options)} need layout='padded'"
        raise ValueError(msg)
    torch = _import_optional("torch", "to_torch()", _TORCH_HINT)
    if layout == "padded":
        return torch.from_numpy(_pad.pad(values, offsets, **pad_options))
    if not (values.flags.writeable and values.flags.c_contiguous):
        values = values.copy()  # torch only shares writable, contiguous memory
    jagged_offsets = torch.from_numpy(np.array(offsets, dtype=np.int64))
    return torch.nested.nested_tensor_from_jagged(
        torch.from_numpy(values), jagged_offsets
    )


def to_arrow(
    values: NDArray[Any], offsets: NDArray[np.int64], *, large: bool | None
) -> Any:
    """Return a ``pyarrow.ListArray`` (or ``LargeListArray``) of the rows.

    The values buffer is shared with NumPy where Arrow allows it
    (numeric dtypes, contiguous values); ``list`` offsets are a small
    ``int32`` copy, ``large_list`` offsets are shared.

    Parameters
    ----------
    large : bool, optional
        ``True`` for ``large_list`` (int64 offsets), ``False`` for
        ``list`` (int32 offsets). Default: ``list`` when the offsets fit
        in int32, else ``large_list``.

    Raises
    ------
    ImportError
        If pyarrow is not installed.
    ValueError
        If ``large=False`` but there are more than 2**31 - 1 values.
    TypeError
        If Arrow has no type for the values' dtype (e.g. complex).

    Examples
    --------
    >>> from safenpz import RaggedArray
    >>> arr = RaggedArray.from_lists([[1, 2], [3]]).to_arrow()
    >>> arr.type
    ListType(list<item: int64>)
    >>> arr.to_pylist()
    [[1, 2], [3]]
    """
    pa = _import_pyarrow("to_arrow()")
    total = int(offsets[-1])
    if large is None:
        large = total > _ARROW_INT32_MAX
    elif not large and total > _ARROW_INT32_MAX:
        msg = (
            f"{total} values do not fit Arrow's int32 list offsets; "
            "use to_arrow(large=True)"
        )
        raise ValueError(msg)
    try:
        arrow_values = pa.array(np.ascontiguousarray(values))
        if large:
            return pa.LargeListArray.from_arrays(pa.array(offsets), arrow_values)
        small_offsets = pa.array(offsets.astype(np.int32))
        return pa.ListArray.from_arrays(small_offsets, arrow_values)
    except pa.ArrowException as err:
        msg = f"cannot convert values of dtype {values.dtype} to Arrow: {err}"
        raise TypeError(msg) from err


def from_arrow(array: Any) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Build a RaggedArray from a pyarrow ``list``/``large_list`` array.

    Accepts ``pyarrow.Array`` and ``pyarrow.ChunkedArray`` (chunks are
    combined), including sliced arrays. Numeric values are shared, not
    copied, where Arrow allows it (then `values` is read-only).

    Raises
    ------
    ImportError
        If pyarrow is not installed.
    TypeError
        If `array` is not a list array of a NumPy-compatible type.
    ValueError
        If the array contains nulls (rows or values).

    Examples
    --------
    >>> import pyarrow as pa
    >>> from safenpz import RaggedArray
    >>> RaggedArray.from_arrow(pa.array([[1, 2], [], [3]])).to_lists()
    [[1, 2], [], [3]]
    """
    pa = _import_pyarrow("from_arrow()")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not isinstance(array, pa.Array):
        msg = f"from_arrow() needs a pyarrow array, got {type(array).__name__}"
        raise TypeError(msg)
    arrow_type = array.type
    if not (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)):
        msg = f"from_arrow() needs a list or large_list array, got {arrow_type}"
        raise TypeError(msg)
    if array.null_count:
        msg = (
            f"the Arrow array has {array.null_count} null rows and a "
            "RaggedArray has none; replace them first, e.g. with "
            "pyarrow.compute.fill_null(array, [])"
        )
        raise ValueError(msg)
    raw_offsets = array.offsets.to_numpy()
    if len(raw_offsets) == 0:
        raw_offsets = np.zeros(1, dtype=np.int64)
    base, end = int(raw_offsets[0]), int(raw_offsets[-1])
    values = _child_values(pa, array.values.slice(base, end - base), arrow_type)
    offsets = raw_offsets.astype(np.int64, copy=False)
    if base:
        offsets = offsets - base
    return values, offsets


def _child_values(pa: Any, child: Any, arrow_type: Any) -> NDArray[Any]:
    """The list values as a NumPy array (shared where Arrow allows it)."""
    if child.null_count:
        msg = (
            f"the Arrow list values contain {child.null_count} nulls and a "
            "RaggedArray has none; fill them first with "
            "pyarrow.compute.fill_null"
        )
        raise ValueError(msg)
    try:
        values: NDArray[Any] = child.to_numpy(zero_copy_only=False)
    except (pa.ArrowException, TypeError, ValueError) as err:
        msg = f"list values of type {arrow_type.value_type} have no NumPy dtype"
        raise TypeError(msg) from err
    if values.dtype == object:
        msg = f"list values of type {arrow_type.value_type} have no numeric NumPy dtype"
        raise TypeError(msg)
    return values


def _import_optional(module: str, what: str, hint: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        msg = f"{what} needs {module}: {hint}"
        raise ImportError(msg) from err


def _import_pyarrow(what: str) -> Any:
    return _import_optional("pyarrow", what, _PYARROW_HINT)
