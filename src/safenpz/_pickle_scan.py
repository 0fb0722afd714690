"""Static pickle scanner: walks the opcode stream, never executes it.

The scanner is the first line of defence of :func:`safenpz.load` and the engine
of ``safenpz scan``. It reads a pickle stream opcode by opcode (without
building any object) and checks, before anything is decoded:

* every opcode is known, and none of the never-allowed ones appears:
  ``PERSID``/``BINPERSID`` (persistent ids), ``EXT1/2/4`` (extension
  registry, whose cache can hold real callables), ``INST``/``OBJ``/``NEWOBJ``/
  ``NEWOBJ_EX`` (instantiate arbitrary classes), ``NEXT_BUFFER``/
  ``READONLY_BUFFER`` (out-of-band buffers);
* every global (``GLOBAL`` or ``STACK_GLOBAL``) names an entry of safenpz's
  closed table :data:`SAFE_GLOBALS`; ``STACK_GLOBAL`` must take its two names
  from string literals (directly or through the memo), never from a computed
  value;
* length-prefixed arguments fit in the data, memo indices are bounded by the
  stream length (CPython sizes its memo array by the largest index), frames
  fit, the MARK nesting stays under ``max_depth``, the number of containers
  under ``max_items``, and nothing but a few bytes of whitespace
  (:data:`MAX_TRAILING_WHITESPACE`) follows ``STOP`` (an empty ``FRAME``
  there is refused like any other byte);
* an abstract stack (values reduced to what hashing them costs, see
  :class:`_Stack`) shows that no opcode pops what is not there (a stack
  underflow, a MARK-closing opcode without a MARK, a memo get of an index never
  stored: errors the unpickler would raise anyway), that no tuple is nested
  deeper than ``max_depth`` (hashing a deep tuple -- as a dict key or set item
  -- recurses in C and can crash the interpreter), and that hashing every dict
  key and set item visits at most ``max_items`` values (tuples sharing items
  through the memo expand exponentially) and meets at most
  :data:`MAX_BIG_INT_KEYS` ints beyond ``+-(2**61 - 1)`` (whose hashes collide
  at will: a dict of such keys takes quadratic time), and that at most
  :data:`MAX_SAME_HASH` distinct floats or tuples of numbers (decoded from
  their literal bytes only when hashed) share one real hash (CPython's numeric
  and tuple hashes can be inverted: crafted collisions).
* a containment graph (every container a :class:`_Node`; an edge for each
  container an opcode puts into another, see :meth:`_Stack.check_graph`)
  shows, at ``STOP``, that no container reachable from the result contains
  itself and that at most ``max_depth + 1`` containers lie inside one another
  (the bound of the final walk, which would otherwise be the first to see
  them: ``safenpz scan`` and :func:`safenpz.load` reach one verdict). A
  ``REDUCE`` result holds its args tuple and a ``BUILD`` target its state, so
  an object array's items are two levels deeper here than in the walk.

Problems are reported with the opcode name and its byte offset in the stream.
For speed, runs of plain fixed-width literal pushes (small ints, floats,
``None``, booleans) are skipped by one compiled regular expression and kept as
one stack item, runs of ``APPEND``/``SETITEM``/``POP`` are applied in one
step, so the Python loop only runs on the opcodes that matter.
"""

from __future__ import annotations

import itertools
import pickle
import pickletools
import re
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from ._exceptions import FormatError, LimitError, UnsafeFileError
from ._limits import DEFAULT_LIMITS, MAX_SAME_HASH

__all__ = [
    "SAFE_GLOBALS",
    "GlobalRef",
    "PickleReport",
    "Problem",
    "scan_pickle",
]

#: The closed table of globals a pickle may name. Each maps, in
#: :mod:`safenpz._unpickle`, to a safenpz constructor that validates its
#: arguments; the callable the file names is never looked up.
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # NumPy 1.16.0 named the C module itself (fixed in 1.16.1)
        ("numpy.core._multiarray_umath", "_reconstruct"),
        ("numpy.core._multiarray_umath", "scalar"),
        ("numpy._core._multiarray_umath", "_reconstruct"),
        ("numpy._core._multiarray_umath", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytearray"),
        ("builtins", "set"),
        ("__builtin__", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "frozenset"),
        ("builtins", "complex"),
        ("__builtin__", "complex"),
        ("collections", "OrderedDict"),
    ]
)

# name, length kind: >=0 fixed bytes; "nl" up to newline; "nl2" two newline
# terminated strings; "len1"/"len4"/"len4s"/"len8": length-prefixed payload.
_ArgKind = int | Literal["nl", "nl2", "len1", "len4", "len4s", "len8"]

_N_TO_KIND: dict[int, _ArgKind] = {
    pickletools.UP_TO_NEWLINE: "nl",
    pickletools.TAKEN_FROM_ARGUMENT1: "len1",
    pickletools.TAKEN_FROM_ARGUMENT4: "len4s",
    pickletools.TAKEN_FROM_ARGUMENT4U: "len4",
    pickletools.TAKEN_FROM_ARGUMENT8U: "len8",
}


def _build_table() -> dict[int, tuple[str, _ArgKind]]:
    table: dict[int, tuple[str, _ArgKind]] = {}
    for op in pickletools.opcodes:
        code = op.code.encode("latin-1")[0]
        kind: _ArgKind
        if op.arg is None:
            kind = 0
        elif op.name in ("GLOBAL", "INST"):
            kind = "nl2"
        elif op.name == "FRAME":  # pickletools calls it a fixed 8-byte argument
            kind = "len8"
        elif op.arg.n >= 0:
            kind = op.arg.n
        else:
            kind = _N_TO_KIND[op.arg.n]
        table[code] = (op.name, kind)
    return table


_OPCODES = _build_table()

_FORBIDDEN: dict[str, str] = {
    "PERSID": "persistent ids make the unpickler call an external resolver",
    "BINPERSID": "persistent ids make the unpickler call an external resolver",
    "EXT1": "extension codes resolve through a process-wide registry of callables",
    "EXT2": "extension codes resolve through a process-wide registry of callables",
    "EXT4": "extension codes resolve through a process-wide registry of callables",
    "INST": "INST instantiates an arbitrary class",
    "OBJ": "OBJ instantiates an arbitrary class",
    "NEWOBJ": "NEWOBJ calls cls.__new__ of an arbitrary class",
    "NEWOBJ_EX": "NEWOBJ_EX calls cls.__new__ of an arbitrary class",
    "NEXT_BUFFER": "out-of-band buffers are not part of the file",
    "READONLY_BUFFER": "out-of-band buffers are not part of the file",
}

_CONTAINERS = frozenset(
    {
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "LIST",
        "DICT",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "FROZENSET",
    }
)
_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)

# Plain, fixed-width literal pushes with nothing to check and no effect on the
# names STACK_GLOBAL may see: BININT1/2, BININT, BINFLOAT, NONE, NEWTRUE,
# NEWFALSE. A run of them is one item of the abstract stack (a _Run). (Opcodes
# that pop, MARK-closing opcodes and memo operations are not skipped: the
# scanner follows string literals through the memo and values on the stack.)
_SKIP = re.compile(rb"(?:K.|M..|J....|G.{8}|[N\x88\x89])+", re.DOTALL)

_UNKNOWN = object()

# One-byte opcodes with no argument whose only effects the scanner tracks are
# the MARK depth and the container count: code -> (name, mark delta, creates
# a container). Handled without the general per-opcode dispatch below.
_MARK_CLOSERS = frozenset(
    {
        "APPENDS",
        "SETITEMS",
        "LIST",
        "DICT",
        "TUPLE",
        "FROZENSET",
        "ADDITEMS",
        "POP_MARK",
    }
)
_SIMPLE: dict[int, tuple[str, int, bool]] = {
    code: (
        name,
        1 if name == "MARK" else -1 if name in _MARK_CLOSERS else 0,
        name in _CONTAINERS,
    )
    for code, (name, kind) in _OPCODES.items()
    if kind == 0
    and (
        name in _MARK_CLOSERS
        or name in _CONTAINERS
        or name in ("MARK", "EMPTY_TUPLE", "REDUCE", "BUILD")
    )
}
# BINPUT, LONG_BINPUT, BINGET, LONG_BINGET -> width of their index argument
_MEMO_FIXED = {0x71: 1, 0x72: 4, 0x68: 1, 0x6A: 4}
# first bytes of the opcodes the _SKIP expression can consume
_SKIP_FIRST = frozenset(b"KMJGN\x88\x89")
_EMPTY_MUTABLE = frozenset(b"]}\x8f")
_EMPTY_POP = re.compile(rb"(?:[\]}\x8f]0)+")
_POP_WINDOW = 2**21  # bytes matched at once (bounded copies, prompt limits)
# APPEND, SETITEM, POP: runs of one of them are handled in one step
_REPEATS = {code: re.compile(re.escape(bytes([code])) + b"+") for code in b"as0"}
# TUPLE1, TUPLE2, TUPLE3 -> items popped
_TUPLE_N = {0x85: 1, 0x86: 2, 0x87: 3}
_INT_OPS = frozenset({"INT", "LONG", "LONG1", "LONG4"})


def _is_big_int(name: str, arg: bytes) -> bool:
    """Whether an int literal lies outside ``+-(2**61 - 1)`` (see _Stack)."""
    if name in ("LONG1", "LONG4"):
        value = int.from_bytes(arg, "little", signed=True)
    else:  # INT / LONG text ("I01\n" is True in protocol 0; "L" is Python 2)
        digits = arg.rstrip(b"L").lstrip(b"+-")
        if not digits.isdigit():
            return False  # not an int: the unpickler refuses it
        if len(digits.lstrip(b"0")) > 19:
            return True
        value = int(digits)
    return abs(value) >= _HASH_MODULUS


#: ``pickle.load`` ignores what follows ``STOP``, and hand-edited files end in
#: a newline: this much ASCII whitespace after ``STOP`` is accepted. Anything
#: else there is refused (a polyglot: another reader may see other data).
MAX_TRAILING_WHITESPACE = 16
_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")


def _is_allowed_tail(buf: bytes, pos: int) -> bool:
    """True if ``buf[pos:]`` (what follows STOP) may be ignored."""
    tail = buf[pos : pos + MAX_TRAILING_WHITESPACE + 1]
    return len(tail) <= MAX_TRAILING_WHITESPACE and set(tail) <= _WHITESPACE


# --------------------------------------------------------------------------
# the abstract stack: nesting and hashing bounds before the C unpickler runs
#
# CPython's unpickler builds containers iteratively, but *hashing* a tuple
# recurses into its items in C without a recursion check: a million-deep tuple
# used as a dict key or set item crashes the interpreter, and tuples that share
# items through the memo make one hash visit exponentially many values. Lists,
# dicts and sets are not hashable (hashing stops at them), their nesting is
# bounded by the final walk, and deallocation is iterative. So the scanner runs
# an abstract stack that knows, for every value, only what hashing it costs:
#
# * ``0``: a value whose hash is cheap (a literal, a list, a dict, a result of
#   REDUCE, ...);
# * :class:`_Tup`: a tuple, with its height (tuples inside tuples), its
#   *expanded* size (what a hash visits, counting memo-shared items each time)
#   and how many big ints it holds;
# * ``_BIG``: an int outside ``+-(2**61 - 1)`` (CPython reduces int hashes
#   modulo that prime, so such keys can be made to collide: quadratic dicts);
# * :class:`_Lst`: a list (mutable: what dangerous values were appended to it,
#   for ``set(list)``/``frozenset(list)``, which hash the items);
# * ``_SETFN``: the globals ``set`` and ``frozenset``;
# * :class:`_Run`: a run of plain literal pushes skipped in one regular
#   expression match (counted only when an opcode needs its items one by one).
#
# MARKs are kept as stack heights (``marks``): like CPython's fence, no opcode
# but a MARK-closing one (or POP of a bare MARK) may pop across a MARK.


class _Node:
    """A container (list, dict, set, tuple, REDUCE result): one per container
    the stream creates, shared through the memo and ``DUP`` like the object.
    ``kids`` are the containers it holds (edges of the containment graph);
    ``h`` is scratch for :meth:`_Stack.check_graph` (0: not seen yet, -1: on
    the current path, else its height)."""

    __slots__ = ("h", "kids")

    def __init__(self, kids: list[_Node] | None = None) -> None:
        self.kids: list[_Node] = [] if kids is None else kids
        self.h = 0


class _Tup(_Node):
    __slots__ = ("big", "height", "lists", "size", "src", "val")

    def __init__(
        self,
        height: int,
        size: int,
        big: int,
        lists: tuple[_Lst, ...],
        kids: list[_Node] | None = None,
    ):
        self.kids = [] if kids is None else kids
        self.h = 0
        self.height = height
        self.size = size
        self.big = big
        self.lists = lists
        self.src: list[object] = []  # its items (abstract values), for its hash
        self.val: object = _NOVAL  # its value, once needed (_UNK: not static)


class _Lst(_Node):
    __slots__ = ("big", "size", "src")

    def __init__(self, kids: list[_Node] | None = None) -> None:
        self.kids = [] if kids is None else kids
        self.h = 0
        self.size = 0  # expanded size of the tuples appended (leaves: 0)
        self.big = 0
        self.src: list[object] = []  # numbers and tuples appended (set(list))


class _Run:
    __slots__ = ("count", "end", "offs", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.count = -1  # unknown until needed
        self.offs: list[int] | None = None  # offsets of its literals, if needed


class _Num:
    """A numeric literal (int below 2**61, float, bool, None) at ``off``,
    decoded only if it is hashed (alone or in a tuple)."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


#: Containers an opcode may add to (tuples are immutable: CPython refuses
#: ``APPEND`` and the like on them, so no edge is added).
_MUTABLE = frozenset({_Node, _Lst})
_NODE_TYPES = frozenset({_Node, _Lst, _Tup})
_BIG = object()
_SETFN = object()
_HASHED = frozenset({_Tup, _Num})  # see _Stack.hashed (_BIG: by identity)
_LISTED = frozenset({_Tup, _Num, _Run})  # what a list records (set(list))
_FLOAT_CODES = frozenset(b"GF")
_NOVAL = object()  # a _Tup's value not computed yet
_UNK = object()  # a value the scanner cannot know statically
_SET_GLOBALS = frozenset(
    (m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset")
)
#: Ints at least this large (in absolute value) may collide in a hash table.
_HASH_MODULUS = 2**61 - 1
#: Dict keys / set items holding such ints that one stream may hash.
MAX_BIG_INT_KEYS = 4096
_RUN_WIDTH = {0x4B: 2, 0x4D: 3, 0x4A: 5, 0x47: 9, 0x4E: 1, 0x88: 1, 0x89: 1}  # bytes


_RUN_TOKEN = re.compile(rb"K.|M..|J....|G.{8}|[N\x88\x89]", re.DOTALL)


def _run_count(buf: bytes, run: _Run) -> int:
    """The number of literals in `run` (counted at C speed, once)."""
    if run.count < 0:
        run.count = _RUN_TOKEN.subn(b"", buf[run.start : run.end])[1]
    return run.count


def _run_offs(buf: bytes, run: _Run) -> list[int]:
    """The offsets of the literals of `run` (found once, when needed)."""
    if run.offs is None:
        run.offs = [m.start() for m in _RUN_TOKEN.finditer(buf, run.start, run.end)]
        if run.count < 0:
            run.count = len(run.offs)
    return run.offs


def _num_value(buf: bytes, off: int) -> object:
    """The value of the numeric literal opcode at `off`, decoded as the
    unpickler does (``_UNK`` if it would refuse it)."""
    code = buf[off]
    if code == 0x4B:  # BININT1
        return buf[off + 1]
    if code == 0x4D:  # BININT2
        return int.from_bytes(buf[off + 1 : off + 3], "little")
    if code == 0x4A:  # BININT
        return int.from_bytes(buf[off + 1 : off + 5], "little", signed=True)
    if code == 0x47:  # BINFLOAT
        return struct.unpack(">d", buf[off + 1 : off + 9])[0]
    if code == 0x4E:
        return None
    if code in (0x88, 0x89):
        return code == 0x88
    if code == 0x8A:  # LONG1 (not beyond 2**61: those are _BIG)
        return int.from_bytes(
            buf[off + 2 : off + 2 + buf[off + 1]], "little", signed=True
        )
    if code == 0x8B:  # LONG4
        size = int.from_bytes(buf[off + 1 : off + 5], "little", signed=True)
        return int.from_bytes(buf[off + 5 : off + 5 + size], "little", signed=True)
    # INT, LONG, FLOAT (text): the C unpickler's own reading of one literal
    end = buf.find(b"\n", off)
    try:
        return pickle.loads(buf[off : end + 1] + b".")
    except Exception:
        return _UNK


class _StackError(Exception):
    """Internal: (kind, message) of a stack-model refusal."""

    def __init__(
        self, message: str, kind: Literal["format", "limit"] = "format"
    ) -> None:
        super().__init__(message)
        self.kind: Literal["format", "limit"] = kind


class _Stack:
    """The abstract stack and memo of one scan (see above)."""

    def __init__(self, buf: bytes, max_depth: int, max_items: int) -> None:
        self.buf = buf
        self.items: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.max_height = max_depth + 1  # the walk's depth 0 is the outermost
        self.max_depth = max_depth
        self.max_items = max_items
        self.hash_work = 0
        self.big_keys = 0
        self.seen: set[object] = set()  # distinct numeric keys hashed so far
        self.same: dict[int, int] = {}  # how many of them share each hash
        # one per scan: a stream may (wrongly) APPEND to it, adding edges
        self.empty_tuple = _Tup(1, 1, 0, ())

    # -- basic moves

    def floor(self) -> int:
        return self.marks[-1] if self.marks else 0

    def underflow(self, what: str) -> NoReturn:
        where = "above the last MARK" if self.marks else "on the stack"
        msg = f"{what}, but there is nothing {where} (stack underflow)"
        raise _StackError(msg)

    def top(self, what: str) -> object:
        items = self.items
        if len(items) <= (self.marks[-1] if self.marks else 0):
            self.underflow(what)
        top = items[-1]
        return 0 if type(top) is _Run else top

    def top_item(self, what: str) -> object:
        """The top value itself (the last literal of a run: MEMO, DUP)."""
        top = self.top(what)
        last = self.items[-1]
        if type(last) is _Run:
            assert isinstance(last, _Run)
            return _Num(_run_offs(self.buf, last)[_run_count(self.buf, last) - 1])
        return top

    def pop(self, k: int, what: str) -> list[object]:
        """Pop `k` items (top last in the returned list)."""
        items, floor = self.items, self.floor()
        out: list[object] = []
        while k:
            if len(items) <= floor:
                self.underflow(what)
            top = items[-1]
            if type(top) is _Run:
                offs = _run_offs(self.buf, top)
                count = _run_count(self.buf, top)
                take = min(count, k)
                out.extend([_Num(off) for off in reversed(offs[count - take : count])])
                k -= take
                if take == count:
                    items.pop()
                else:
                    top.count = count - take
            else:
                out.append(items.pop())
                k -= 1
        out.reverse()
        return out

    def pop_mark(self, what: str) -> list[object]:
        if not self.marks:
            msg = f"{what} without a MARK to close"
            raise _StackError(msg)
        at = self.marks.pop()
        group = self.items[at:]
        del self.items[at:]
        return group

    # -- what values cost

    def tuple_of(self, items: list[object]) -> _Tup:
        height, size, big = 0, 1, 0
        lists: list[_Lst] = []
        kids: list[_Node] = []
        for item in items:
            tp = type(item)
            if tp is _Tup:
                assert isinstance(item, _Tup)
                kids.append(item)
                height = max(height, item.height)
                size += item.size
                big += item.big
                lists.extend(item.lists)
            elif tp is _Run:
                assert isinstance(item, _Run)
                size += _run_count(self.buf, item)
            elif item is _BIG:
                size += 1
                big += 1
            elif tp is _Lst:
                assert isinstance(item, _Lst)
                size += 1 + item.size
                big += item.big
                lists.append(item)
                kids.append(item)
            else:
                if tp is _Node:
                    assert isinstance(item, _Node)
                    kids.append(item)
                size += 1
        height += 1
        if height > self.max_height:
            msg = (
                f"tuples nested deeper than max_depth={self.max_depth} (hashing "
                "such a tuple recurses in C and can crash the interpreter)"
            )
            raise _StackError(msg, "limit")
        if size > self.max_items:
            msg = (
                f"a tuple that expands to more than max_items={self.max_items} "
                "values through memo-shared items (hashing it would visit "
                "each of them)"
            )
            raise _StackError(msg, "limit")
        tup = _Tup(height, size, big, tuple(lists), kids)
        tup.src = items
        return tup

    def hashed(self, items: list[object], step: int = 1, charge: bool = True) -> None:
        """Account for hashing ``items[::step]`` (dict keys, set items);
        `charge`: count their hash work (not yet counted)."""
        buf = self.buf
        if not any(
            type(i) in _HASHED or i is _BIG or (type(i) is _Run and self.has_float(i))
            for i in items
        ):
            return
        if any(type(i) is _Run for i in items):
            flat: list[object] = []
            for item in items:
                if type(item) is _Run:
                    assert isinstance(item, _Run)
                    offs = _run_offs(buf, item)[: _run_count(buf, item)]
                    flat.extend([_Num(off) for off in offs])
                else:
                    flat.append(item)
            items = flat
        keys: list[object] = []
        for item in items[::step]:
            if type(item) is _Tup:
                assert isinstance(item, _Tup)
                if charge:
                    self.charge(item.size, item.big)
                keys.append(item)
            elif item is _BIG:
                if charge:
                    self.charge(1, 1)
            elif type(item) is _Num:
                assert isinstance(item, _Num)
                if buf[item.off] in _FLOAT_CODES:
                    keys.append(item)
        for key in keys:
            self.count_hash(key)

    def has_float(self, run: _Run) -> bool:
        """Whether `run` may hold a float (a BINFLOAT byte in its range)."""
        return self.buf.find(b"G", run.start, run.end) >= 0

    def value(self, item: object) -> object:
        """The Python value of `item` if it is a number or a tuple of numbers
        (``_UNK`` otherwise). Tuple values are built bottom-up, without
        recursion, and kept (memo-shared tuples are built once)."""
        if type(item) is _Num:
            assert isinstance(item, _Num)
            return _num_value(self.buf, item.off)
        if type(item) is not _Tup:
            return _UNK
        assert isinstance(item, _Tup)
        todo: list[_Tup] = [item]
        while todo:
            tup = todo[-1]
            if tup.val is not _NOVAL:
                todo.pop()
                continue
            pending = [x for x in tup.src if isinstance(x, _Tup) and x.val is _NOVAL]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            vals: list[object] = []
            for x in tup.src:
                tp = type(x)
                if tp is _Run:
                    assert isinstance(x, _Run)
                    offs = _run_offs(self.buf, x)[: _run_count(self.buf, x)]
                    vals.extend([_num_value(self.buf, off) for off in offs])
                elif tp is _Num:
                    assert isinstance(x, _Num)
                    vals.append(_num_value(self.buf, x.off))
                elif tp is _Tup:
                    assert isinstance(x, _Tup)
                    vals.append(x.val)
                else:
                    vals.append(_UNK)
                if vals[-1] is _UNK:
                    tup.val = _UNK
                    break
            else:
                tup.val = tuple(vals)
        return item.val

    def count_hash(self, key: object) -> None:
        """Count one hashed number or tuple of numbers by its real hash:
        CPython's numeric and tuple hashes are not randomized and can be
        inverted, so distinct keys can be crafted to share one hash (a dict
        of them takes quadratic time to build)."""
        value = self.value(key)
        if value is _UNK or value in self.seen:
            return
        self.seen.add(value)
        h = hash(value)
        count = self.same.get(h, 0) + 1
        self.same[h] = count
        if count > MAX_SAME_HASH:
            msg = (
                f"more than {MAX_SAME_HASH} distinct dict keys or set items "
                f"share one hash value ({h}): a hash-collision attack (a dict "
                "of such keys takes quadratic time to build)"
            )
            raise _StackError(msg)

    def charge(self, size: int, big: int) -> None:
        self.hash_work += size
        self.big_keys += big
        if self.hash_work > self.max_items:
            msg = (
                f"hashing the dict keys and set items would visit more than "
                f"max_items={self.max_items} values (tuples sharing items "
                "through the memo)"
            )
            raise _StackError(msg, "limit")
        if self.big_keys > MAX_BIG_INT_KEYS:
            msg = (
                f"more than {MAX_BIG_INT_KEYS} dict keys or set items hold ints "
                f"beyond +-(2**61 - 1), whose hashes can be made to collide "
                "(a dict of them can take hours to build)"
            )
            raise _StackError(msg)

    # -- opcodes with a stack effect beyond push/pop

    def mark(self) -> None:
        self.marks.append(len(self.items))

    def close(self, name: str) -> None:
        group = self.pop_mark(name)
        items = self.items
        if name == "TUPLE":
            items.append(self.tuple_of(group))
        elif name == "LIST":
            lst = _Lst(_nodes(group))
            self.extend_list(lst, group)
            items.append(lst)
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            target = self.top(name)
            if name == "APPENDS":
                if type(target) is _Lst:
                    assert isinstance(target, _Lst)
                    self.extend_list(target, group)
            else:
                self.hashed(group, 2 if name == "SETITEMS" else 1)
            if type(target) in _MUTABLE:
                assert isinstance(target, _Node)
                target.kids += _nodes(group)
        elif name == "DICT":
            self.hashed(group, 2)
            items.append(_Node(_nodes(group)))
        elif name == "FROZENSET":
            self.hashed(group)
            items.append(_Node(_nodes(group)))
        elif name in ("INST", "OBJ"):
            if name == "OBJ" and not group:
                self.underflow(name)
            items.append(0)
        # POP_MARK: nothing

    def extend_list(self, lst: _Lst, group: list[object]) -> None:
        for item in group:
            if type(item) is _Tup:
                assert isinstance(item, _Tup)
                lst.size += item.size
                lst.big += item.big
                lst.src.append(item)
            elif item is _BIG:
                lst.size += 1
                lst.big += 1
            elif type(item) is _Num or type(item) is _Run:
                lst.src.append(item)

    def reduce(self) -> None:
        """``fn(*args)``: the result holds the args tuple (an over-estimate of
        one level: the objects ``set(list)`` or an array holds are items of
        items of the args, see :meth:`check_graph`)."""
        fn, args = self.pop(2, "REDUCE")
        if fn is _SETFN and type(args) is _Tup:
            assert isinstance(args, _Tup)
            # set(x)/frozenset(x) hash the items of x (a list or tuple)
            self.charge(
                args.size + sum(lst.size for lst in args.lists),
                args.big + sum(lst.big for lst in args.lists),
            )
            if len(args.src) == 1:  # set(x): x's items, when x is static
                x = args.src[0]
                if type(x) is _Lst:
                    assert isinstance(x, _Lst)
                    self.hashed(x.src, charge=False)
                elif type(x) is _Tup:
                    assert isinstance(x, _Tup)
                    self.hashed(x.src, charge=False)
        self.items.append(_Node([args]) if isinstance(args, _Node) else _Node())

    def fixed(self, name: str, pops: int, push: object) -> None:
        """An opcode that pops `pops` items and pushes `push` (None: nothing)."""
        if pops:
            self.pop(pops, name)
        if push is not None:
            self.items.append(push)

    def tuple_n(self, name: str, k: int) -> None:
        self.items.append(self.tuple_of(self.pop(k, name)))

    def appends(self, k: int) -> None:
        """`k` APPENDs in a row: each pops an item into the one below it."""
        items = self.items
        if k == 1 and len(items) >= (self.marks[-1] if self.marks else 0) + 2:
            item = items[-1]
            if type(item) is not _Run:  # the common case, in one step
                items.pop()
                target = items[-1]
                if type(target) is _Lst:
                    assert isinstance(target, _Lst)
                    if type(item) in _LISTED:
                        self.extend_list(target, [item])
                    if isinstance(item, _Node):
                        target.kids.append(item)
                elif type(target) is _Node and isinstance(item, _Node):
                    assert isinstance(target, _Node)
                    target.kids.append(item)
                return
        chain = self.pop(k, "APPEND")
        chain.insert(0, self.top("APPEND"))
        if any(type(i) in _LISTED or i is _BIG for i in chain):
            for below, item in itertools.pairwise(chain):
                if type(below) is _Lst:
                    assert isinstance(below, _Lst)
                    self.extend_list(below, [item])
        for below, item in itertools.pairwise(chain):
            if isinstance(item, _Node) and type(below) in _MUTABLE:
                assert isinstance(below, _Node)
                below.kids.append(item)

    def setitems(self, k: int) -> None:
        """`k` SETITEMs in a row: each pops a key and a value."""
        popped = self.pop(2 * k, "SETITEM")
        target = self.top("SETITEM")
        self.hashed(popped[0::2])
        # the i-th SETITEM from the top sets a key and value in the value
        # the (i+1)-th one pops (nested dicts: ``}K\x00}K\x00}ss``)
        keys, values = popped[0::2], popped[1::2]
        for below, key, value in zip([target, *values], keys, values, strict=False):
            if type(below) in _MUTABLE:
                assert isinstance(below, _Node)
                if isinstance(key, _Node):
                    below.kids.append(key)
                if isinstance(value, _Node):
                    below.kids.append(value)

    def pops(self, k: int) -> None:
        """`k` POPs in a row (POP of a bare MARK drops the MARK)."""
        items, marks = self.items, self.marks
        for _ in range(k):
            if marks and marks[-1] == len(items):
                marks.pop()
                continue
            if len(items) <= (marks[-1] if marks else 0):
                self.underflow("POP")
            top = items[-1]
            if type(top) is _Run:
                count = _run_count(self.buf, top)
                if count > 1:
                    top.count = count - 1
                    continue
            items.pop()

    def build(self) -> None:
        """``obj.__setstate__(state)``: `obj` holds the state (for an array,
        its items are in a list in a tuple: two levels over, see
        :meth:`check_graph`)."""
        (state,) = self.pop(1, "BUILD")
        target = self.top("BUILD")
        if isinstance(state, _Node) and type(target) in _MUTABLE:
            assert isinstance(target, _Node)
            target.kids.append(state)

    def check_graph(self, root: object) -> None:
        """Refuse a container holding itself, or nesting deeper than the walk
        allows, in what `root` (the value ``STOP`` returns) holds.

        The containment graph (see :class:`_Node`) is a superset of what the
        walk visits: a ``REDUCE`` result holds its args tuple, a ``BUILD``
        target its state, so the walk's depth is over-estimated by one level
        per ``REDUCE`` and one per ``BUILD`` (an object array's items are three
        levels below it here, one in the walk). One iterative depth-first
        search, linear in containers + edges: a kid on the current path is a
        cycle; the longest path from `root`, counted in containers, may not
        exceed ``max_depth + 1`` (the walk's depth 0 is the outermost). The
        whole graph is searched before the depth is judged, so a cycle is
        always a FormatError, however deep.
        """
        if not isinstance(root, _Node) or not root.kids:
            return
        limit = self.max_height
        root.h = -1
        path: list[_Node] = [root]
        kids_of: list[Iterator[_Node]] = [iter(root.kids)]
        best = [1]
        while path:
            for kid in kids_of[-1]:
                if not kid.kids:  # an empty container (maybe a shared one)
                    best[-1] = max(best[-1], 2)
                    continue
                h = kid.h
                if h > 0:
                    best[-1] = max(best[-1], h + 1)
                    continue
                if h < 0:
                    msg = (
                        "a container that contains itself (directly or through "
                        "other containers): plain data holds no cycles"
                    )
                    raise _StackError(msg)
                kid.h = -1
                path.append(kid)
                kids_of.append(iter(kid.kids))
                best.append(2)  # `kid` holds a container
                break
            else:
                node = path.pop()
                kids_of.pop()
                node.h = h = best.pop()
                if best:
                    best[-1] = max(best[-1], h + 1)
                elif h > limit:
                    self.too_deep()

    def too_deep(self) -> NoReturn:
        msg = (
            f"containers (lists, dicts, sets, tuples, arrays) nested deeper "
            f"than max_depth={self.max_depth}"
        )
        raise _StackError(msg, "limit")

    def put(self, idx: int, what: str) -> None:
        self.memo[idx] = self.top_item(what)

    def get(self, idx: int, what: str) -> None:
        try:
            self.items.append(self.memo[idx])
        except KeyError:
            msg = f"{what} of memo index {idx}, which was never stored"
            raise _StackError(msg) from None


def _nodes(group: list[object]) -> list[_Node]:
    """The containers among `group` (edges to add)."""
    if _NODE_TYPES.isdisjoint(map(type, group)):  # at C speed: most groups
        return []
    return [item for item in group if isinstance(item, _Node)]


# Stack effect of the opcodes not handled by name in the scan loop:
# name -> (items popped, whether one item is pushed).
_EFFECT: dict[str, tuple[int, bool]] = {}
for _op in pickletools.opcodes:
    if pickletools.markobject in _op.stack_before:
        continue
    _EFFECT[_op.name] = (len(_op.stack_before), len(_op.stack_after) == 1)
del _op


@dataclass(frozen=True)
class GlobalRef:
    """A global named by a pickle.

    Attributes
    ----------
    module, name : str
        What the file asks for (``"?"`` when computed, not a literal).
    opcode : str
        ``"GLOBAL"`` or ``"STACK_GLOBAL"``.
    offset : int
        Byte offset of the opcode in the pickle stream.
    allowed : bool
        Whether it is in safenpz's closed table.
    """

    module: str
    name: str
    opcode: str
    offset: int
    allowed: bool


@dataclass(frozen=True)
class Problem:
    """A reason the stream is refused."""

    kind: Literal["unsafe", "format", "limit"]
    opcode: str
    offset: int
    message: str


@dataclass
class PickleReport:
    """What :func:`scan_pickle` found in one stream."""

    protocol: int = 0
    globals: list[GlobalRef] = field(default_factory=list)
    opcodes: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    containers: int = 0
    length: int = 0

    @property
    def safe(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _literal(buf: bytes, value: object) -> object:
    """A name candidate: bytes, or the offset of a SHORT_BINUNICODE or
    BINUNICODE opcode (the scan loop keeps offsets, not copies)."""
    if type(value) is not int:
        return value
    if buf[value] == 0x8C:
        return buf[value + 2 : value + 2 + buf[value + 1]]
    size = int.from_bytes(buf[value + 1 : value + 5], "little")
    return buf[value + 5 : value + 5 + size]


def _decode_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Stop(Exception):
    pass


def scan_pickle(
    data: bytes | bytearray | memoryview,
    *,
    member: str = "<pickle>",
    strict: bool = True,
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
) -> PickleReport:
    """Check a pickle stream statically, without executing any of it.

    Parameters
    ----------
    data : bytes-like
        The complete pickle stream (for a ``.npy`` member: the bytes after the
        header).
    member : str
        Name used in error messages.
    strict : bool
        Raise at the first problem (the loader's mode). With ``strict=False``
        problems are collected in the report and scanning continues where the
        stream still makes sense (the ``safenpz scan`` mode).
    max_depth, max_items : int
        Limits on MARK and tuple nesting, on the number of containers the
        stream would create and on the values hashing its dict keys and set
        items would visit (defaults: :data:`safenpz._limits.DEFAULT_LIMITS`,
        the defaults of :func:`safenpz.load`).

    Returns
    -------
    PickleReport

    Raises
    ------
    UnsafeFileError
        A forbidden opcode or a global outside :data:`SAFE_GLOBALS`
        (``strict=True`` only).
    FormatError
        Unknown opcode, truncated argument, bad memo index, trailing data,
        stack underflow, too many big-int dict keys.
    LimitError
        ``max_depth`` or ``max_items`` exceeded.

    Examples
    --------
    >>> import pickle
    >>> scan_pickle(pickle.dumps([1, 2, 3], protocol=2)).safe
    True
    >>> scan_pickle(b"cos\\nsystem\\n.", strict=False).problems[0].kind
    'unsafe'
    """
    buf = data if isinstance(data, bytes) else bytes(data)
    n = len(buf)
    report = PickleReport(length=n)

    def problem(
        kind: Literal["unsafe", "format", "limit"], op: str, off: int, msg: str
    ) -> None:
        full = f"member {member!r}: {msg} (opcode {op} at byte {off})"
        if strict:
            exc = {
                "unsafe": UnsafeFileError,
                "format": FormatError,
                "limit": LimitError,
            }[kind]
            raise exc(full + _ADVICE[kind])
        report.problems.append(Problem(kind, op, off, msg))
        if kind == "format":
            raise _Stop

    # t_a, t_b (the top two) name STACK_GLOBAL's arguments (string literals, directly or
    # through the memo); `st` is the abstract stack of nesting/hashing costs
    t_a: object = _UNKNOWN
    t_b: object = _UNKNOWN
    memo: dict[int, object] = {}
    st = _Stack(buf, max_depth, max_items)
    stack = st.items
    smemo = st.memo
    pos = 0
    start = 0
    name = "?"
    over_items = False
    skip = _SKIP.match
    ops = report.opcodes
    simple_counts: dict[int, int] = dict.fromkeys(
        [*_SIMPLE, *_MEMO_FIXED, 0x8C, 0x94, 0x58, 0x43], 0
    )
    plain_runs = 0
    try:
        try:
            while True:
                if pos >= n:
                    problem("format", "?", pos, "the pickle ends without STOP")
                code = buf[pos]
                start = pos
                if code in _SKIP_FIRST:
                    m = skip(buf, pos)
                    if m is not None:  # None: a truncated argument, reported below
                        plain_runs += 1
                        t_a = t_b = _UNKNOWN
                        pos = m.end()
                        # one literal: a plain item; more: one _Run item
                        if pos - start == _RUN_WIDTH[code]:
                            stack.append(_Num(start))
                        else:
                            stack.append(_Run(start, pos))
                        continue
                if code in _EMPTY_MUTABLE and buf[pos + 1 : pos + 2] == b"0":
                    # empty containers popped at once: no stack effect, only
                    # the container count (a hostile member is made of them)
                    m = _EMPTY_POP.match(buf, pos, min(n, pos + _POP_WINDOW))
                    assert m is not None
                    k = (m.end() - pos) // 2
                    if report.containers + k > max_items and not over_items:
                        over_items = True
                        at = pos + 2 * (max_items - report.containers)
                        problem(
                            "limit",
                            _OPCODES[buf[at]][0],
                            at,
                            f"creates more than max_items={max_items} containers",
                        )
                    report.containers += k
                    run = m.group()
                    for c in _EMPTY_MUTABLE:
                        simple_counts[c] += run.count(c)
                    ops["POP"] += k
                    t_a = t_b = _UNKNOWN
                    pos = m.end()
                    continue
                if code in _EMPTY_MUTABLE:  # EMPTY_LIST/DICT/SET: one per row
                    simple_counts[code] += 1
                    stack.append(_Lst() if code == 0x5D else _Node())
                    report.containers += 1
                    if report.containers > max_items and not over_items:
                        over_items = True
                        name = _OPCODES[code][0]
                        problem(
                            "limit",
                            name,
                            pos,
                            f"creates more than max_items={max_items} containers",
                        )
                    t_a = t_b = _UNKNOWN
                    pos += 1
                    continue
                if code == 0x8C and pos + 2 <= n:  # SHORT_BINUNICODE, the common string
                    end = pos + 2 + buf[pos + 1]
                    if end <= n:
                        simple_counts[code] += 1
                        t_a, t_b = t_b, pos  # its offset: read only if named
                        stack.append(0)
                        if end < n and buf[end] == 0x94:  # MEMOIZE, as protocol 4
                            simple_counts[0x94] += 1
                            smemo[len(memo)] = 0
                            memo[len(memo)] = pos
                            end += 1
                        pos = end
                        continue
                if code == 0x43 and pos + 2 <= n:  # SHORT_BINBYTES: never a name
                    end = pos + 2 + buf[pos + 1]
                    if end <= n:
                        simple_counts[code] += 1
                        t_a = t_b = _UNKNOWN
                        stack.append(0)
                        if end < n and buf[end] == 0x94:  # MEMOIZE
                            simple_counts[0x94] += 1
                            smemo[len(memo)] = 0
                            memo[len(memo)] = _UNKNOWN
                            end += 1
                        pos = end
                        continue
                if code == 0x94:  # MEMOIZE: CPython's index is the number of entries
                    simple_counts[code] += 1
                    name = "MEMOIZE"
                    st.put(len(memo), name)
                    memo[len(memo)] = t_b
                    pos += 1
                    continue
                if code == 0x58 and pos + 5 <= n:  # BINUNICODE (protocols 1-3)
                    end = pos + 5 + int.from_bytes(buf[pos + 1 : pos + 5], "little")
                    if end <= n:
                        simple_counts[code] += 1
                        t_a, t_b = t_b, pos
                        stack.append(0)
                        if end + 1 < n and buf[end] == 0x71 and buf[end + 1] <= n:
                            idx = buf[end + 1]  # BINPUT, as protocols 1-3
                            simple_counts[0x71] += 1
                            smemo[idx] = 0
                            memo[idx] = pos
                            end += 2
                        pos = end
                        continue
                if code in _MEMO_FIXED and pos + _MEMO_FIXED[code] < n:
                    width = _MEMO_FIXED[code]
                    idx = int.from_bytes(buf[pos + 1 : pos + 1 + width], "little")
                    name = _OPCODES[code][0]
                    if code in (0x68, 0x6A):  # BINGET, LONG_BINGET
                        simple_counts[code] += 1
                        st.get(idx, name)
                        t_a, t_b = t_b, memo.get(idx, _UNKNOWN)
                        pos += 1 + width
                        continue
                    if idx <= n:  # BINPUT, LONG_BINPUT; a bad index is reported below
                        simple_counts[code] += 1
                        st.put(idx, name)
                        memo[idx] = t_b
                        pos += 1 + width
                        continue
                if code in _REPEATS:  # APPEND, SETITEM, POP: often in long runs
                    m = _REPEATS[code].match(buf, pos)
                    assert m is not None
                    k = m.end() - pos
                    name = _OPCODES[code][0]
                    ops[name] += k
                    if code == 0x61:
                        st.appends(k)
                    elif code == 0x73:
                        st.setitems(k)
                    else:
                        st.pops(k)
                    t_a = t_b = _UNKNOWN
                    pos += k
                    continue
                simple = _SIMPLE.get(code)
                if simple is not None:
                    name, delta, container = simple
                    simple_counts[code] += 1
                    if delta > 0:
                        st.mark()
                        if len(st.marks) > max_depth:
                            problem(
                                "limit",
                                "MARK",
                                pos,
                                f"nesting deeper than max_depth={max_depth}",
                            )
                    elif delta < 0:
                        st.close(name)
                    elif code == 0x52:  # REDUCE
                        st.reduce()
                    elif code == 0x62:  # BUILD
                        st.build()
                    elif code in _TUPLE_N:
                        st.tuple_n(name, _TUPLE_N[code])
                    elif code == 0x29:  # EMPTY_TUPLE
                        stack.append(st.empty_tuple)
                    elif code == 0x5D:  # EMPTY_LIST
                        stack.append(_Lst())
                    else:  # EMPTY_DICT, EMPTY_SET
                        stack.append(_Node())
                    if container:
                        report.containers += 1
                        if report.containers > max_items and not over_items:
                            over_items = True
                            problem(
                                "limit",
                                name,
                                pos,
                                f"creates more than max_items={max_items} containers",
                            )
                    t_a = t_b = _UNKNOWN
                    pos += 1
                    continue
                entry = _OPCODES.get(code)
                if entry is None:
                    problem(
                        "format",
                        f"0x{code:02x}",
                        pos,
                        f"unknown pickle opcode byte 0x{code:02x}",
                    )
                    raise _Stop  # pragma: no cover - problem() raised already
                name, kind = entry
                ops[name] += 1
                pos += 1
                arg: bytes = b""
                arg2: bytes = b""
                if isinstance(kind, int):
                    if pos + kind > n:
                        problem(
                            "format",
                            name,
                            start,
                            f"truncated: needs {kind} argument bytes",
                        )
                    arg = buf[pos : pos + kind]
                    pos += kind
                elif kind in ("nl", "nl2"):
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        problem("format", name, start, "argument has no newline")
                    arg = buf[pos:nl]
                    pos = nl + 1
                    if kind == "nl2":
                        nl = buf.find(b"\n", pos)
                        if nl < 0:
                            problem("format", name, start, "argument has no newline")
                        arg2 = buf[pos:nl]
                        pos = nl + 1
                else:
                    width = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}[kind]
                    if pos + width > n:
                        problem("format", name, start, "truncated length prefix")
                    size = int.from_bytes(
                        buf[pos : pos + width], "little", signed=(kind == "len4s")
                    )
                    pos += width
                    if size < 0 or size > n - pos:
                        problem(
                            "format",
                            name,
                            start,
                            f"claims {size} bytes but only {n - pos} remain",
                        )
                    if name == "FRAME":
                        continue  # a frame only groups the opcodes that follow it
                    if name in _STRING_OPS or name in _INT_OPS:
                        arg = buf[pos : pos + size]
                    pos += size

                if name == "INST":
                    mod, nam = _decode_str(arg), _decode_str(arg2)
                    report.globals.append(GlobalRef(mod, nam, name, start, False))
                    problem(
                        "unsafe", name, start, f"INST would instantiate {mod}.{nam}"
                    )
                elif name in _FORBIDDEN:
                    problem("unsafe", name, start, _FORBIDDEN[name])
                if name == "STOP":
                    result = st.top(name)
                    if not _is_allowed_tail(buf, pos):
                        problem(
                            "format",
                            name,
                            start,
                            f"{n - pos} bytes of trailing data after STOP (only up to "
                            f"{MAX_TRAILING_WHITESPACE} bytes of whitespace are "
                            "accepted; other readers could see something else there)",
                        )
                    st.check_graph(result)
                    break
                if name == "PROTO":
                    report.protocol = arg[0]
                    if arg[0] > 5:
                        problem(
                            "format",
                            name,
                            start,
                            f"unsupported pickle protocol {arg[0]}",
                        )
                    t_a = t_b = _UNKNOWN
                    continue
                if name in ("GLOBAL", "STACK_GLOBAL"):
                    if name == "GLOBAL":
                        mod, nam = _decode_str(arg), _decode_str(arg2)
                    else:
                        a, b = t_a, t_b
                        a, b = _literal(buf, a), _literal(buf, b)
                        mod = _decode_str(a) if isinstance(a, bytes) else "?"
                        nam = _decode_str(b) if isinstance(b, bytes) else "?"
                    ok = (mod, nam) in SAFE_GLOBALS
                    report.globals.append(GlobalRef(mod, nam, name, start, ok))
                    if mod == "?" or nam == "?":
                        problem(
                            "unsafe",
                            name,
                            start,
                            "STACK_GLOBAL with a computed module or name; "
                            "only string literals are accepted",
                        )
                    elif not ok:
                        problem(
                            "unsafe",
                            name,
                            start,
                            f"global {mod}.{nam} is not in safenpz's table of "
                            "allowed constructors",
                        )
                    if name == "STACK_GLOBAL":  # refused above unless both names
                        st.pop(2, name)  # are literals, so they are on the stack
                    stack.append(_SETFN if (mod, nam) in _SET_GLOBALS else 0)
                    t_a = t_b = _UNKNOWN
                    continue
                if name in _STRING_OPS:
                    # text opcodes (protocol 0) are not followed: never names
                    value: object = _UNKNOWN if name in ("UNICODE", "STRING") else arg
                    t_a, t_b = t_b, value
                    stack.append(0)
                    continue
                if name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                    if name == "MEMOIZE":
                        idx = len(memo)  # CPython: the number of memo entries
                    elif name == "PUT":
                        if not arg.isdigit() or len(arg) > 19:
                            problem("format", name, start, f"bad memo index {arg!r}")
                        idx = int(arg)
                    else:
                        idx = int.from_bytes(arg, "little")
                    if idx > n:
                        problem(
                            "format",
                            name,
                            start,
                            f"memo index {idx} is larger than the stream",
                        )
                    st.put(idx, name)
                    memo[idx] = t_b
                    continue
                if name in ("BINGET", "LONG_BINGET", "GET"):
                    if name == "GET":
                        if not arg.isdigit() or len(arg) > 19:
                            problem("format", name, start, f"bad memo index {arg!r}")
                        idx = int(arg)
                    else:
                        idx = int.from_bytes(arg, "little")
                    st.get(idx, name)
                    t_a, t_b = t_b, memo.get(idx, _UNKNOWN)
                    continue
                # any other opcode: forget what the top of the stack was (DUP keeps it)
                if name == "DUP":
                    stack.append(st.top_item(name))
                    t_a = t_b
                    continue
                t_a = t_b = _UNKNOWN
                if name in _INT_OPS:
                    stack.append(_BIG if _is_big_int(name, arg) else _Num(start))
                elif name in ("INST", "OBJ"):
                    st.close(name)
                elif name == "FLOAT":
                    stack.append(_Num(start))
                else:
                    pops, push = _EFFECT[name]
                    st.fixed(name, pops, 0 if push else None)
        except _StackError as err:
            problem(err.kind, name, start, str(err))
    except _Stop:
        pass
    finally:
        if plain_runs:
            ops["(plain data)"] += plain_runs
        for code, count in simple_counts.items():
            if count:
                ops[_OPCODES[code][0]] += count
    return report


_ADVICE = {
    "unsafe": (
        ". safenpz never runs code from a file: plain data needs only NumPy's "
        "array constructors. `safenpz scan FILE` lists every global the file "
        "names; ask its author for a pickle-free copy (safenpz.save writes one)."
    ),
    "format": ". The file is damaged or not a pickle NumPy wrote.",
    "limit": ". If the file is trusted and really this large, pass a larger "
    "value for that keyword to safenpz.load.",
}
