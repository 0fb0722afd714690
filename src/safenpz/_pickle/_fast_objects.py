"""What the fast path's header interpreter may build, and the checks on it.

The handlers of :mod:`safenpz._pickle._fast_header` build only inert
placeholders: a :class:`Global` is a ``(module, name)`` pair compared with a
fixed set of strings (never imported or looked up); ``REDUCE`` of one of them
(:func:`reduce`) gives bytes (``_codecs.encode``), an :class:`ArrayStub`
(``_reconstruct``) or a :class:`DtypeStub` (``numpy.dtype``); ``BUILD``
(:func:`build`) checks the object dtype's state and the array's state, whose
element list must be the decoded body. Anything else raises
:class:`~safenpz._pickle._fast_tokens.Reject`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from ._fast_body import Rows
from ._fast_tokens import Reject

__all__ = [
    "MARK",
    "MAX_STR",
    "OPAQUE",
    "ArrayStub",
    "DtypeStub",
    "Global",
    "build",
    "global_of",
    "reduce",
    "state_prefix_ok",
]

MAX_STR = 64  # longest string/bytes the header may hold

_RECONSTRUCT = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)
_NDARRAY = ("numpy", "ndarray")
_DTYPE = ("numpy", "dtype")
_ENCODE = ("_codecs", "encode")
_KNOWN_GLOBALS = _RECONSTRUCT | {_NDARRAY, _DTYPE, _ENCODE}
_OBJECT_DTYPE_STATE = (3, "|", None, None, None, -1, -1, 63)

# --------------------------------------------------------------------------
# placeholders


class Global:
    """A global the stream named: two strings, never resolved."""

    __slots__ = ("module", "name")
    module: str
    name: str

    def __init__(self, module: str, name: str) -> None:
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "name", name)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = f"Global is immutable: cannot set {name!r}"
        raise AttributeError(msg)


class ArrayStub:
    """``_reconstruct(ndarray, (0,), b'b')``; ``state`` is set by BUILD."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: tuple[Any, ...] | None = None


class DtypeStub:
    """``numpy.dtype('O8', ...)``; ``built`` once BUILD gave its state."""

    __slots__ = ("built",)

    def __init__(self) -> None:
        self.built = False


class _Opaque:
    """A memo entry the trailer must not read (the element list or a row)."""

    __slots__ = ()


#: The memo entry of the element list and of each row.
OPAQUE = _Opaque()
#: The MARK on the interpreter's stack.
MARK = object()


# --------------------------------------------------------------------------
# checks


def state_prefix_ok(stack: list[Any]) -> bool:
    """``stack`` ends in: array, MARK, 1, shape, object dtype, is_fortran."""
    if len(stack) < 6:
        return False
    arr, mark, version, shape, dtype, fortran = stack[-6:]
    return (
        isinstance(arr, ArrayStub)
        and mark is MARK
        and _is_int(version, 1)
        and type(shape) is tuple
        and isinstance(dtype, DtypeStub)
        and dtype.built
        and type(fortran) is bool
    )


def global_of(module: str, name: str) -> Global:
    """The placeholder of a global the header may name (else refused)."""
    if (module, name) not in _KNOWN_GLOBALS:
        raise Reject
    return Global(module, name)


def _is_int(x: object, value: int) -> bool:
    return type(x) is int and x == value


def reduce(func: object, args: object) -> object:
    """``REDUCE``: `func` must be a known :class:`Global` and `args` a tuple
    of exactly the arguments NumPy's pickles pass it."""
    if not isinstance(func, Global) or type(args) is not tuple:
        raise Reject
    reducer = _REDUCERS.get((func.module, func.name))
    if reducer is None:
        raise Reject
    return reducer(args)


def _reduce_encode(args: tuple[Any, ...]) -> object:
    """Python 3 protocol 2 spells bytes as ``_codecs.encode(str, 'latin1')``."""
    if (
        len(args) == 2
        and type(args[0]) is str
        and len(args[0]) <= MAX_STR
        and args[1] == "latin1"
    ):
        return args[0].encode("latin-1")
    raise Reject


def _reduce_reconstruct(args: tuple[Any, ...]) -> object:
    """``_reconstruct(numpy.ndarray, (0,), b'b')``."""
    if (
        len(args) == 3
        and isinstance(args[0], Global)
        and (args[0].module, args[0].name) == _NDARRAY
        and type(args[1]) is tuple
        and len(args[1]) == 1
        and _is_int(args[1][0], 0)
        and args[2] in (b"b", "b")
    ):
        return ArrayStub()
    raise Reject


def _reduce_dtype(args: tuple[Any, ...]) -> object:
    """``numpy.dtype('O8', False, True)`` (or ``0, 1``: NumPy < 1.19)."""
    if (
        len(args) == 3
        and args[0] in ("O8", "O4", b"O8", b"O4")
        and type(args[1]) in (bool, int)
        and args[1] == 0
        and type(args[2]) in (bool, int)
        and args[2] == 1
    ):
        return DtypeStub()
    raise Reject


_REDUCERS: dict[tuple[str, str], Callable[[tuple[Any, ...]], object]] = {
    _ENCODE: _reduce_encode,
    _DTYPE: _reduce_dtype,
    **dict.fromkeys(_RECONSTRUCT, _reduce_reconstruct),
}


def build(target: object, state: object, rows: Rows | None) -> None:
    """``BUILD``: `target` is the dtype or the array; `rows`, the decoded
    element list (None before the body)."""
    if isinstance(target, DtypeStub):
        _build_dtype(target, state)
    elif isinstance(target, ArrayStub):
        _build_array(target, state, rows)
    else:
        raise Reject


def _build_dtype(target: DtypeStub, state: object) -> None:
    """The object dtype's state ``(3, '|', None, None, None, -1, -1, 63)``."""
    if target.built or type(state) is not tuple or len(state) != 8:
        raise Reject
    if state[1] == b"|":
        state = (state[0], "|", *state[2:])
    if not all(
        type(a) is type(b) and a == b
        for a, b in zip(state, _OBJECT_DTYPE_STATE, strict=True)
    ):
        raise Reject
    target.built = True


def _build_array(target: ArrayStub, state: object, rows: Rows | None) -> None:
    """The array state ``(1, shape, object dtype, is_fortran, element list)``
    whose shape holds exactly the decoded rows."""
    if target.state is not None or rows is None:
        raise Reject
    if type(state) is not tuple or len(state) != 5:
        raise Reject
    version, shape, dtype, fortran, rows_o = state
    if not _is_int(version, 1) or rows_o is not rows:
        raise Reject
    if not (isinstance(dtype, DtypeStub) and dtype.built):
        raise Reject
    if type(fortran) is not bool or type(shape) is not tuple or len(shape) > 64:
        raise Reject
    if not _holds(shape, len(rows.offsets) - 1):
        raise Reject
    target.state = (version, shape, dtype, fortran, rows_o)


def _holds(shape: tuple[Any, ...], nrows: int) -> bool:
    """Whether `shape` (non-negative ints) has exactly `nrows` elements, in
    work bounded by its length, never by its numbers."""
    size = 1
    span = 1  # product of the non-zero dimensions (bounded: empty arrays too)
    for dim in shape:
        if type(dim) is not int or dim < 0:
            return False
        size *= dim
        span *= max(dim, 1)
        if span > max(nrows, 2**32):
            return False
    return size == nrows
