"""A straightforward reference for :func:`safenpz.scan_pickle`, for differential tests.

It walks the stream with :func:`pickletools.genops` (one Python step per
opcode, every push its own stack item, nothing skipped) and applies the rules
the scanner documents, written down independently:

* forbidden opcodes and globals outside the table are "unsafe"; a
  ``STACK_GLOBAL`` names the values of the last two pushes, which must be
  binary string literals (or memo gets of them), with only memo puts between
  them and the ``STACK_GLOBAL``;
* stack underflow, a MARK-closing opcode without a MARK, a get of a memo index
  never stored, a text memo index that is not ASCII digits, a memo put index
  beyond the stream, a protocol above 5, a frame longer than the rest, and
  anything but a little whitespace after ``STOP`` are "format";
* MARK nesting above ``max_depth``, more than ``max_items`` containers, tuples
  higher than ``max_depth + 1`` or expanding to more than ``max_items`` values,
  and hashing (dict keys, set items, ``set()``/``frozenset()`` arguments) more
  than ``max_items`` tuple values are "limit"; more than 4096 hashed ints beyond
  ``+-(2**61 - 1)`` is "format";
* at ``STOP`` (after the trailing-data check), on the graph of containers
  reachable from the result (an edge per container an opcode puts into
  another: the MARK closers, ``TUPLE1-3``, ``APPEND(S)``, ``SETITEM(S)``
  keys and values, ``ADDITEMS``; a ``REDUCE`` result holds its args, a
  ``BUILD`` target its state): a cycle is "format", else a path of more than
  ``max_depth + 1`` containers is "limit" (Kahn's topological order here, a
  depth-first search in the scanner).

The values are checked by running the stream (:mod:`reference_decode`: the
pure-Python unpickler with the decoder's constructors and final walk, plus
the scanner's own rules written down again, hash collisions included): the
first refusal of either half, in stream order, is the verdict (at one opcode,
an unsafe global first, then the value checks of the opcode, then the checks
above, then the hash counts and the final walk).

:func:`reference_scan` returns the first problem as ``(kind, opcode, offset)``
or ``None``. Streams that :func:`pickletools.genops` cannot parse (unknown or
truncated opcodes) give ``("format", None, None)``.
"""

from __future__ import annotations

import contextlib
import pickletools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from reference_decode import decode_verdict
from safenpz._limits import DEFAULT_LIMITS, Limits
from safenpz._pickle._globals import SAFE_GLOBALS

FORBIDDEN = {
    "PERSID",
    "BINPERSID",
    "EXT1",
    "EXT2",
    "EXT4",
    "INST",
    "OBJ",
    "NEWOBJ",
    "NEWOBJ_EX",
    "NEXT_BUFFER",
    "READONLY_BUFFER",
}
CONTAINERS = {
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
BINARY_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "BINSTRING",
    "SHORT_BINSTRING",
}
PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
GETS = {"GET", "BINGET", "LONG_BINGET"}
SETS = {("builtins", "set"), ("builtins", "frozenset")}
SETS |= {("__builtin__", n) for _, n in SETS}
BIG = 2**61 - 1
FORMAT = "format"
LIMIT = "limit"


class RNode:
    """A container other than a tuple: the containers put into it."""

    def __init__(self, kids: list[Any] | None = None) -> None:
        self.kids: list[Any] = list(kids or [])


class RList(RNode):
    """A list: what dangerous values were appended to it."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0
        self.big = 0


def _is_container(v: Any) -> bool:
    return isinstance(v, RNode) or (isinstance(v, tuple) and bool(v) and v[0] == "T")


def _kids(v: Any) -> list[Any]:
    return v[5] if isinstance(v, tuple) else v.kids


def _add(target: Any, items: list[Any]) -> None:
    """`target` (a list, dict, set or REDUCE result; tuples are immutable) now
    holds the containers among `items`."""
    if isinstance(target, RNode):
        _kids(target).extend(i for i in items if _is_container(i))


def _is_hashed(item: Any) -> bool:
    """A value whose hashing costs: a tuple, or an int beyond +-(2**61 - 1)."""
    return (isinstance(item, tuple) and bool(item) and item[0] == "T") or item == "BIG"


def _extend(lst: Any, items: list[Any]) -> None:
    """A list records what hashing its items would cost (``set(list)``)."""
    if isinstance(lst, RList):
        for item in items:
            if _is_hashed(item):
                _, s, b, _ = _value(item)
                lst.size += s
                lst.big += b


def _graph_problem(root: Any, max_depth: int) -> str | None:
    """Return "format" (a cycle), "limit" (too many containers deep) or None."""
    if not _is_container(root):
        return None
    seen = {id(root): root}
    todo = [root]
    while todo:
        for kid in _kids(todo.pop()):
            if id(kid) not in seen:
                seen[id(kid)] = kid
                todo.append(kid)
    indegree = dict.fromkeys(seen, 0)
    for node in seen.values():
        for kid in _kids(node):
            indegree[id(kid)] += 1
    longest = dict.fromkeys(seen, 1)
    ready = [node for node in seen.values() if indegree[id(node)] == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for kid in _kids(node):
            longest[id(kid)] = max(longest[id(kid)], longest[id(node)] + 1)
            indegree[id(kid)] -= 1
            if indegree[id(kid)] == 0:
                ready.append(kid)
    if done < len(seen):
        return FORMAT
    return LIMIT if max(longest.values()) > max_depth + 1 else None


class Problem(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


def _value(v: Any) -> tuple[int, int, int, list[RList]]:
    """(tuple height, expanded size, big ints, lists) of a stack value."""
    if isinstance(v, tuple) and v and v[0] == "T":
        return v[1], v[2], v[3], v[4]
    if v == "BIG":
        return 0, 1, 1, []
    if isinstance(v, RList):
        return 0, 1 + v.size, v.big, [v]
    return 0, 1, 0, []


def _genops(data: bytes) -> Iterator[tuple[Any, Any, int]]:
    """``pickletools.genops``, with its warnings about the argument text (e.g.
    an invalid escape in a mutated protocol-0 string) kept out of the test
    run's ``filterwarnings = error``: the scanner never decodes such text."""
    gen = pickletools.genops(data)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                item = next(gen)
            except StopIteration:
                return
        yield item  # type: ignore[misc]


Verdict = tuple[str, str | None, int | None] | None
_UNPARSED: Verdict = ("format", None, None)


class _Scan:
    """The state of one reference scan. Each opcode goes to one small handler
    (the dispatch tables below); a handler returns True when the scan ends
    there (its verdict is the first problem noted)."""

    def __init__(self, data: bytes, max_depth: int, max_items: int) -> None:
        self.data = data
        self.n = len(data)
        self.max_depth = max_depth
        self.max_items = max_items
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.names: dict[int, Any] = {}  # memo index -> literal bytes (or None)
        self.recent: list[Any] = []  # values of the pushes since the last other opcode
        self.containers = 0
        self.hashing = [0, 0]
        self.first: Verdict = None
        self.name = "?"
        self.pos = 0

    # -- the stack model ------------------------------------------------------

    def note(self, kind: str, name: str, pos: int) -> None:
        if self.first is None:
            self.first = (kind, name, pos)

    def pop(self, k: int) -> list[Any]:
        stack = self.stack
        floor = self.marks[-1] if self.marks else 0
        if len(stack) - k < floor:
            raise Problem(FORMAT)
        out = stack[len(stack) - k :]
        del stack[len(stack) - k :]
        return out

    def top(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise Problem(FORMAT)
        return self.stack[-1]

    def make_tuple(self, items: list[Any]) -> Any:
        kids = [i for i in items if _is_container(i)]
        h, s, b, lists = 0, 1, 0, []
        for item in items:
            ih, isz, ib, il = _value(item)
            h, s, b = max(h, ih), s + isz, b + ib
            lists += il
        if h + 1 > self.max_depth + 1 or s > self.max_items:
            raise Problem(LIMIT)
        return ("T", h + 1, s, b, lists, kids)

    def charge(self, items: list[Any]) -> None:
        for item in items:
            if _is_hashed(item):
                _, s, b, _ = _value(item)
                self.hashing[0] += s
                self.hashing[1] += b
        if self.hashing[0] > self.max_items:
            raise Problem(LIMIT)
        if self.hashing[1] > 4096:
            raise Problem(FORMAT)

    def push_recent(self, value: Any) -> None:
        self.recent = [*self.recent, value][-2:]

    # -- the walk -------------------------------------------------------------

    def run(self) -> Verdict:
        try:
            for op, arg, pos in _genops(self.data):
                self.name, self.pos = op.name, pos
                if self.step(op, arg, pos):
                    return self.first
        except Problem as err:
            self.note(err.kind, self.name, self.pos)
            return self.first
        except ValueError:  # genops: unknown opcode, truncated or bad argument
            return self.first or _UNPARSED
        return self.first or _UNPARSED  # no STOP

    def step(self, op: Any, arg: Any, pos: int) -> bool:
        name = op.name
        if name in FORBIDDEN:
            self.note("unsafe", name, pos)
            if name == "INST":
                return True
        if name in CONTAINERS:
            self.containers += 1
            if self.containers > self.max_items:
                self.note("limit", name, pos)
        if name in _KEEPS_RECENT:  # these set ``recent`` themselves
            return _KEEPS_RECENT[name](self, arg, pos)
        if name in _HANDLERS:
            stop = _HANDLERS[name](self, arg, pos)
        elif pickletools.markobject in op.stack_before:
            stop = self.mark_group(name)
        else:
            self.pop(len(op.stack_before))
            if op.stack_after:
                self.stack.append("leaf")
            stop = False
        self.recent = []
        return stop

    # -- opcodes that set ``recent`` themselves ----------------------------------

    def mark(self, arg: Any, pos: int) -> bool:
        self.marks.append(len(self.stack))
        if len(self.marks) > self.max_depth:
            self.note("limit", "MARK", pos)
        self.recent = []
        return False

    def text_index(self, pos: int) -> None:
        """``PUT``/``GET``: a text index of ASCII digits only."""
        raw = self.data[pos + 1 : self.data.index(b"\n", pos)]
        if not raw.isdigit() or len(raw) > 19:
            raise Problem(FORMAT)

    def put(self, arg: Any, pos: int) -> bool:
        if self.name == "PUT":
            self.text_index(pos)
        idx = len(self.memo) if self.name == "MEMOIZE" else int(arg)
        if idx > self.n:
            raise Problem(FORMAT)
        self.memo[idx] = self.top()
        self.names[idx] = self.recent[-1] if self.recent else None
        return False

    def get(self, arg: Any, pos: int) -> bool:
        if self.name == "GET":
            self.text_index(pos)
        if arg not in self.memo:
            raise Problem(FORMAT)
        self.stack.append(self.memo[arg])
        self.push_recent(self.names.get(arg))
        return False

    def frame(self, arg: Any, pos: int) -> bool:
        if arg > self.n - pos - 9:
            raise Problem(FORMAT)
        return False

    def proto(self, arg: Any, pos: int) -> bool:
        if arg > 5:
            raise Problem(FORMAT)
        self.recent = []
        return False

    def stop(self, arg: Any, pos: int) -> bool:
        self.top()
        tail = self.data[pos + 1 :]
        if len(tail) > 16 or not set(tail) <= set(b" \t\r\n\x0b\x0c"):
            raise Problem(FORMAT)
        graph = _graph_problem(self.stack[-1], self.max_depth)
        if graph is not None:
            raise Problem(graph)
        return True

    def dup(self, arg: Any, pos: int) -> bool:
        self.stack.append(self.top())
        self.push_recent(self.recent[-1] if self.recent else None)
        return False

    def binary_string(self, arg: Any, pos: int) -> bool:
        text = arg.encode("latin-1") if isinstance(arg, str) else arg
        if self.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            text = arg.encode("utf-8", "surrogatepass")
        self.stack.append("leaf")
        self.push_recent(text)
        return False

    # -- opcodes after which ``recent`` is empty ----------------------------------

    def global_(self, arg: Any, pos: int) -> bool:
        module, _, qual = arg.partition(" ")
        if (module, qual) not in SAFE_GLOBALS:
            self.note("unsafe", "GLOBAL", pos)
        self.stack.append("SET" if (module, qual) in SETS else "leaf")
        return False

    def stack_global(self, arg: Any, pos: int) -> bool:
        lits: list[Any] = self.recent if len(self.recent) == 2 else [None, None]
        if not all(isinstance(x, bytes) for x in lits):
            self.note("unsafe", "STACK_GLOBAL", pos)
            return True  # the scanner stops there
        mod, qual = (_text(x) for x in lits)
        if (mod, qual) not in SAFE_GLOBALS:
            self.note("unsafe", "STACK_GLOBAL", pos)
        self.pop(2)
        self.stack.append("SET" if (mod, qual) in SETS else "leaf")
        return False

    def tuple_n(self, arg: Any, pos: int) -> bool:
        self.stack.append(self.make_tuple(self.pop(int(self.name[-1]))))
        return False

    def empty_tuple(self, arg: Any, pos: int) -> bool:
        self.stack.append(("T", 1, 1, 0, [], []))  # a new one: identity counts
        return False

    def empty_list(self, arg: Any, pos: int) -> bool:
        self.stack.append(RList())
        return False

    def empty_mapping(self, arg: Any, pos: int) -> bool:
        self.stack.append(RNode())
        return False

    def integer(self, arg: Any, pos: int) -> bool:
        big = isinstance(arg, int) and abs(arg) >= BIG
        self.stack.append("BIG" if big else "leaf")
        return False

    def pop_(self, arg: Any, pos: int) -> bool:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()
        else:
            self.pop(1)
        return False

    def append(self, arg: Any, pos: int) -> bool:
        item = self.pop(1)
        _extend(self.top(), item)
        _add(self.top(), item)
        return False

    def setitem(self, arg: Any, pos: int) -> bool:
        key, value = self.pop(2)
        self.top()
        self.charge([key])
        _add(self.top(), [key, value])
        return False

    def build(self, arg: Any, pos: int) -> bool:
        state = self.pop(1)
        _add(self.top(), state)
        return False

    def reduce(self, arg: Any, pos: int) -> bool:
        fn, args = self.pop(2)
        if fn == "SET" and isinstance(args, tuple) and args[0] == "T":
            self.hashing[0] += args[2] + sum(lst.size for lst in args[4])
            self.hashing[1] += args[3] + sum(lst.big for lst in args[4])
            self.charge([])
        self.stack.append(RNode([args] if _is_container(args) else []))
        return False

    # -- opcodes that take the items above the last MARK ------------------------

    def mark_group(self, name: str) -> bool:
        if not self.marks:
            raise Problem(FORMAT)
        group = self.stack[self.marks[-1] :]
        del self.stack[self.marks.pop() :]
        if name in _GROUPS:
            _GROUPS[name](self, group)
        return False

    def tuple_(self, group: list[Any]) -> None:
        self.stack.append(self.make_tuple(group))

    def list_(self, group: list[Any]) -> None:
        lst = RList()
        _extend(lst, group)
        _add(lst, group)
        self.stack.append(lst)

    def appends(self, group: list[Any]) -> None:
        _extend(self.top(), group)
        _add(self.top(), group)

    def dict_(self, group: list[Any]) -> None:
        self.charge(group[0::2])
        self.stack.append(RNode([i for i in group if _is_container(i)]))

    def setitems(self, group: list[Any]) -> None:
        _add(self.top(), group)
        self.charge(group[0::2])

    def frozenset_(self, group: list[Any]) -> None:
        self.charge(group)
        self.stack.append(RNode([i for i in group if _is_container(i)]))

    def additems(self, group: list[Any]) -> None:
        _add(self.top(), group)
        self.charge(group)

    def obj(self, group: list[Any]) -> None:
        if not group:
            raise Problem(FORMAT)
        self.stack.append("leaf")


_Handler = Callable[[_Scan, Any, int], bool]

#: opcodes that set ``recent`` themselves (the others leave it empty)
_KEEPS_RECENT: dict[str, _Handler] = {
    "MARK": _Scan.mark,
    **dict.fromkeys(PUTS, _Scan.put),
    "FRAME": _Scan.frame,
    "PROTO": _Scan.proto,
    "STOP": _Scan.stop,
    **dict.fromkeys(GETS, _Scan.get),
    "DUP": _Scan.dup,
    **dict.fromkeys(BINARY_STRINGS, _Scan.binary_string),
}
_HANDLERS: dict[str, _Handler] = {
    "GLOBAL": _Scan.global_,
    "STACK_GLOBAL": _Scan.stack_global,
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), _Scan.tuple_n),
    "EMPTY_TUPLE": _Scan.empty_tuple,
    "EMPTY_LIST": _Scan.empty_list,
    **dict.fromkeys(("INT", "LONG", "LONG1", "LONG4"), _Scan.integer),
    "POP": _Scan.pop_,
    "APPEND": _Scan.append,
    "SETITEM": _Scan.setitem,
    "BUILD": _Scan.build,
    **dict.fromkeys(("EMPTY_DICT", "EMPTY_SET"), _Scan.empty_mapping),
    "REDUCE": _Scan.reduce,
}
#: the MARK-closing opcodes, given the items above the mark (POP_MARK: none)
_GROUPS: dict[str, Callable[[_Scan, list[Any]], None]] = {
    "TUPLE": _Scan.tuple_,
    "LIST": _Scan.list_,
    "APPENDS": _Scan.appends,
    "DICT": _Scan.dict_,
    "SETITEMS": _Scan.setitems,
    "FROZENSET": _Scan.frozenset_,
    "ADDITEMS": _Scan.additems,
    "OBJ": _Scan.obj,
}


def reference_scan(
    data: bytes,
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
) -> Verdict:
    """The first problem of `data` as ``(kind, opcode, offset)``, or None (see
    the module docstring)."""
    static = _Scan(data, max_depth, max_items).run()
    if static == _UNPARSED:
        return static
    spans: list[tuple[str, int]] = []
    with contextlib.suppress(ValueError):  # the opcodes genops can read
        spans.extend((op.name, pos) for op, _, pos in _genops(data))
    limits = Limits(max_depth=max_depth, max_items=max_items)
    found: list[tuple[int, float, Verdict]] = []
    stop_at = None
    if static is not None:
        kind, _, at = static
        assert at is not None  # parsed
        found.append((at, -1 if kind == "unsafe" else 1, static))
        stop_at = at if kind == "limit" else at + 1
    dynamic = decode_verdict(data, spans, limits, stop_at)
    if dynamic is not None:
        kind, name, pos, rank = dynamic
        found.append((pos, rank, (kind, name, pos)))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
