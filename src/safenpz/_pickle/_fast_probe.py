"""A cheap look before the int-list fast path: streams it can never take.

The fast path (:mod:`safenpz._pickle._fastrows`) refuses any stream that
holds an opcode outside its header interpreter's table
(:mod:`safenpz._pickle._fast_header`) and its body grammar
(:data:`safenpz._pickle._fast_tokens.BODY_OPS`). It only finds out after
importing its modules and copying the stream into a padded array, which for
the first load of a small file costs more than the rest of the load.

:func:`never_int_rows` reads the first opcodes of the stream as the unpickler
does (from byte 0, each argument skipped by its kind in
:mod:`safenpz._pickle._opcodes`) and answers True when one of them is one the
fast path refuses there:

* up to the first ``EMPTY_LIST``, anything outside :data:`HEADER` (the header
  table and the framing): a protocol 0 stream (text strings);
* from it on, anything outside :data:`BODY`: the fast path's header reads the
  first ``EMPTY_LIST`` as the element list and then needs its body opcodes,
  and after the body only ``TUPLE BUILD STOP`` and memo puts (the array
  state is exactly ``(1, shape, dtype, is_fortran, rows)`` and the stack ends
  with one item: anything pushed after the rows is refused). The first
  element of ``np.save`` of a dict (``EMPTY_DICT``), of strings, of rows
  holding floats shows this within a few opcodes.

It never answers True for a stream the fast path takes
(``tests/internal/test_fastrows.py`` checks both tables against the fast
path's and every stream its tests decode); had it done so, the general
decoder would give the same value, only slower. Asking it first changes
nothing but the time.
"""

from __future__ import annotations

from ._opcodes import BY_CODE, code

__all__ = ["BODY", "HEADER", "never_int_rows"]


def _codes(*names: str) -> frozenset[int]:
    return frozenset(code(name) for name in names)


_INTS = ("BININT1", "BININT2", "BININT", "LONG1", "INT")
_MEMO = ("BINPUT", "LONG_BINPUT", "MEMOIZE", "BINGET", "LONG_BINGET")
#: What may come before the element list: the header table
#: (:mod:`safenpz._pickle._fast_header`) and the framing.
HEADER = _codes(
    *_INTS,
    *_MEMO,
    "NONE",
    "NEWTRUE",
    "NEWFALSE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "SHORT_BINBYTES",
    "BINBYTES",
    "GLOBAL",
    "STACK_GLOBAL",
    "EMPTY_TUPLE",
    "TUPLE1",
    "TUPLE2",
    "TUPLE3",
    "MARK",
    "TUPLE",
    "REDUCE",
    "BUILD",
    "EMPTY_LIST",
    "STOP",
    "PROTO",
    "FRAME",
)
#: What may come from the element list on: its body
#: (:data:`safenpz._pickle._fast_tokens.BODY_OPS`), then the end of the
#: array state, and framing.
BODY = _codes(
    *_INTS,
    *_MEMO,
    "LONG",
    "EMPTY_LIST",
    "MARK",
    "APPENDS",
    "APPEND",
    "TUPLE",
    "BUILD",
    "STOP",
    "FRAME",
)
_EMPTY_LIST = code("EMPTY_LIST")
#: How many opcodes the look reads at most (the first element of a
#: ``np.save`` file starts within about 40).
PROBE_OPS = 100
#: The longest text argument (a ``GLOBAL`` line, a text int) it reads.
_MAX_LINE = 256

_FRAME = code("FRAME")
_LENGTH_BYTES = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}
#: How the argument of each opcode is skipped: its fixed length (>= 0), or
#: one of the variable kinds below (FRAME: its 8-byte length, then opcodes).
_NL, _NL2, _LEN1 = -1, -2, -3
_VARIABLE = {"nl": _NL, "nl2": _NL2, "len1": _LEN1, "len4": -4, "len4s": -5, "len8": -6}
_KIND_OF = {-4: "len4", -5: "len4s", -6: "len8"}
_SKIP: list[int] = [0] * 256
for _op in BY_CODE.values():
    _SKIP[_op.code] = (
        8
        if _op.code == _FRAME
        else _op.arg
        if isinstance(_op.arg, int)
        else _VARIABLE[_op.arg]
    )


def _line_end(view: memoryview, p: int) -> int:
    """Where the text argument at `p` ends (after its newline); -1: unknown."""
    end = bytes(view[p : p + _MAX_LINE]).find(b"\n")
    return -1 if end < 0 else p + end + 1


def _skip_variable(view: memoryview, p: int, skip: int) -> int:
    """Where an argument of variable length `skip` (:data:`_SKIP`) starting
    at `p` ends (-1 or past the end: unknown), as the unpickler reads it."""
    if skip == _NL:
        return _line_end(view, p)
    if skip == _NL2:
        p = _line_end(view, p)
        return -1 if p < 0 else _line_end(view, p)
    kind = _KIND_OF[skip]
    k = _LENGTH_BYTES[kind]
    size = int.from_bytes(view[p : p + k], "little", signed=kind == "len4s")
    return -1 if size < 0 else p + k + size


def never_int_rows(data: bytes | memoryview) -> bool:
    """True if the first opcodes of `data` (at most :data:`PROBE_OPS`) show a
    stream the fast path refuses; False if they cannot tell.

    >>> import pickle
    >>> never_int_rows(pickle.dumps({"a": 1})), never_int_rows(pickle.dumps([[1]]))
    (True, False)
    >>> never_int_rows(pickle.dumps([["a"]]))
    True
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    n = len(view)
    p = 0
    allowed = HEADER
    skips = _SKIP
    for _ in range(PROBE_OPS):  # each opcode's argument skipped as in _SKIP
        if not 0 <= p < n:
            return False
        op = view[p]
        if op not in allowed:
            return True
        if op == _EMPTY_LIST:
            allowed = BODY
        skip = skips[op]
        p += 1
        if skip >= 0:
            p += skip
        elif skip == _LEN1:
            p = p + 1 + view[p] if p < n else -1
        else:
            p = _skip_variable(view, p, skip)
    return False
