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

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from .._exceptions import FormatError, Where
from ._array_state import _ArrayBuilder
from ._context import BARE_SCALARS, Context, Done
from ._dtype_state import _DtypeBuilder, dtype_of, resolve_dtype
from ._globals import ROLES, SAFE_GLOBALS
from ._opcodes import OPS
from ._rules import (
    Refused,
    as_bytes,
    bytearray_args,
    bytes_args,
    check_arity,
    check_shape,
    complex_value,
    dtype_args,
    encode_args,
    frombuffer_check,
    iterable_arg,
    ordereddict_args,
    reconstruct_args,
    scalar_dtype,
    scalar_size,
)

__all__ = ["FAST", "TABLE", "_Constructor", "_ScannedScalar"]

# NumPy's C scalar builder (numpy[._]core.multiarray.scalar), taken from a
# scalar's own reduce so no module is named and no deprecation warning fires
_numpy_scalar: Callable[[np.dtype[Any], bytes], Any] = np.float64(0).__reduce__()[0]  # type: ignore[assignment]
_BUILD = OPS["BUILD"].name
_NO_DTYPE = np.dtype("V0")


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
    role : str, optional
        What it builds (:data:`safenpz._pickle._globals.ROLES`): how many
        arguments it takes (:data:`safenpz._pickle._rules.ARITY`).
    fast : callable, optional
        Tried first with the same arguments (:data:`FAST`, the context
        bound): the value, when the arguments are the common case it checks
        completely, else None (then `fn` checks them, and refuses them with
        its messages).
    """

    __slots__ = ("_fast", "_fn", "member", "qualname", "role")
    qualname: str
    member: str
    role: str | None
    _fn: Callable[..., Any] | None
    _fast: Callable[..., Any] | None

    def __init__(
        self,
        qualname: str,
        fn: Callable[..., Any] | None,
        member: str,
        role: str | None = None,
        fast: Callable[..., Any] | None = None,
    ) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "member", member)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "_fast", fast)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = (
            f"the pickle tried to set attribute {name!r} on {self.qualname} "
            f"(opcode {_BUILD}); safenpz constructors are immutable"
        )
        raise FormatError(msg, where=Where(member=self.member))

    def __call__(self, *args: Any) -> Any:
        if self._fast is not None:
            out = self._fast(*args)
            if out is not None:
                return out
        if self._fn is None:
            msg = f"{self.qualname} may not be called"
            raise FormatError(msg, where=Where(member=self.member))
        if self.role is not None:
            try:
                check_arity(self.role, self.qualname, len(args))
            except Refused as err:
                raise FormatError(str(err), where=Where(member=self.member)) from None
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"<safenpz constructor for {self.qualname}>"

    def __reduce__(self) -> NoReturn:
        msg = "internal safenpz object"
        raise TypeError(msg)


class _ScannedScalar(_Constructor):
    """The ``scalar`` constructor once a strict scan of the stream passed
    (``Context.scanned``): numeric scalars
    (:data:`~safenpz._pickle._context.BARE_SCALARS`) are handed back as they
    are, without a :class:`Done` around them, in one Python call each.

    The wrapper's only other work is refusing ``BUILD`` on the scalar, a call
    of it, or its use as a constructor's argument where a scalar is refused,
    and the scan refuses each of those first, with the decoder's message
    (``tests/internal/test_unpickle.py``: the decoder alone). The final walk
    would only unwrap it: it keeps these types as leaves, in keys and set
    items too (``tests/internal/test_bare_scalars.py``). Anything but the
    common case (:func:`_fast_scalar`'s) takes the long way; other scalars
    stay wrapped.

    Parameters
    ----------
    qualname, fn, member, role
        As :class:`_Constructor`'s.
    ctx : Context
        The decode's context.
    """

    __slots__ = ("_ctx", "_last")
    _ctx: Context
    _last: tuple[int, np.dtype[Any], int]

    def __init__(
        self,
        qualname: str,
        fn: Callable[..., Any],
        member: str,
        role: str,
        ctx: Context,
    ) -> None:
        super().__init__(qualname, fn, member, role)
        object.__setattr__(self, "_ctx", ctx)
        # the id of the dtype builder of the last bare scalar, its dtype and
        # size: an id, not a reference (the end of the decode proves by
        # reference counts that no container holds a builder, see _finish);
        # the builder lives on in ctx.made while the unpickler runs
        object.__setattr__(self, "_last", (0, _NO_DTYPE, -1))

    def __call__(self, *args: Any) -> Any:
        if len(args) == 2:
            dtype_b, raw = args
            last = self._last
            # a dtype builder, once built, keeps its dtype (BUILD twice is refused)
            if id(dtype_b) == last[0] and type(raw) is bytes and len(raw) == last[2]:
                return _numpy_scalar(last[1], raw)
            if type(dtype_b) is _DtypeBuilder and type(raw) is bytes and dtype_b._built:
                dt = dtype_b.value
                if len(raw) == dt.itemsize and not dt.hasobject:
                    value = _numpy_scalar(dt, raw)
                    if type(value) not in BARE_SCALARS:
                        return Done(self._ctx, value)
                    object.__setattr__(self, "_last", (id(dtype_b), dt, dt.itemsize))
                    return value
        return _Constructor.__call__(self, *args)


# Every constructor takes the per-decode context as its first argument;
# find_class binds it, so concurrent decodes in threads never share state.
# The checks are the shared ones (:mod:`safenpz._pickle._rules`): a refusal
# becomes the decoder's error through ``ctx.refused``.


def _c_reconstruct(
    ctx: Context, cls: object, shape: object, code: object
) -> _ArrayBuilder:
    """``_reconstruct(numpy.ndarray, (0,), b'b')``: an array to be built."""
    is_ndarray = isinstance(cls, _Constructor) and cls.qualname == "numpy.ndarray"
    try:
        reconstruct_args(is_ndarray, shape, code)
    except Refused as err:
        ctx.refused(err)
    return _ArrayBuilder(ctx)


def _c_dtype(
    ctx: Context, obj: object, align: object = False, copy: object = True
) -> _DtypeBuilder:
    """``numpy.dtype(code, align, copy)``: a dtype to be built."""
    try:
        code = dtype_args(obj, align, copy)
    except Refused as err:
        ctx.refused(err)
    return _DtypeBuilder(ctx, code)


def _fast_scalar(ctx: Context, *args: object) -> Done | None:
    """``scalar(dtype, data)`` in the common case (a Keras history holds
    thousands of scalars of one dtype): the checks of :func:`_c_scalar`, for
    a finished dtype and bytes of its size; None for anything else (the long
    way, which refuses with the messages)."""
    if len(args) == 2:
        dtype_b, raw = args
        if type(dtype_b) is _DtypeBuilder and type(raw) is bytes and dtype_b._built:
            dt = dtype_b.value
            if len(raw) == dt.itemsize and not dt.hasobject:
                return Done(ctx, _numpy_scalar(dt, raw))
    return None


def _c_scalar(ctx: Context, dtype_b: object, raw: object = None) -> Done:
    """``scalar(dtype, data)``: a NumPy scalar of a non-object dtype."""
    dt = resolve_dtype(ctx, dtype_b)
    try:
        scalar_dtype(dt)
        data = as_bytes(raw, "scalar data")
        scalar_size(dt, len(data))
    except Refused as err:
        ctx.refused(err)
    # NumPy's own scalar builder, on a checked non-object dtype and exactly
    # itemsize bytes (zero-width str/bytes/void scalars included)
    return Done(ctx, _numpy_scalar(dt, data))


def _c_frombuffer(
    ctx: Context, buf: object, dtype_b: object, shape: object, order: object
) -> Done:
    """``_frombuffer(buf, dtype, shape, order)``: an array of checked bytes."""
    try:
        data = as_bytes(buf, "array buffer")
        dt = dtype_of(dtype_b)
        shape = check_shape(shape)
        count = frombuffer_check(dt, shape, order, len(data))
    except Refused as err:
        ctx.refused(err)
    arr = np.frombuffer(data, dtype=dt, count=count).copy()
    return Done(ctx, arr.reshape(shape, order=order))  # type: ignore[call-overload]


def _c_encode(ctx: Context, text: object, encoding: object = "utf-8") -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 spells bytes."""
    try:
        encode_args(text, encoding)
        return as_bytes(text, "bytes literal")
    except Refused as err:
        ctx.refused(err)


def _c_bytes(ctx: Context, *args: object) -> bytes:
    """``bytes()`` or ``bytes(str, 'latin1')``."""
    try:
        bytes_args(args)
        return as_bytes(args[0], "bytes() text") if args else b""
    except Refused as err:
        ctx.refused(err)


def _c_bytearray(ctx: Context, *args: object) -> bytearray:
    """``bytearray()``, ``bytearray(bytes)`` or ``bytearray(str, 'latin1')``."""
    try:
        bytearray_args(args)
        return bytearray(as_bytes(args[0], "bytearray() text") if args else b"")
    except Refused as err:
        ctx.refused(err)


def _iterable_arg(
    ctx: Context, args: tuple[object, ...], what: str
) -> list[Any] | tuple[Any, ...]:
    try:
        iterable_arg(args, what)
    except Refused as err:
        ctx.refused(err)
    return args[0] if args else []  # type: ignore[return-value]


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
    try:
        return complex_value(real, imag)
    except Refused as err:
        ctx.refused(err)


def _c_ordereddict(ctx: Context, *args: object) -> OrderedDict[Any, Any]:
    """``OrderedDict()``; protocol 2+ pickles an OrderedDict as
    ``OrderedDict()`` + ``SETITEMS``, which fills it through OrderedDict's own
    C ``__setitem__``, so ``np.load`` gives an OrderedDict."""
    try:
        ordereddict_args(args)
    except Refused as err:
        ctx.refused(err)
    return OrderedDict()


#: The constructor of each role (:data:`safenpz._pickle._globals.ROLES`);
#: ``numpy.ndarray`` is only ever an argument of ``_reconstruct``.
_BY_ROLE: dict[str, Callable[..., Any] | None] = {
    "reconstruct": _c_reconstruct,
    "scalar": _c_scalar,
    "frombuffer": _c_frombuffer,
    "ndarray": None,
    "dtype": _c_dtype,
    "encode": _c_encode,
    "bytes": _c_bytes,
    "bytearray": _c_bytearray,
    "set": _c_set,
    "frozenset": _c_frozenset,
    "complex": _c_complex,
    "odict": _c_ordereddict,
}


#: The constructors' common cases, tried first (see :class:`_Constructor`).
FAST: dict[str, Callable[..., Any]] = {"scalar": _fast_scalar}


def _table() -> dict[tuple[str, str], tuple[str, Callable[..., Any] | None]]:
    return {
        (mod, name): (f"{mod}.{name}", _BY_ROLE[role])
        for (mod, name), role in ROLES.items()
    }


#: ``(module, name)`` -> (qualified name, constructor taking the context
#: first; None: never called).
TABLE = _table()
assert set(TABLE) == SAFE_GLOBALS, "the scanner and the decoder disagree"
