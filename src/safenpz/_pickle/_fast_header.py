"""The fast path's header interpreter: a dispatch table over a closed opcode set.

The opcodes around the element list (about 50: the ``_reconstruct`` call, the
dtype, the array state, ``STOP``) are run one by one by :func:`run`, a tiny
interpreter in the style of :mod:`pickle`'s own ``dispatch`` table: one
handler of a few lines per opcode, looked up by its code byte in
:data:`_HANDLERS`. An opcode without a handler refuses the stream. The
handlers build only inert placeholders (:mod:`safenpz._pickle._fast_objects`);
global names are compared with a fixed set of strings, never resolved. When
the array state reaches its element list (``EMPTY_LIST``), the body is handed
to :func:`safenpz._pickle._fast_body.decode_body` and the interpreter
continues after it.

Bounds: at most ``_MAX_HEADER_OPS`` opcodes, strings of at most ``MAX_STR``
bytes, a stack of at most ``_MAX_STACK`` items; every argument length is
checked against the bytes present before it is read. Anything unexpected
raises :class:`~safenpz._pickle._fast_tokens.Reject`. Argument sizes and
the tuple sizes of ``TUPLE1``-``TUPLE3`` come from
:mod:`safenpz._pickle._opcodes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._fast_body import Rows, decode_body, text_int
from ._fast_objects import (
    MARK,
    MAX_STR,
    OPAQUE,
    ArrayStub,
    build,
    global_of,
    reduce,
    state_prefix_ok,
)
from ._fast_tokens import NEWLINE, Reject, arg_size, len_size
from ._opcodes import OPS, code

__all__ = ["Machine", "array_of", "run"]

_MAX_HEADER_OPS = 512  # opcodes outside the body; a real header has ~50
_MAX_STACK = 64


# --------------------------------------------------------------------------
# the machine


class Machine:
    """The interpreter's state over one stream.

    Attributes
    ----------
    buf : ndarray of uint8
        The unframed stream, zero-padded after `m`.
    p : int
        Position of the next byte to read.
    stack, memo : list
        The pickle machine's stack and memo (memo ids from `base` on:
        0 in Python 3, 1 in Python 2's cPickle; -1 until the first PUT).
    op_starts : list of int
        Where each opcode outside the body starts.
    rows, body_span, body_tokens
        The decoded element list, its byte span and its opcode starts.
    """

    __slots__ = (
        "base",
        "body_span",
        "body_tokens",
        "buf",
        "m",
        "memo",
        "mv",
        "op_starts",
        "p",
        "rows",
        "stack",
        "stopped",
    )

    def __init__(self, buf: NDArray[np.uint8], m: int, p: int) -> None:
        self.buf = buf
        self.mv = memoryview(buf)  # type: ignore[arg-type]
        self.m = m
        self.p = p
        self.stack: list[Any] = []
        self.memo: list[Any] = []
        self.base = -1
        self.op_starts: list[int] = []
        self.rows: Rows | None = None
        self.body_span = (0, 0)
        self.body_tokens: NDArray[np.intp] | None = None
        self.stopped = False

    def take(self, k: int) -> int:
        """Skip the next `k` bytes, which must be present; return where they
        start."""
        p = self.p
        if p + k > self.m:
            raise Reject
        self.p = p + k
        return p

    def uint(self, k: int) -> int:
        """The next `k` bytes as an unsigned little-endian int."""
        p = self.take(k)
        return int.from_bytes(self.mv[p : p + k], "little")

    def sint(self, k: int) -> int:
        """The next `k` bytes as a signed little-endian int."""
        p = self.take(k)
        return int.from_bytes(self.mv[p : p + k], "little", signed=True)

    def readline(self) -> str:
        """The text up to the next newline, within ``MAX_STR`` bytes."""
        p = self.p
        raw = bytes(self.mv[p : min(self.m, p + MAX_STR + 1)])
        i = raw.find(NEWLINE)
        if i < 0:
            raise Reject
        self.p = p + i + 1
        return raw[:i].decode("utf-8")

    def put(self, idx: int) -> None:
        """Memoise the top of the stack under `idx`, the next sequential id."""
        if self.base < 0 and idx in (0, 1):
            self.base = idx
        if (
            idx != self.base + len(self.memo)
            or not self.stack
            or self.stack[-1] is MARK
        ):
            raise Reject
        self.memo.append(self.stack[-1])


def run(buf: NDArray[np.uint8], m: int, p: int) -> Machine:
    """Interpret the stream in ``buf[p:m]`` up to ``STOP``, its last byte.

    Returns the machine, with the element list decoded and exactly one item
    on the stack; raises :class:`~safenpz._pickle._fast_tokens.Reject`
    otherwise.
    """
    st = Machine(buf, m, p)
    mv, stack, handlers = st.mv, st.stack, _HANDLERS
    for _ in range(_MAX_HEADER_OPS):
        if st.p >= m:
            raise Reject
        st.op_starts.append(st.p)
        handler = handlers[mv[st.p]]
        if handler is None:
            raise Reject
        st.p += 1
        handler(st)
        if st.stopped:
            break
        if len(stack) > _MAX_STACK:
            raise Reject
    else:
        raise Reject
    if st.p != m or st.rows is None or st.body_tokens is None or len(stack) != 1:
        raise Reject
    return st


def array_of(st: Machine) -> tuple[tuple[int, ...], bool, Rows]:
    """(shape, is_fortran, rows) of the array a finished run built."""
    arr = st.stack[0]
    if not isinstance(arr, ArrayStub) or arr.state is None:
        raise Reject
    _version, shape, _dtype, fortran, rows = arr.state
    if rows is not st.rows or st.rows is None:
        raise Reject
    return shape, fortran, st.rows


# --------------------------------------------------------------------------
# handlers: one per opcode

Handler = Callable[[Machine], None]


def _push(value: object) -> Handler:
    def handler(st: Machine) -> None:
        st.stack.append(value)

    return handler


def _binary_int(name: str, *, signed: bool) -> Handler:
    k = arg_size(name)

    def handler(st: Machine) -> None:
        st.stack.append(st.sint(k) if signed else st.uint(k))

    return handler


_LONG1_PREFIX = len_size("LONG1")


def _long1(st: Machine) -> None:
    k = st.uint(_LONG1_PREFIX)
    if k > 8:
        raise Reject
    st.stack.append(st.sint(k))


def _text_int(st: Machine) -> None:
    # protocol 1 writes bools as I00 / I01
    line = st.readline()
    if line in ("00", "01"):
        st.stack.append(line == "01")
    else:
        st.stack.append(text_int(line.encode()))


def _string(name: str, decode: Callable[[bytes], object]) -> Handler:
    k = len_size(name)

    def handler(st: Machine) -> None:
        n = st.uint(k)
        if n > MAX_STR:
            raise Reject
        p = st.take(n)
        st.stack.append(decode(bytes(st.mv[p : p + n])))

    return handler


def _unicode(raw: bytes) -> str:
    return raw.decode("utf-8")


def _py2_str(raw: bytes) -> str:
    # Python 2 str: the unpickler decodes it (np.load: ASCII)
    return raw.decode("ascii")


def _bytes(raw: bytes) -> bytes:
    return raw


def _global_op(st: Machine) -> None:
    module = st.readline()
    name = st.readline()
    st.stack.append(global_of(module, name))


def _stack_global(st: Machine) -> None:
    name = st.stack.pop()
    module = st.stack.pop()
    if not (isinstance(name, str) and isinstance(module, str)):
        raise Reject
    st.stack.append(global_of(module, name))


def _tuple_n(name: str) -> Handler:
    k = OPS[name].pops
    assert k > 0, name
    assert not OPS[name].pops_mark, name

    def handler(st: Machine) -> None:
        stack = st.stack
        if len(stack) < k or any(x is MARK for x in stack[-k:]):
            raise Reject
        items = tuple(stack[-k:])
        del stack[-k:]
        stack.append(items)

    return handler


def _tuple(st: Machine) -> None:
    stack = st.stack
    i = _last_mark(stack)
    items = tuple(stack[i + 1 :])
    del stack[i:]
    stack.append(items)


def _reduce_op(st: Machine) -> None:
    args = st.stack.pop()
    func = st.stack.pop()
    st.stack.append(reduce(func, args))


def _build_op(st: Machine) -> None:
    state = st.stack.pop()
    build(st.stack[-1], state, st.rows)


def _put(name: str) -> Handler:
    k = arg_size(name)

    def handler(st: Machine) -> None:
        st.put(st.uint(k))

    return handler


def _memoize(st: Machine) -> None:
    if st.base > 0:
        raise Reject  # MEMOIZE (protocol 4+) numbers from 0
    st.put(len(st.memo))


def _get(name: str) -> Handler:
    k = arg_size(name)

    def handler(st: Machine) -> None:
        if st.rows is not None:
            raise Reject
        idx = st.uint(k)
        if not 0 <= idx - st.base < len(st.memo) or st.base < 0:
            raise Reject
        st.stack.append(st.memo[idx - st.base])

    return handler


def _element_list(st: Machine) -> None:
    """``EMPTY_LIST``: the element list (once), decoded by the body decoder."""
    # cheap check first: the array state so far must be on the stack
    if st.rows is not None or not state_prefix_ok(st.stack):
        raise Reject
    start = st.p - 1
    st.op_starts.pop()
    if st.base < 0:  # no PUT in the header (hand-assembled streams)
        st.base = 0
    rows, st.p, nputs, st.body_tokens = decode_body(
        st.buf, st.m, start, st.base + len(st.memo)
    )
    st.memo.extend([OPAQUE] * nputs)
    st.body_span = (start, st.p)
    st.rows = rows
    st.stack.append(rows)


def _stop(st: Machine) -> None:
    st.stopped = True


_BY_NAME: dict[str, Handler] = {
    "BININT1": _binary_int("BININT1", signed=False),
    "BININT2": _binary_int("BININT2", signed=False),
    "BININT": _binary_int("BININT", signed=True),
    "LONG1": _long1,
    "INT": _text_int,
    "NONE": _push(None),
    "NEWTRUE": _push(True),
    "NEWFALSE": _push(False),
    "SHORT_BINUNICODE": _string("SHORT_BINUNICODE", _unicode),
    "BINUNICODE": _string("BINUNICODE", _unicode),
    "SHORT_BINSTRING": _string("SHORT_BINSTRING", _py2_str),
    "BINSTRING": _string("BINSTRING", _py2_str),
    "SHORT_BINBYTES": _string("SHORT_BINBYTES", _bytes),
    "BINBYTES": _string("BINBYTES", _bytes),
    "GLOBAL": _global_op,
    "STACK_GLOBAL": _stack_global,
    "EMPTY_TUPLE": _push(()),
    "TUPLE1": _tuple_n("TUPLE1"),
    "TUPLE2": _tuple_n("TUPLE2"),
    "TUPLE3": _tuple_n("TUPLE3"),
    "MARK": _push(MARK),
    "TUPLE": _tuple,
    "REDUCE": _reduce_op,
    "BUILD": _build_op,
    "BINPUT": _put("BINPUT"),
    "LONG_BINPUT": _put("LONG_BINPUT"),
    "MEMOIZE": _memoize,
    "BINGET": _get("BINGET"),
    "LONG_BINGET": _get("LONG_BINGET"),
    "EMPTY_LIST": _element_list,
    "STOP": _stop,
}
assert not any(OPS[name].forbidden for name in _BY_NAME)


def _dispatch_table() -> list[Handler | None]:
    table: list[Handler | None] = [None] * 256
    for name, handler in _BY_NAME.items():
        table[code(name)] = handler
    return table


#: Opcode byte -> handler; None: the stream is refused.
_HANDLERS = _dispatch_table()


def _last_mark(stack: list[Any]) -> int:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is MARK:
            return i
    raise Reject
