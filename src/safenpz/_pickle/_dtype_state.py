"""NumPy dtypes in the decoder: the builder ``BUILD`` finishes.

A pickled dtype is ``numpy.dtype(code, align, copy)`` (see
:mod:`safenpz._pickle._constructors`) followed by ``BUILD`` with a state
tuple. The decoder hands the C unpickler a :class:`_DtypeBuilder` instead of
a dtype; its ``__setstate__`` checks the state and makes the dtype with
:func:`safenpz._pickle._dtype_rules.dtype_from_state` (the layout is
documented there; the static scanner applies the same function to the state
it reads). :func:`resolve_dtype` is how every other constructor takes a
dtype argument: a finished :class:`_DtypeBuilder`, nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._context import Builder, Context
from ._dtype_rules import dtype_from_state as _from_state
from ._rules import Refused, expected_dtype, unbuilt

__all__ = ["_DtypeBuilder", "dtype_from_state", "dtype_of", "resolve_dtype"]


# The class name shows in messages ("expected a dtype, got _DtypeBuilder"),
# so it keeps the name it had before the pickle package existed.
class _DtypeBuilder(Builder):
    """Stands for ``numpy.dtype(code, ...)`` until ``BUILD`` gives its state."""

    __slots__ = ("code",)
    kind = "dtype"

    def __init__(self, ctx: Context, code: str) -> None:
        super().__init__(ctx)
        self.code = code

    def __setstate__(self, state: object) -> None:
        if self._built:
            self.ctx.fail("a dtype was built twice")
        self.value = dtype_from_state(self.ctx, self.code, state)
        self._built = True


def dtype_of(obj: object) -> np.dtype[Any]:
    """The finished dtype `obj` stands for (it must be a finished
    :class:`_DtypeBuilder`); :class:`~safenpz._pickle._rules.Refused` if not."""
    if not isinstance(obj, _DtypeBuilder):
        raise expected_dtype(obj)
    if not obj._built:
        raise unbuilt(obj.kind)
    value = obj.value
    assert isinstance(value, np.dtype)
    return value


def resolve_dtype(ctx: Context, obj: object) -> np.dtype[Any]:
    """:func:`dtype_of`, refused with :class:`~safenpz.FormatError`."""
    try:
        return dtype_of(obj)
    except Refused as err:
        ctx.refused(err)


def dtype_from_state(ctx: Context, code: str, state: object) -> np.dtype[Any]:
    """The dtype ``numpy.dtype(code)`` + ``BUILD(state)`` describes, or
    :class:`~safenpz.FormatError` at the member."""
    try:
        return _from_state(code, state, dtype_of)
    except Refused as err:
        ctx.refused(err)
