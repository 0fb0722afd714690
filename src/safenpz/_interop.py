"""Arrow and PyTorch bridges for the ragged layout (``values`` + ``offsets``).

The layout is already Arrow's ``large_list`` without a validity bitmap and the
``values`` + ``offsets`` pair of a ``torch.jagged`` nested tensor, so each
bridge is a handful of buffer hand-overs, sharing memory where the other
library allows it. pyarrow and torch are optional extras: they are imported
only when a bridge is called, and a missing one raises ``ImportError`` naming
the extra to install. pyarrow errors are translated to ``TypeError`` here.
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
    """Return the rows as a jagged nested tensor or a padded 2-D tensor.

    The implementation of :meth:`safenpz.RaggedArray.to_torch`, which
    documents the parameters.
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

    The implementation of :meth:`safenpz.RaggedArray.to_arrow`, which
    documents the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> to_arrow(np.array([1, 2, 3]), np.array([0, 2, 3]), large=True).type
    LargeListType(large_list<item: int64>)
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
    """Return ``(values, offsets)`` of a pyarrow ``list``/``large_list`` array.

    The implementation of :meth:`safenpz.RaggedArray.from_arrow`; the caller
    validates the result by building the RaggedArray.
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
