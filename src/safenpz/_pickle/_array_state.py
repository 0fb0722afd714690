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

import math
from typing import Any

import numpy as np

from ._context import Builder, Context, as_bytes, check_shape, preview
from ._dtype_state import resolve_dtype

__all__ = ["Checked", "_ArrayBuilder", "array_state", "finish_array"]

#: ``(version, shape, dtype, is_fortran)`` of a checked array state.
Checked = tuple[int, tuple[int, ...], np.dtype[Any], bool]


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
            self.value = finish_array(self.state, self.items)
            self.items = None
            self._built = True
        return super().result()


def array_state(ctx: Context, state: object) -> tuple[Checked, list[Any] | bytes]:
    """Check the state ``(version, shape, dtype, is_fortran, data)`` (or the
    same without ``version``) and return its first four items, checked, and
    the data: the list of items of an object array, else the raw bytes."""
    if isinstance(state, tuple) and len(state) == 4:  # version 0: no version
        state = (0, *state)
    if not (isinstance(state, tuple) and len(state) == 5):
        ctx.fail(f"bad ndarray state of type {type(state).__name__}")
    version, shape, dtype_b, fortran, raw = state
    if type(version) is not int or version not in (0, 1):
        ctx.fail(f"unsupported ndarray pickle version {preview(version)}")
    shape = check_shape(ctx, shape)
    dt = resolve_dtype(ctx, dtype_b)
    if type(fortran) not in (bool, int):  # NumPy reads the flag as a C int
        ctx.fail("ndarray fortran flag must be a bool")
    checked = (version, shape, dt, bool(fortran))
    count = math.prod(shape)
    if dt.hasobject:
        return checked, _object_items(ctx, shape, dt, count, raw)
    return checked, _raw_data(ctx, shape, dt, count, raw)


def _object_items(
    ctx: Context, shape: tuple[int, ...], dt: np.dtype[Any], count: int, raw: object
) -> list[Any]:
    """The data of an object array: a list of exactly `count` items, at most
    ``max_items``; for a structured dtype, each a tuple of one item per
    field."""
    if count > ctx.limits.max_items:
        ctx.exceed(
            f"object array of {count} elements exceeds "
            f"max_items={ctx.limits.max_items}; pass a larger max_items to load it",
            "max_items",
            count,
        )
    if type(raw) is not list or len(raw) != count:
        ctx.fail(
            f"object array of shape {shape} needs a list of {count} items, "
            f"got {type(raw).__name__}"
            + (f" of {len(raw)}" if isinstance(raw, list) else "")
        )
    if dt.names is not None and not all(
        type(item) is tuple and len(item) == len(dt.names) for item in raw
    ):
        ctx.fail(f"a structured array needs a tuple of {len(dt.names)} per item")
    return raw


def _raw_data(
    ctx: Context, shape: tuple[int, ...], dt: np.dtype[Any], count: int, raw: object
) -> bytes:
    """The data of any other array: exactly ``count * itemsize`` bytes. A
    zero-width dtype holds no data, so its `count` is bounded by
    ``max_items``."""
    if dt.itemsize == 0 and count > ctx.limits.max_items:
        ctx.exceed(
            f"array of {count} zero-width elements exceeds "
            f"max_items={ctx.limits.max_items}; pass a larger max_items to load it",
            "max_items",
            count,
        )
    data = as_bytes(ctx, raw, "array data")
    if len(data) != count * dt.itemsize:
        ctx.fail(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {len(data)}"
        )
    return data


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
