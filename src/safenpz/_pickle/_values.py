"""The abstract values of the static scanner.

The scanner never builds an object. Each value on its abstract stack is
reduced to what hashing it would cost and which containers it holds:

* ``0``: a value whose hash is cheap (a literal, a list, a dict, a result of
  ``REDUCE``, ...);
* :class:`Node`: a container (list, dict, set, ``REDUCE`` result), with the
  containers it holds (the edges of the containment graph);
* :class:`Tup`: a tuple, with its height (tuples inside tuples), its
  *expanded* size (what a hash visits, counting memo-shared items each time)
  and how many big ints it holds;
* :class:`Lst`: a list, with what dangerous values were appended to it (for
  ``set(list)``/``frozenset(list)``, which hash the items);
* :data:`BIG`: an int outside ``+-(2**61 - 1)`` (CPython reduces int hashes
  modulo that prime, so such keys can be made to collide: quadratic dicts);
* :class:`Num`: a numeric literal, decoded from its bytes only if hashed;
* :data:`SETFN`: the globals ``set`` and ``frozenset``;
* :class:`Run`: a run of plain literal pushes (:data:`PLAIN_RUN`) skipped in
  one regular expression match (counted only when an opcode needs its items
  one by one).

Opcode codes come from :mod:`safenpz._pickle._opcodes`, never from literals.
"""

from __future__ import annotations

import pickle
import re
import struct
from typing import Literal

from ._opcodes import BY_CODE, code

__all__ = [
    "BIG",
    "FLOAT_CODES",
    "HASHED",
    "LISTED",
    "MUTABLE",
    "NOVAL",
    "PLAIN_CODES",
    "PLAIN_FIRST",
    "PLAIN_RUN",
    "RUN_WIDTH",
    "SETFN",
    "UNK",
    "Lst",
    "Node",
    "Num",
    "Run",
    "StackError",
    "Tup",
    "nodes",
    "num_value",
    "run_count",
    "run_offs",
]

BININT1 = code("BININT1")
BININT2 = code("BININT2")
BININT = code("BININT")
BINFLOAT = code("BINFLOAT")
FLOAT = code("FLOAT")
NONE = code("NONE")
NEWTRUE = code("NEWTRUE")
NEWFALSE = code("NEWFALSE")
LONG1 = code("LONG1")
LONG4 = code("LONG4")

#: Plain, fixed-width literal pushes with nothing to check and no effect on the
#: names ``STACK_GLOBAL`` may see. A run of them is one item of the abstract
#: stack (a :class:`Run`).
PLAIN_CODES: tuple[int, ...] = (
    BININT1,
    BININT2,
    BININT,
    BINFLOAT,
    NONE,
    NEWTRUE,
    NEWFALSE,
)
#: Bytes one plain literal takes (its code byte and its argument).
RUN_WIDTH: dict[int, int] = {c: 1 + int(BY_CODE[c].arg) for c in PLAIN_CODES}
#: First bytes of what :data:`PLAIN_RUN` can consume.
PLAIN_FIRST = frozenset(PLAIN_CODES)


def _plain_token() -> bytes:
    """One plain literal, as a regular expression (``K.|M..|...|[N...]``)."""
    with_arg = [c for c in PLAIN_CODES if RUN_WIDTH[c] > 1]
    bare = [c for c in PLAIN_CODES if RUN_WIDTH[c] == 1]
    parts = [re.escape(bytes([c])) + b"." * (RUN_WIDTH[c] - 1) for c in with_arg]
    parts.append(b"[" + b"".join(re.escape(bytes([c])) for c in bare) + b"]")
    return b"|".join(parts)


_TOKEN = _plain_token()
#: A run of plain literals (skipped in one match by the scan loop).
PLAIN_RUN = re.compile(b"(?:" + _TOKEN + b")+", re.DOTALL)
_RUN_TOKEN = re.compile(_TOKEN, re.DOTALL)
#: Codes of the float literals (a :class:`Num` of one is hashed by value).
FLOAT_CODES = frozenset({BINFLOAT, FLOAT})


class StackError(Exception):
    """Internal: a refusal of the stack model (kind, message, limit fields)."""

    def __init__(
        self,
        message: str,
        kind: Literal["format", "limit"] = "format",
        *,
        limit: str | None = None,
        value: int | None = None,
        maximum: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: Literal["format", "limit"] = kind
        self.limit = limit
        self.value = value
        self.maximum = maximum


class Node:
    """A container (list, dict, set, tuple, REDUCE result): one per container
    the stream creates, shared through the memo and ``DUP`` like the object.
    ``kids`` are the containers it holds (edges of the containment graph);
    ``h`` is scratch for :func:`~safenpz._pickle._graph.check_graph` (0: not
    seen yet, -1: on the current path, else its height)."""

    __slots__ = ("h", "kids")

    def __init__(self, kids: list[Node] | None = None) -> None:
        self.kids: list[Node] = [] if kids is None else kids
        self.h = 0


class Tup(Node):
    """A tuple: its height, expanded size, big ints and lists (see above)."""

    __slots__ = ("big", "height", "lists", "size", "src", "val")

    def __init__(
        self,
        height: int,
        size: int,
        big: int,
        lists: tuple[Lst, ...],
        kids: list[Node] | None = None,
    ):
        self.kids = [] if kids is None else kids
        self.h = 0
        self.height = height
        self.size = size
        self.big = big
        self.lists = lists
        self.src: list[object] = []  # its items (abstract values), for its hash
        self.val: object = NOVAL  # its value, once needed (UNK: not static)


class Lst(Node):
    """A list: the expanded size and big ints of the tuples appended to it and
    the numbers and tuples themselves (what ``set(list)`` would hash)."""

    __slots__ = ("big", "size", "src")

    def __init__(self, kids: list[Node] | None = None) -> None:
        self.kids = [] if kids is None else kids
        self.h = 0
        self.size = 0  # expanded size of the tuples appended (leaves: 0)
        self.big = 0
        self.src: list[object] = []  # numbers and tuples appended (set(list))


class Run:
    """Plain literals at ``buf[start:end]``, pushed as one stack item."""

    __slots__ = ("count", "end", "offs", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.count = -1  # unknown until needed
        self.offs: list[int] | None = None  # offsets of its literals, if needed


class Num:
    """A numeric literal (int below 2**61, float, bool, None) at ``off``,
    decoded only if it is hashed (alone or in a tuple)."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


#: Containers an opcode may add to (tuples are immutable: CPython refuses
#: ``APPEND`` and the like on them, so no edge is added).
MUTABLE = frozenset({Node, Lst})
_NODE_TYPES = frozenset({Node, Lst, Tup})
#: An int beyond ``+-(2**61 - 1)``.
BIG = object()
#: The globals ``set`` and ``frozenset``.
SETFN = object()
#: What hashing counts by value (:data:`BIG`: by identity).
HASHED = frozenset({Tup, Num})
#: What a list records (for ``set(list)``).
LISTED = frozenset({Tup, Num, Run})
#: A :class:`Tup`'s value, not computed yet.
NOVAL = object()
#: A value the scanner cannot know statically.
UNK = object()


def run_count(buf: bytes, run: Run) -> int:
    """The number of literals in `run` (counted at C speed, once)."""
    if run.count < 0:
        run.count = _RUN_TOKEN.subn(b"", buf[run.start : run.end])[1]
    return run.count


def run_offs(buf: bytes, run: Run) -> list[int]:
    """The offsets of the literals of `run` (found once, when needed)."""
    if run.offs is None:
        run.offs = [m.start() for m in _RUN_TOKEN.finditer(buf, run.start, run.end)]
        if run.count < 0:
            run.count = len(run.offs)
    return run.offs


def _fixed_value(buf: bytes, off: int, op: int) -> object:
    """The value of the fixed-width literal `op` at `off`."""
    if op == BININT1:
        return buf[off + 1]
    if op == BININT2:
        return int.from_bytes(buf[off + 1 : off + 3], "little")
    if op == BININT:
        return int.from_bytes(buf[off + 1 : off + 5], "little", signed=True)
    if op == BINFLOAT:
        return struct.unpack(">d", buf[off + 1 : off + 9])[0]
    if op == NONE:
        return None
    return op == NEWTRUE  # NEWTRUE, NEWFALSE


def num_value(buf: bytes, off: int) -> object:
    """The value of the numeric literal opcode at `off`, decoded as the
    unpickler does (:data:`UNK` if it would refuse it)."""
    op = buf[off]
    if op in PLAIN_FIRST:
        return _fixed_value(buf, off, op)
    if op == LONG1:  # not beyond 2**61: those are BIG
        return int.from_bytes(
            buf[off + 2 : off + 2 + buf[off + 1]], "little", signed=True
        )
    if op == LONG4:
        size = int.from_bytes(buf[off + 1 : off + 5], "little", signed=True)
        return int.from_bytes(buf[off + 5 : off + 5 + size], "little", signed=True)
    # INT, LONG, FLOAT (text): the C unpickler's own reading of one literal
    # (of plain literal bytes: no global, no callable can be named here)
    end = buf.find(b"\n", off)
    try:
        return pickle.loads(buf[off : end + 1] + b".")
    except Exception:
        return UNK


def nodes(group: list[object]) -> list[Node]:
    """The containers among `group` (edges to add)."""
    if _NODE_TYPES.isdisjoint(map(type, group)):  # at C speed: most groups
        return []
    return [item for item in group if isinstance(item, Node)]
