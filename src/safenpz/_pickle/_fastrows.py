"""Fast path: a pickled object array of int lists, straight to values + offsets.

Keras's IMDb/Reuters ``.npz`` members are 1-D NumPy *object* arrays whose
elements are Python ``list``\\ s of ``int``\\ s. ``np.save`` stores them as a
pickle stream after the ``.npy`` header. :func:`decode_int_rows` turns exactly
that kind of stream into a flat ``int64`` ``values`` array and ``int64``
``offsets`` (length ``n + 1``) **without** creating one Python object per
element and **without** using :mod:`pickle` at all: nothing named in the stream
is imported, looked up or called. Any stream that is not recognised in full
gives ``None`` (never an exception); the caller then falls back to the general,
fully validating decoder (:mod:`safenpz._pickle._decode`).

Recognised streams
------------------
What ``pickle.dump(arr, protocol=p)`` writes for an object ndarray ``arr``
whose every element is a ``list`` of ``int`` that fit in int64, for every
binary protocol ``p`` = 1 to 5 (``np.save`` uses 3 in NumPy 1.x, 4 in NumPy
2.x), and what Python 2's ``cPickle`` wrote with protocol 2 (the Keras
IMDb/Reuters files)::

    [PROTO p] [FRAME n]...                    (PROTO: p >= 2; frames: p >= 4)
    REDUCE(R, (ndarray, (0,), b'b'))          R: numpy.core.multiarray._reconstruct
                                                 or numpy._core.multiarray._reconstruct
                                              b'b': SHORT_BINBYTES (p >= 3),
                                                 _codecs.encode('b', 'latin1') (p = 2),
                                                 SHORT_BINSTRING 'b' (Python 2)
    MARK 1 shape D is_fortran BODY TUPLE BUILD STOP
    D    := BUILD(REDUCE(numpy.dtype, ('O8', False, True)),  (or 0, 1: NumPy < 1.19)
                  (3, '|', None, None, None, -1, -1, 63))
    BODY := EMPTY_LIST PUT? (MARK ROW+ APPENDS | ROW APPEND)*
    ROW  := EMPTY_LIST PUT? (MARK INT+ APPENDS | INT APPEND)* | GET
    INT  := BININT1 | BININT2 | BININT | LONG1 (of at most 8 bytes)
          | INT "<decimal>\\n" (Python 2, beyond 32 bits)
          | LONG "<decimal>L\\n" (protocol 1, beyond 32 bits)

with memo ``PUT``\\ s (``BINPUT``, ``LONG_BINPUT``, ``MEMOIZE``) after any
object and memo ``GET``\\ s in the header, globals as ``GLOBAL`` or
``STACK_GLOBAL``, bools as ``NEWTRUE``/``NEWFALSE`` or (protocol 1) text
``I01``/``I00``, tuples as ``TUPLE1-3`` or ``MARK ... TUPLE``, and strings as
any ``*UNICODE``/``*STRING``/``*BYTES`` opcode. Memo ids are numbered from 0
(Python 3) or from 1 (``cPickle``, which also memoises an object only when its
reference count is >= 2, so some objects have no ``PUT``): the first ``PUT``
sets the base, every later one must take the next id. Text ints must be
canonical decimals (no sign but ``-``, no leading zeros: ``I00``/``I01`` are
bools) within int64. A ``GET`` in the body is a row shared with an earlier
one. ``shape`` may have any number of dimensions: the element list is always
in C order (``ndarray.__reduce__`` iterates in C order even for
Fortran-ordered arrays), so row ``i`` of the result is element ``i`` of
``arr.ravel(order="C")``; ``fortran_order`` gives the memory order of
:meth:`IntRows.to_object_array` (a pandas ``DataFrame.values`` is 2-D and
Fortran-ordered).

``None`` is returned for everything else, including (non-exhaustive): protocol
0 streams (text); elements that are not lists (tuples, ``None``, strings,
nested lists ...); list items that are not plain ints (bools, floats, ``LONG1``
beyond 8 bytes or text ints outside int64, ``LONG4``, non-canonical text);
empty ``MARK``/``APPENDS`` batches; any global outside the fixed set above;
other dtypes or dtype states; memo indices other than the sequential ones every
pickler assigns; a ``GET`` after the element list; frames that do not start on
an opcode; any byte after ``STOP``; truncated streams or claimed lengths beyond
the data; headers of more than a few hundred opcodes; shared rows that would
expand to more than 8 values per input byte; and bodies whose opcode chain
cannot be proven within a bounded amount of work (see below: pathological runs
of argument bytes that look like opcodes over more than a quarter of the body).

How it is fast
--------------
The header and trailer (about 50 opcodes) are run by a tiny sequential
interpreter over a closed opcode set that builds only inert placeholders
(:mod:`safenpz._pickle._fast_header`, a dispatch table of handlers). The body
(millions of opcodes) is decoded with whole-array NumPy operations
(:mod:`safenpz._pickle._fast_body`; step 2 is
:mod:`safenpz._pickle._fast_tokens`). Every opcode code and argument size
comes from the one opcode table, :mod:`safenpz._pickle._opcodes`:

0. **Quick look.** The first ``_QUICK_BYTES`` (512) of the body are walked
   sequentially; an opcode pair that cannot occur in a body there (garbage,
   or simply the end of a small array) settles everything without NumPy.
1. **Frames** are cut out first by walking the frame headers (one Python
   iteration per 64 KiB frame). Every frame boundary is later checked to be an
   opcode start, so the bytes mean the same with and without the frames.
2. **Opcode starts.** An opcode's length follows from its first byte (for
   ``LONG1`` from its second, too). The chain of opcode starts is followed by
   *lanes*: the body is cut into blocks of ``BLOCK`` bytes, one lane per
   block follows the length chain from the block's first byte, and all lanes
   advance together, one NumPy step per opcode (about ``BLOCK / 2.4`` steps
   in all). A lane that starts inside an argument is on a wrong chain at
   first; such chains merge with the true one within a few opcodes. Lane
   ``i - 1`` runs ``W`` bytes into block ``i``; by induction (lane 0 starts
   at the true start) its position there, ``q[i]``, is on the true chain, and
   lane ``i`` is accepted only if ``q[i]`` is exactly on its own path, after
   which both paths are identical since the chain is deterministic. Lanes that
   are not (long runs such as ``b"KKKK"`` -- 75 repeated -- keep a wrong chain
   going) take the path of a *candidate* lane started at the proven ``q[i]``:
   ``q[i]`` is within ``MAX_OP`` bytes of a known offset, so walking from
   each of those offsets covers it. Every lane is finally re-checked against
   its predecessor, so the opcode starts are proven, not guessed; if that
   fails within a bounded amount of work the result is ``None``.
3. **Grammar.** The opcodes are mapped to one symbol each and the body grammar
   above is matched by one regular expression over that symbol string (C
   speed; deterministic, so its quantifiers are possessive: no backtracking
   state). The match also tells where the body ends.
4. **Values**: the two bytes after every opcode are gathered, the second one
   dropped for ``BININT1``; ``BININT`` and ``LONG1`` opcodes are patched from
   unaligned strided views. Row lengths come from the positions of the few
   non-int opcodes. Memo ``PUT`` indices are checked to be the sequential
   ones; rows written as ``GET`` (shared list objects) are copied.

On an IMDb split (25,000 rows, 5.8 M ids, 14.6 MB) this takes about 0.13 s on
a 2-core machine, half the time of ``pickle.loads`` of the same bytes, which
still leaves 5.8 M Python ints to convert.

Why it is safe
--------------
Nothing from the stream is ever imported, resolved or called: global names are
only compared with a fixed set of strings, and the interpreter builds inert
placeholders. Every claimed length is checked against the bytes present before
anything is read, the header interpreter is bounded in opcodes, string sizes
and stack depth, and the body work is a fixed number of passes over arrays no
larger than a small constant times ``len(data)`` (peak memory is about 11x the
stream for IMDb, the int64 result itself being 3x; about 45x for the worst
case, one-byte empty rows, whose int64 offsets alone are 8x; plus a fixed few
hundred KiB). Any exception that malformed input may raise is turned into
``None``.
A result is returned only if the whole stream, up to ``STOP`` as its very last
byte, matched.
"""

from __future__ import annotations

import itertools
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from .._gc import no_gc
from ._fast_header import array_of, run
from ._fast_tokens import PAD, Reject, len_size
from ._opcodes import code

__all__ = ["IntRows", "decode_int_rows"]


# a plain class, not a dataclass: it is made at import, on the first load
class IntRows:
    """Rows of ints decoded from a pickled object array.

    Attributes
    ----------
    shape : tuple of int
        Shape of the pickled object array; ``prod(shape)`` rows.
    values : ndarray of int64
        All row items, row after row (rows in C order of the array).
    offsets : ndarray of int64
        ``len = prod(shape) + 1``; row ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
    fortran_order : bool
        The array's ``is_fortran`` flag as pickled: the memory order of
        :meth:`to_object_array` (the rows are always in C order).
    """

    __slots__ = ("fortran_order", "offsets", "shape", "values")
    shape: tuple[int, ...]
    values: NDArray[np.int64]
    offsets: NDArray[np.int64]
    fortran_order: bool

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        values: NDArray[np.int64],
        offsets: NDArray[np.int64],
        fortran_order: bool,
    ) -> None:
        for name, value in (
            ("shape", shape),
            ("values", values),
            ("offsets", offsets),
            ("fortran_order", fortran_order),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = f"IntRows is immutable: cannot set {name!r}"
        raise AttributeError(msg)

    def to_object_array(self) -> NDArray[np.object_]:
        """What unpickling the stream gives: an object array of `shape` whose
        elements are Python lists of Python ints, Fortran-ordered in memory
        when the pickle says so (as ``ndarray.__setstate__`` makes it).

        >>> import pickle
        >>> a = np.empty((2, 2), dtype=object)
        >>> a[0, 0], a[0, 1], a[1, 0], a[1, 1] = [1], [], [2, 3], [4]
        >>> rows = decode_int_rows(pickle.dumps(np.asfortranarray(a), protocol=2))
        >>> b = rows.to_object_array()
        >>> b.tolist(), b.flags.f_contiguous, b.flags.c_contiguous
        ([[[1], []], [[2, 3], [4]]], True, False)
        """
        with no_gc():
            vals = self.values.tolist()
            bounds = self.offsets.tolist()
            rows = [vals[a:b] for a, b in itertools.pairwise(bounds)]
            arr = np.fromiter(rows, dtype=object, count=len(rows)).reshape(self.shape)
            if self.fortran_order and arr.ndim > 1:
                arr = np.asfortranarray(arr)
        return arr


def decode_int_rows(data: bytes | bytearray | memoryview) -> IntRows | None:
    """Decode a pickled object array of int lists, or return ``None``.

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The complete pickle stream (the bytes after a ``.npy`` header).

    Returns
    -------
    IntRows or None
        ``None`` unless `data` is exactly the pickle of an object ndarray whose
        elements are all lists of ints that fit in int64 (see the module
        docstring). Never raises, never imports or calls anything the stream
        names.
    """
    try:
        return _decode(data)
    except Exception:  # Reject and anything malformed input may trigger
        return None


def _decode(data: bytes | bytearray | memoryview) -> IntRows:
    buf, m, bounds, p = _unframe(data)
    st = run(buf, m, p)
    assert st.body_tokens is not None
    _check_frames(bounds, st.op_starts, st.body_span, st.body_tokens)
    shape, fortran, rows = array_of(st)
    return IntRows(
        shape=shape, values=rows.values, offsets=rows.offsets, fortran_order=fortran
    )


# --------------------------------------------------------------------------
# framing

_PROTO = code("PROTO")
_FRAME = code("FRAME")
_GLOBAL = code("GLOBAL")
_FRAME_HEAD = 1 + len_size("FRAME")  # the opcode and its 8-byte length
_MAX_PROTOCOL = 5
_MAX_FRAMES_DIV = 4096  # at most len(data) // 4096 + 16 frames


def _unframe(
    data: bytes | bytearray | memoryview,
) -> tuple[NDArray[np.uint8], int, list[int], int]:
    """Return (padded byte array, logical length, frame boundaries, first opcode).

    Protocol 1 streams have no ``PROTO`` opcode: they start with the
    ``GLOBAL`` of ``_reconstruct`` (protocol 0 ones too, but their text
    opcodes are refused later).
    """
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    n = len(mv)
    if n >= 4 and mv[0] == _GLOBAL:  # protocol 1: no PROTO, no frames
        buf = np.zeros(n + PAD, np.uint8)
        buf[:n] = np.frombuffer(mv, np.uint8)
        return buf, n, [], 0
    if n < 4 or mv[0] != _PROTO or not 2 <= mv[1] <= _MAX_PROTOCOL:
        raise Reject
    parts: list[memoryview] = [mv[:2]]
    bounds: list[int] = []
    out = 2
    p = 2
    max_frames = n // _MAX_FRAMES_DIV + 16
    while p < n and mv[p] == _FRAME:
        if p + _FRAME_HEAD > n or len(bounds) >= max_frames:
            raise Reject
        size = int.from_bytes(mv[p + 1 : p + _FRAME_HEAD], "little")
        if size > n - p - _FRAME_HEAD:
            raise Reject
        parts.append(mv[p + _FRAME_HEAD : p + _FRAME_HEAD + size])
        out += size
        bounds.append(out)
        p += _FRAME_HEAD + size
    if p < n:
        parts.append(mv[p:])
        out += n - p
    buf = np.zeros(out + PAD, np.uint8)
    o = 0
    for part in parts:
        k = len(part)
        buf[o : o + k] = np.frombuffer(part, np.uint8)
        o += k
    # where a frame ends, an opcode must start (unless the stream ends there)
    bounds = [b for b in bounds if b < out]
    return buf, out, bounds, 2


def _check_frames(
    bounds: list[int],
    op_starts: list[int],
    body_span: tuple[int, int],
    body_tokens: NDArray[np.intp],
) -> None:
    """Every frame boundary must be the start of an opcode."""
    if not bounds:
        return
    starts = set(op_starts)
    lo, hi = body_span
    for b in bounds:
        if lo <= b < hi:
            i = int(np.searchsorted(body_tokens, b))
            if i >= len(body_tokens) or int(body_tokens[i]) != b:
                raise Reject
        elif b not in starts:
            raise Reject
