"""NumPy arrays from the state ``ndarray.__reduce__`` pickles, checked.

A pickled array is ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,),
b'b')`` followed by ``BUILD`` with a state tuple. The decoder hands the C
unpickler an :class:`_ArrayBuilder` instead; its ``__setstate__`` checks the
state here (:func:`array_state`), and the array itself is made by NumPy's own
``ndarray.__setstate__`` from the checked state (:func:`finish_array`), so
byte order, memory order and structured layouts come out exactly as
:func:`numpy.load` gives them. The state is::

    (version, shape, dtype, is_fortran, data)

with ``version`` 0 or 1 (very old NumPy wrote the four other items without
it), ``shape`` a tuple of ints, ``dtype`` a dtype (see
:mod:`safenpz._pickle._dtype_state`), ``is_fortran`` a bool (or an int) and
``data`` the raw bytes (a latin-1 ``str`` in Python 2 pickles) or, for
dtypes holding objects, a list of ``prod(shape)`` items (tuples of one item
per field for structured dtypes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._context import Builder, Context
from ._dtype_state import dtype_of
from ._rules import (
    Checked,
    Refused,
    array_head,
    as_bytes,
    data_size,
    object_items,
    structured_rows,
    zero_width,
)

__all__ = ["Checked", "_ArrayBuilder", "array_state", "finish_array"]


# The class name shows in messages ("expected a dtype, got _ArrayBuilder"),
# so it keeps the name it had before the pickle package existed.
class _ArrayBuilder(Builder):
    """Receives an ndarray's BUILD state and checks it.

    Object arrays keep their elements in ``items`` until the final walk has
    replaced nested builders by real values."""

    __slots__ = ("items", "state")
    kind = "array"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.state: Checked | None = None
        self.items: list[Any] | None = None

    def __setstate__(self, state: object) -> None:
        if self._built or self.state is not None:
            self.ctx.fail("an array was built twice")
        self.state, raw = array_state(self.ctx, state)
        if isinstance(raw, list):
            self.items = raw  # finished by result(), after the walk
        else:
            self.value = finish_array(self.state, raw)
            self._built = True

    def result(self) -> Any:
        """The array; an object array is made from its walked items here."""
        if not self._built and self.state is not None and self.items is not None:
            dt = self.state[2]
            if dt.names is not None:
                try:
                    structured_rows(dt, self.items)
                except Refused as err:
                    self.ctx.refused(err)
            self.value = finish_array(self.state, self.items)
            self.items = None
            self._built = True
        return super().result()


def array_state(ctx: Context, state: object) -> tuple[Checked, list[Any] | bytes]:
    """Check the state ``(version, shape, dtype, is_fortran, data)`` (or the
    same without ``version``) with the shared checks
    (:func:`safenpz._pickle._rules.array_head`, ``object_items``,
    ``raw_data``) and return its first four items, checked, and the data: the
    list of items of an object array, else the raw bytes."""
    max_items = ctx.limits.max_items
    try:
        checked, raw = array_head(state, dtype_of)
        if checked[2].hasobject:
            items = raw if isinstance(raw, list) else []
            object_items(
                checked,
                max_items,
                raw,
                len(items) if isinstance(raw, list) else None,
                lambda k: all(type(item) is tuple and len(item) == k for item in items),
            )
            return checked, items
        zero_width(checked, max_items)
        data = as_bytes(raw, "array data")
        data_size(checked, len(data))
        return checked, data
    except Refused as err:
        ctx.refused(err)


def finish_array(checked: Checked, data: list[Any] | bytes) -> np.ndarray[Any, Any]:
    """Build the array with NumPy's own ``__setstate__`` from a checked state.

    Only ever called with a state :func:`array_state` accepted and, for
    object items, with plain data the final walk produced: NumPy then applies
    its own rules (a non-native byte order becomes native for simple dtypes,
    Fortran order, structured items), so the result is what ``np.load`` gives.
    """
    arr: np.ndarray[Any, Any] = np.ndarray((0,), dtype=np.int8)
    arr.__setstate__((*checked, data))  # type: ignore[arg-type]
    return arr
