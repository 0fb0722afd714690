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

:func:`reference_scan` returns the first problem as ``(kind, opcode, offset)``
or ``None``. Streams that :func:`pickletools.genops` cannot parse (unknown or
truncated opcodes) give ``("format", None, None)``.
"""

from __future__ import annotations

import pickletools
import warnings
from collections.abc import Iterator
from typing import Any

from safenpz._limits import DEFAULT_LIMITS
from safenpz._pickle_scan import SAFE_GLOBALS

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


def reference_scan(
    data: bytes,
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
) -> tuple[str, str | None, int | None] | None:
    n = len(data)
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    names: dict[int, Any] = {}  # memo index -> literal bytes (or None)
    recent: list[Any] = []  # values of the pushes since the last other opcode
    containers = 0
    hashing = [0, 0]
    first: tuple[str, str | None, int | None] | None = None

    def note(kind: str, name: str, pos: int) -> None:
        nonlocal first
        if first is None:
            first = (kind, name, pos)

    def pop(k: int) -> list[Any]:
        floor = marks[-1] if marks else 0
        if len(stack) - k < floor:
            raise Problem(FORMAT)
        out = stack[len(stack) - k :]
        del stack[len(stack) - k :]
        return out

    def top() -> Any:
        if len(stack) <= (marks[-1] if marks else 0):
            raise Problem(FORMAT)
        return stack[-1]

    def make_tuple(items: list[Any]) -> Any:
        kids = [i for i in items if _is_container(i)]
        h, s, b, lists = 0, 1, 0, []
        for item in items:
            ih, isz, ib, il = _value(item)
            h, s, b = max(h, ih), s + isz, b + ib
            lists += il
        if h + 1 > max_depth + 1 or s > max_items:
            raise Problem(LIMIT)
        return ("T", h + 1, s, b, lists, kids)

    def charge(items: list[Any]) -> None:
        for item in items:
            if (isinstance(item, tuple) and item and item[0] == "T") or item == "BIG":
                _, s, b, _ = _value(item)
                hashing[0] += s
                hashing[1] += b
        if hashing[0] > max_items:
            raise Problem(LIMIT)
        if hashing[1] > 4096:
            raise Problem(FORMAT)

    def extend(lst: Any, items: list[Any]) -> None:
        if isinstance(lst, RList):
            for item in items:
                if (isinstance(item, tuple) and item and item[0] == "T") or (
                    item == "BIG"
                ):
                    _, s, b, _ = _value(item)
                    lst.size += s
                    lst.big += b

    pos = 0
    name = "?"
    try:
        for op, arg, pos in _genops(data):
            name = op.name
            if name in FORBIDDEN:
                note("unsafe", name, pos)
                if name == "INST":
                    return first
            if name in CONTAINERS:
                containers += 1
                if containers > max_items:
                    note("limit", name, pos)
            if name == "MARK":
                marks.append(len(stack))
                if len(marks) > max_depth:
                    note("limit", name, pos)
                recent = []
                continue
            if name in ("PUT", "GET"):  # text index: ASCII digits only
                raw = data[pos + 1 : data.index(b"\n", pos)]
                if not raw.isdigit() or len(raw) > 19:
                    raise Problem(FORMAT)
            if name in PUTS:
                idx = len(memo) if name == "MEMOIZE" else int(arg)
                if idx > n:
                    raise Problem(FORMAT)
                memo[idx] = top()
                names[idx] = recent[-1] if recent else None
                continue
            if name == "FRAME":
                if arg > n - pos - 9:
                    raise Problem(FORMAT)
                continue
            if name == "PROTO":
                if arg > 5:
                    raise Problem(FORMAT)
                recent = []
                continue
            if name == "STOP":
                top()
                tail = data[pos + 1 :]
                if len(tail) > 16 or not set(tail) <= set(b" \t\r\n\x0b\x0c"):
                    raise Problem(FORMAT)
                graph = _graph_problem(stack[-1], max_depth)
                if graph is not None:
                    raise Problem(graph)
                return first
            if name in GETS:
                if arg not in memo:
                    raise Problem(FORMAT)
                stack.append(memo[arg])
                recent = [*recent, names.get(arg)][-2:]
                continue
            if name == "DUP":
                stack.append(top())
                recent = [*recent, recent[-1] if recent else None][-2:]
                continue
            if name in BINARY_STRINGS:
                text = arg.encode("latin-1") if isinstance(arg, str) else arg
                if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
                    text = arg.encode("utf-8", "surrogatepass")
                stack.append("leaf")
                recent = [*recent, text][-2:]
                continue
            if name == "GLOBAL":
                module, _, qual = arg.partition(" ")
                if (module, qual) not in SAFE_GLOBALS:
                    note("unsafe", name, pos)
                stack.append("SET" if (module, qual) in SETS else "leaf")
            elif name == "STACK_GLOBAL":
                lits: list[Any] = recent if len(recent) == 2 else [None, None]
                if not all(isinstance(x, bytes) for x in lits):
                    note("unsafe", name, pos)
                    return first  # the scanner stops there
                mod, qual = (_text(x) for x in lits)
                if (mod, qual) not in SAFE_GLOBALS:
                    note("unsafe", name, pos)
                pop(2)
                stack.append("SET" if (mod, qual) in SETS else "leaf")
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(make_tuple(pop(int(name[-1]))))
            elif name == "EMPTY_TUPLE":
                stack.append(("T", 1, 1, 0, [], []))
            elif name == "EMPTY_LIST":
                stack.append(RList())
            elif name in ("INT", "LONG", "LONG1", "LONG4"):
                big = isinstance(arg, int) and abs(arg) >= BIG
                stack.append("BIG" if big else "leaf")
            elif name == "POP":
                if marks and marks[-1] == len(stack):
                    marks.pop()
                else:
                    pop(1)
            elif name == "APPEND":
                item = pop(1)
                extend(top(), item)
                _add(top(), item)
            elif name == "SETITEM":
                key, value = pop(2)
                top()
                charge([key])
                _add(top(), [key, value])
            elif name == "BUILD":
                state = pop(1)
                _add(top(), state)
            elif name in ("EMPTY_DICT", "EMPTY_SET"):
                stack.append(RNode())
            elif name == "REDUCE":
                fn, args = pop(2)
                if fn == "SET" and isinstance(args, tuple) and args[0] == "T":
                    hashing[0] += args[2] + sum(lst.size for lst in args[4])
                    hashing[1] += args[3] + sum(lst.big for lst in args[4])
                    charge([])
                stack.append(RNode([args] if _is_container(args) else []))
            elif pickletools.markobject in op.stack_before:
                if not marks:
                    raise Problem(FORMAT)
                group = stack[marks[-1] :]
                del stack[marks.pop() :]
                if name == "TUPLE":
                    stack.append(make_tuple(group))
                elif name == "LIST":
                    lst = RList()
                    extend(lst, group)
                    _add(lst, group)
                    stack.append(lst)
                elif name == "APPENDS":
                    extend(top(), group)
                    _add(top(), group)
                elif name in ("DICT", "SETITEMS"):
                    if name == "SETITEMS":
                        _add(top(), group)
                    charge(group[0::2])
                    if name == "DICT":
                        stack.append(RNode([i for i in group if _is_container(i)]))
                elif name in ("FROZENSET", "ADDITEMS"):
                    if name == "ADDITEMS":
                        _add(top(), group)
                    charge(group)
                    if name == "FROZENSET":
                        stack.append(RNode([i for i in group if _is_container(i)]))
                elif name == "OBJ":
                    if not group:
                        raise Problem(FORMAT)
                    stack.append("leaf")
            else:
                pop(len(op.stack_before))
                if op.stack_after:
                    stack.append("leaf")
            recent = []
    except Problem as err:
        note(err.kind, name, pos)
        return first
    except ValueError:  # genops: unknown opcode, truncated or bad argument
        return first or ("format", None, None)
    return first or ("format", None, None)  # no STOP


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
