"""Safe decoding of pickled data: a closed table instead of ``find_class``.

:func:`safe_loads` decodes a pickle stream into plain data without ever
calling, importing or even looking up a callable the stream names:

1. :func:`safenpz._pickle._scanner.scan_pickle` checks the whole stream statically
   first (forbidden opcodes, globals outside the table, bounds, limits), so the
   decoder never starts on a stream that names anything else; for the common
   streams the compiled pre-check :func:`safenpz._pickle._prescan.proven`
   proves at C speed that the scan would pass, and the scan is skipped.
2. The stream is then run by CPython's C unpickler (for speed) whose
   ``find_class`` is replaced by a lookup in the closed table
   (:data:`safenpz._pickle._constructors.TABLE`), mapping each allowed
   ``(module, name)`` to a safenpz *constructor*: an immutable object (no
   ``__dict__``, attributes cannot be set) whose ``__call__`` validates its
   arguments and builds the value itself. ``persistent_load`` always refuses.
3. Arrays, dtypes and NumPy scalars are produced as *builders* (safenpz objects
   whose ``__setstate__`` validates the state ``BUILD`` hands them:
   :mod:`safenpz._pickle._array_state`, :mod:`safenpz._pickle._dtype_state`)
   and are swapped for the real values by a final walk
   (:mod:`safenpz._pickle._walk`), which also checks that the result is plain
   data (no constructor leaked as a value), bounds the nesting depth and the
   number of items, and refuses self-referencing containers.
   :mod:`safenpz._pickle._finish` gives the walk's result without visiting
   what the scan and the decoder already prove, and in bulk where it can.

Nothing in this package imports a module by name or uses ``getattr`` on a name
from the file. Every error carries the member as ``.member``
(:class:`~safenpz.Where`).
"""

from __future__ import annotations

import codecs
import functools
import pickle
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from .._exceptions import FormatError, LimitError, SafenpzError, UnsafeFileError
from .._gc import no_gc
from .._limits import DEFAULT_LIMITS, Limits
from ._constructors import FAST, TABLE, _Constructor, _ScannedScalar
from ._context import Context
from ._finish import finish
from ._globals import ROLES
from ._prescan import proven
from ._report import PickleReport
from ._scanner import scan_pickle

__all__ = ["NUMPY_CONSTRUCTORS", "decode_proven", "safe_loads"]

_ENCODINGS = ("latin1", "bytes", "ASCII")


class _Input:
    """The whole stream, as the file the C unpickler reads.

    ``peek`` hands it everything left at once, as a view: it then reads from
    memory as :func:`pickle.loads` does (no ``read`` per opcode, no copy in
    a buffered reader). ``read``, ``readinto`` and ``readline`` move past
    what it consumed, or give it the end of a truncated stream, as a file at
    its end would.
    """

    __slots__ = ("_data", "_pos", "_view")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._view = memoryview(data)
        self._pos = 0

    def peek(self, size: int = 0) -> memoryview:
        return self._view[self._pos :]

    def read(self, size: int = -1) -> memoryview:
        start = self._pos
        end = len(self._data) if size < 0 else min(len(self._data), start + size)
        self._pos = end
        return self._view[start:end]

    def readinto(self, buf: Any) -> int:
        chunk = self.read(len(buf))
        memoryview(buf).cast("B")[: len(chunk)] = chunk
        return len(chunk)

    def readline(self, size: int = -1) -> memoryview:
        end = self._data.find(b"\n", self._pos)
        return self.read(-1 if end < 0 else end + 1 - self._pos)


class _TableUnpickler(pickle.Unpickler):
    """The C unpickler, resolving globals through the closed table only."""

    def __init__(self, file: _Input, ctx: Context) -> None:
        # the C unpickler takes any buffer from read() and peek(), not only
        # the bytes typeshed's file protocol names
        source: Any = file
        super().__init__(
            source, fix_imports=False, encoding=ctx.encoding, errors="strict"
        )
        self._ctx = ctx
        self._bound: dict[tuple[str, str], _Constructor] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._bound:
            return self._bound[key]
        try:
            qualname, fn = TABLE[key]
        except (KeyError, TypeError):
            msg = (
                f"global {module}.{name} is not in safenpz's table of allowed "
                "constructors"
            )
            raise UnsafeFileError(
                msg, where=self._ctx.where, global_name=f"{module}.{name}"
            ) from None
        member, role = self._ctx.member, ROLES[key]
        if fn is None:  # numpy.ndarray: only ever an argument of _reconstruct
            ctor = _Constructor(qualname, None, member, role)
        elif role == "scalar" and self._ctx.scanned:
            bound = functools.partial(fn, self._ctx)
            ctor = _ScannedScalar(qualname, bound, member, role, self._ctx)
        else:
            bound = functools.partial(fn, self._ctx)
            fast = FAST.get(role)
            if fast is not None:
                fast = functools.partial(fast, self._ctx)
            ctor = _Constructor(qualname, bound, member, role, fast)
        self._bound[key] = ctor
        return ctor

    def constructors(self) -> dict[tuple[str, str], _Constructor]:
        """The constructors handed out, by ``(module, name)``."""
        return self._bound

    def persistent_load(self, pid: Any) -> NoReturn:
        msg = "persistent ids are never resolved"
        raise UnsafeFileError(msg, where=self._ctx.where)


#: NumPy's own constructors under the names the compiled pre-check admits
#: (a name it does not admit is refused here too)
#: (:mod:`safenpz._pickle._prescan`): what ``np.load``'s unpickler calls for
#: the same stream, taken from the running NumPy (never looked up by name).
_RECONSTRUCT: Callable[..., Any] = np.empty(0).__reduce__()[0]  # type: ignore[assignment]
_SCALAR: Callable[..., Any] = np.float64(0).__reduce__()[0]  # type: ignore[assignment]
_FROMBUFFER: Callable[..., Any] = np.empty(1).__reduce_ex__(5)[0]  # type: ignore[assignment]
NUMPY_CONSTRUCTORS: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): codecs.encode,
}


class _ProvenUnpickler(pickle.Unpickler):
    """The C unpickler for a stream the pre-check proved: globals resolve to
    :data:`NUMPY_CONSTRUCTORS` (the only ones such a stream names)."""

    def __init__(self, file: _Input, ctx: Context) -> None:
        source: Any = file
        super().__init__(
            source, fix_imports=False, encoding=ctx.encoding, errors="strict"
        )
        self._ctx = ctx

    def find_class(self, module: str, name: str) -> Any:
        try:
            return NUMPY_CONSTRUCTORS[module, name]
        except (KeyError, TypeError):  # never, after a proof
            msg = f"global {module}.{name} is not among those the pre-check admits"
            raise UnsafeFileError(
                msg, where=self._ctx.where, global_name=f"{module}.{name}"
            ) from None

    def persistent_load(self, pid: Any) -> NoReturn:
        msg = "persistent ids are never resolved"
        raise UnsafeFileError(msg, where=self._ctx.where)


def decode_proven(data: bytes, ctx: Context) -> Any:
    """Decode a stream :func:`~safenpz._pickle._prescan.proven` proved.

    The proof covers everything the scan, the validating constructors and the
    final walk establish (only NumPy's arrays, dtypes and scalars in their
    canonical forms, with plain data; no sharing of containers, no cycles;
    within the limits), so the unpickler runs with NumPy's own constructors,
    as ``np.load`` does, and its result is final: what ``np.load`` returns.
    The test suite decodes every proven stream both ways and compares.
    """
    return _ProvenUnpickler(_Input(data), ctx).load()


def safe_loads(
    data: bytes | bytearray | memoryview,
    *,
    member: str = "<pickle>",
    limits: Limits = DEFAULT_LIMITS,
    encoding: str = "latin1",
) -> Any:
    """Decode a pickle stream into plain data, never running code from it.

    Parameters
    ----------
    data : bytes-like
        The whole pickle stream.
    member : str
        Name used in error messages (and as the errors' ``.member``).
    limits : Limits
        The limits of this load; ``max_depth`` bounds the nesting depth and
        ``max_items`` the number of decoded values.
    encoding : {"latin1", "bytes", "ASCII"}
        How Python 2 ``str`` objects are decoded (as :func:`numpy.load`).

    Returns
    -------
    object
        Plain data: numbers, strings, bytes, lists, tuples, dicts, sets,
        NumPy arrays (object arrays holding plain data), NumPy scalars and
        dtypes.

    Raises
    ------
    UnsafeFileError, FormatError, LimitError

    Examples
    --------
    >>> import pickle, numpy as np
    >>> safe_loads(pickle.dumps(np.array([[1, 2], [3]], dtype=object)))
    array([list([1, 2]), list([3])], dtype=object)
    """
    if encoding not in _ENCODINGS:
        msg = f"encoding must be 'latin1', 'bytes' or 'ASCII', not {encoding!r}"
        raise ValueError(msg)
    # one copy (if any), shared by the scan and the unpickler
    data = data if isinstance(data, bytes) else bytes(data)
    # the compiled pre-check proves the common streams at C speed; anything
    # else (every refusal included) is scanned and decoded by the closed table
    if proven(data, limits, encoding):
        ctx = Context(member, limits, encoding, scanned=True)
        with no_gc():
            try:
                return decode_proven(data, ctx)
            except SafenpzError:
                raise
            except Exception as err:
                raise _translate(err, ctx) from err
    report = scan_pickle(data, member=member, limits=limits, encoding=encoding)
    scanned = isinstance(report, PickleReport)
    ctx = Context(member, limits, encoding, scanned=scanned)
    with no_gc():
        try:
            unpickler = _TableUnpickler(_Input(data), ctx)
            raw = unpickler.load()
            constructors = unpickler.constructors()
            del unpickler  # and its memo: see _finish
            return finish(
                raw,
                ctx,
                constructors,
                scanned=scanned,
                size=len(data),
            )
        except SafenpzError:
            raise
        except Exception as err:
            raise _translate(err, ctx) from err
        finally:
            ctx.made = []  # builders hold the context: no cycle left behind


def _translate(err: Exception, ctx: Context) -> SafenpzError:
    """The safenpz error for an error the C unpickler or the walk raised."""
    if isinstance(err, RecursionError):  # the walk recurses ~3 frames per level
        msg = (
            "nesting too deep for Python's recursion limit; lower max_depth or "
            "raise sys.setrecursionlimit"
        )
        return LimitError(
            msg, where=ctx.where, limit="max_depth", maximum=ctx.limits.max_depth
        )
    if isinstance(err, MemoryError):
        return LimitError("decoding ran out of memory", where=ctx.where)
    # the C unpickler's own complaints
    msg = f"the pickle is malformed ({type(err).__name__}: {err})"
    return FormatError(msg, where=ctx.where)
