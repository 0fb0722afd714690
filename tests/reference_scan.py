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
  ``+-(2**61 - 1)`` is "format".

:func:`reference_scan` returns the first problem as ``(kind, opcode, offset)``
or ``None``. Streams that :func:`pickletools.genops` cannot parse (unknown or
truncated opcodes) give ``("format", None, None)``.
"""

from __future__ import annotations

import pickletools
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


class RList:
    """A list: what dangerous values were appended to it."""

    def __init__(self) -> None:
        self.size = 0
        self.big = 0


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
        h, s, b, lists = 0, 1, 0, []
        for item in items:
            ih, isz, ib, il = _value(item)
            h, s, b = max(h, ih), s + isz, b + ib
            lists += il
        if h + 1 > max_depth + 1 or s > max_items:
            raise Problem(LIMIT)
        return ("T", h + 1, s, b, lists)

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
        for op, arg, pos in pickletools.genops(data):
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
                lits = recent if len(recent) == 2 else [None, None]
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
                stack.append(("T", 1, 1, 0, []))
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
            elif name == "SETITEM":
                key, _ = pop(2)
                top()
                charge([key])
            elif name == "BUILD":
                pop(1)
                top()
            elif name == "REDUCE":
                fn, args = pop(2)
                if fn == "SET" and isinstance(args, tuple) and args[0] == "T":
                    hashing[0] += args[2] + sum(lst.size for lst in args[4])
                    hashing[1] += args[3] + sum(lst.big for lst in args[4])
                    charge([])
                stack.append("leaf")
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
                    stack.append(lst)
                elif name == "APPENDS":
                    extend(top(), group)
                elif name in ("DICT", "SETITEMS"):
                    if name == "SETITEMS":
                        top()
                    charge(group[0::2])
                    if name == "DICT":
                        stack.append("leaf")
                elif name in ("FROZENSET", "ADDITEMS"):
                    if name == "ADDITEMS":
                        top()
                    charge(group)
                    if name == "FROZENSET":
                        stack.append("leaf")
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
