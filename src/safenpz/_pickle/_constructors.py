"""The closed table of the decoder: each allowed global, a validating constructor.

:data:`TABLE` maps every ``(module, name)`` a pickle may name (exactly
:data:`safenpz._pickle._globals.SAFE_GLOBALS`, asserted at import) to its
qualified name and a safenpz function. ``find_class`` hands the C unpickler a
:class:`_Constructor` wrapping that function with the decode's
:class:`~safenpz._pickle._context.Context` bound: an immutable object (no
``__dict__``, attributes cannot be set) whose ``__call__`` validates its
arguments and builds the value itself. Nothing here imports a module by name
or looks up a name from the file.

===========================================  =================================
global                                       becomes
===========================================  =================================
``numpy.core.multiarray._reconstruct``       an :class:`_ArrayBuilder` (BUILD
(and the ``_core``/``_multiarray_umath``     gives the state)
spellings)
``numpy.core.multiarray.scalar``             a NumPy scalar of a checked
                                             non-object dtype
``numpy.core.numeric._frombuffer``           an array copied from checked bytes
``numpy.dtype``                              a :class:`_DtypeBuilder`
``numpy.ndarray``                            only an argument of
                                             ``_reconstruct``; never called
``_codecs.encode``                           bytes, from ``(str, 'latin1')``
``builtins.bytes``, ``bytearray``, ``set``,  the builtin, on checked arguments
``frozenset``, ``complex`` (and              (Python 2 spells ``builtins`` as
``__builtin__``)                             ``__builtin__``)
``collections.OrderedDict``                  an empty OrderedDict
===========================================  =================================
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from .._exceptions import FormatError, Where
from ._array_state import _ArrayBuilder
from ._context import Context, Done, as_bytes, as_text, check_shape, preview
from ._dtype_state import _DtypeBuilder, resolve_dtype
from ._globals import SAFE_GLOBALS
from ._opcodes import OPS

__all__ = ["TABLE", "_Constructor"]

# NumPy's C scalar builder (numpy[._]core.multiarray.scalar), taken from a
# scalar's own reduce so no module is named and no deprecation warning fires
_numpy_scalar: Callable[[np.dtype[Any], bytes], Any] = np.float64(0).__reduce__()[0]  # type: ignore[assignment]
_BUILD = OPS["BUILD"].name
_LATIN1 = ("latin1", "latin-1")


# The class name shows in messages ("expected a dtype, got _Constructor"),
# so it keeps the name it had before the pickle package existed.
class _Constructor:
    """An allowed global: immutable, callable, validating.

    Parameters
    ----------
    qualname : str
        ``"module.name"`` as the table spells it.
    fn : callable or None
        The constructor with the decode's context bound; None for a global
        that may only be an argument (``numpy.ndarray``).
    member : str
        The member name, for errors.
    """

    __slots__ = ("_fn", "member", "qualname")
    qualname: str
    member: str
    _fn: Callable[..., Any] | None

    def __init__(
        self, qualname: str, fn: Callable[..., Any] | None, member: str
    ) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "member", member)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = (
            f"the pickle tried to set attribute {name!r} on {self.qualname} "
            f"(opcode {_BUILD}); safenpz constructors are immutable"
        )
        raise FormatError(msg, where=Where(member=self.member))

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            msg = f"{self.qualname} may not be called"
            raise FormatError(msg, where=Where(member=self.member))
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"<safenpz constructor for {self.qualname}>"

    def __reduce__(self) -> NoReturn:
        msg = "internal safenpz object"
        raise TypeError(msg)


# Every constructor takes the per-decode context as its first argument;
# find_class binds it, so concurrent decodes in threads never share state.


def _c_reconstruct(
    ctx: Context, cls: object, shape: object, code: object
) -> _ArrayBuilder:
    """``_reconstruct(numpy.ndarray, (0,), b'b')``: an array to be built."""
    if not (isinstance(cls, _Constructor) and cls.qualname == "numpy.ndarray"):
        ctx.fail("_reconstruct may only build numpy.ndarray (no subclasses)")
    if shape != (0,) or as_bytes(ctx, code, "_reconstruct dtype code") != b"b":
        ctx.fail(f"unexpected _reconstruct arguments {preview(shape)}, {preview(code)}")
    return _ArrayBuilder(ctx)


def _c_dtype(
    ctx: Context, obj: object, align: object = False, copy: object = True
) -> _DtypeBuilder:
    """``numpy.dtype(code, align, copy)``: a dtype to be built."""
    obj = as_text(obj)
    if type(obj) is not str or len(obj) > 16:
        ctx.fail(f"numpy.dtype argument must be a short type code, got {preview(obj)}")
    # NumPy < 1.19 pickled the flags as ints (``dtype('O8', 0, 1)``)
    if type(align) not in (bool, int) or type(copy) not in (bool, int):
        ctx.fail("numpy.dtype flags must be bools or the ints 0 and 1")
    if align not in (0, 1) or copy not in (0, 1):
        ctx.fail("numpy.dtype flags must be bools or the ints 0 and 1")
    return _DtypeBuilder(ctx, obj)


def _c_scalar(ctx: Context, dtype_b: object, raw: object = None) -> Done:
    """``scalar(dtype, data)``: a NumPy scalar of a non-object dtype."""
    # fast path (a Keras history holds thousands of scalars of one dtype): the
    # checks below, for a finished dtype and bytes of its size; anything else
    # takes the long way, which refuses with the messages
    if type(dtype_b) is _DtypeBuilder and type(raw) is bytes and dtype_b._built:
        dt = dtype_b.value
        if len(raw) == dt.itemsize and not dt.hasobject:
            return Done(ctx, _numpy_scalar(dt, raw))
    dt = resolve_dtype(ctx, dtype_b)
    if dt.hasobject:
        ctx.fail("object-dtype NumPy scalars are not supported")
    data = as_bytes(ctx, raw, "scalar data")
    if len(data) != dt.itemsize:
        ctx.fail(f"a {dt} scalar needs {dt.itemsize} bytes, got {len(data)}")
    # NumPy's own scalar builder, on a checked non-object dtype and exactly
    # itemsize bytes (zero-width str/bytes/void scalars included)
    return Done(ctx, _numpy_scalar(dt, data))


def _c_frombuffer(
    ctx: Context, buf: object, dtype_b: object, shape: object, order: object
) -> Done:
    """``_frombuffer(buf, dtype, shape, order)``: an array of checked bytes."""
    data = as_bytes(ctx, buf, "array buffer")
    dt = resolve_dtype(ctx, dtype_b)
    shape = check_shape(ctx, shape)
    if dt.hasobject or order not in ("C", "F"):
        ctx.fail("bad _frombuffer arguments")
    count = math.prod(shape)
    if len(data) != count * dt.itemsize:
        ctx.fail(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dt, count=count).copy()
    return Done(ctx, arr.reshape(shape, order=order))


def _c_encode(ctx: Context, text: object, encoding: object = "utf-8") -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 spells bytes."""
    if type(text) is not str or encoding not in _LATIN1:
        ctx.fail("_codecs.encode is only allowed as (str, 'latin1')")
    return as_bytes(ctx, text, "bytes literal")


def _c_bytes(ctx: Context, *args: object) -> bytes:
    """``bytes()`` or ``bytes(str, 'latin1')``."""
    if args == ():
        return b""
    if len(args) == 2 and args[1] in _LATIN1 and type(args[0]) is str:
        return args[0].encode("latin-1")
    ctx.fail("bytes() is only allowed with no arguments or (str, 'latin1')")


def _c_bytearray(ctx: Context, *args: object) -> bytearray:
    """``bytearray()``, ``bytearray(bytes)`` or ``bytearray(str, 'latin1')``."""
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], bytes):
        return bytearray(args[0])
    if len(args) == 2 and args[1] in _LATIN1 and type(args[0]) is str:
        return bytearray(args[0].encode("latin-1"))
    ctx.fail("bad bytearray() arguments")


def _iterable_arg(
    ctx: Context, args: tuple[object, ...], what: str
) -> list[Any] | tuple[Any, ...]:
    if not args:
        return []
    if len(args) == 1 and type(args[0]) in (list, tuple):
        return args[0]  # type: ignore[return-value]
    ctx.fail(f"{what}() takes a list or tuple")


def _c_set(ctx: Context, *args: object) -> set[Any]:
    """``set()`` or ``set(list or tuple)`` of hashable plain data."""
    try:
        return set(_iterable_arg(ctx, args, "set"))
    except TypeError as err:
        ctx.fail(f"set items must be hashable plain data ({err})")


def _c_frozenset(ctx: Context, *args: object) -> frozenset[Any]:
    """``frozenset()`` or ``frozenset(list or tuple)`` of hashable plain data."""
    try:
        return frozenset(_iterable_arg(ctx, args, "frozenset"))
    except TypeError as err:
        ctx.fail(f"frozenset items must be hashable plain data ({err})")


def _c_complex(ctx: Context, real: object = 0.0, imag: object = 0.0) -> complex:
    """``complex(real, imag)`` of two numbers."""
    if not (isinstance(real, int | float) and isinstance(imag, int | float)):
        ctx.fail("complex() takes two numbers")
    return complex(real, imag)


def _c_ordereddict(ctx: Context, *args: object) -> OrderedDict[Any, Any]:
    """``OrderedDict()``; protocol 2+ pickles an OrderedDict as
    ``OrderedDict()`` + ``SETITEMS``, which fills it through OrderedDict's own
    C ``__setitem__``, so ``np.load`` gives an OrderedDict."""
    if args:
        ctx.fail("OrderedDict() is only allowed without arguments")
    return OrderedDict()


def _table() -> dict[tuple[str, str], tuple[str, Callable[..., Any] | None]]:
    table: dict[tuple[str, str], tuple[str, Callable[..., Any] | None]] = {}
    for mod in (
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core._multiarray_umath",  # NumPy 1.16.0
        "numpy._core._multiarray_umath",
    ):
        table[(mod, "_reconstruct")] = (f"{mod}._reconstruct", _c_reconstruct)
        table[(mod, "scalar")] = (f"{mod}.scalar", _c_scalar)
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(mod, "_frombuffer")] = (f"{mod}._frombuffer", _c_frombuffer)
    table[("numpy", "ndarray")] = ("numpy.ndarray", None)
    table[("numpy", "dtype")] = ("numpy.dtype", _c_dtype)
    table[("_codecs", "encode")] = ("_codecs.encode", _c_encode)
    for mod in ("builtins", "__builtin__"):
        table[(mod, "bytes")] = (f"{mod}.bytes", _c_bytes)
        table[(mod, "bytearray")] = (f"{mod}.bytearray", _c_bytearray)
        table[(mod, "set")] = (f"{mod}.set", _c_set)
        table[(mod, "frozenset")] = (f"{mod}.frozenset", _c_frozenset)
        table[(mod, "complex")] = (f"{mod}.complex", _c_complex)
    table[("collections", "OrderedDict")] = ("collections.OrderedDict", _c_ordereddict)
    return table


#: ``(module, name)`` -> (qualified name, constructor taking the context
#: first; None: never called).
TABLE = _table()
assert set(TABLE) == SAFE_GLOBALS, "the scanner and the decoder disagree"
