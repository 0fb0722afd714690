"""The abstract values of the static scanner.

The scanner never builds an object. Each value on its abstract stack is
reduced to what hashing it would cost and which containers it holds:

* an ``int``: the offset of the string or bytes literal opcode that pushed
  it (read only if an argument or a key needs its value);
* :data:`LEAF`: any other value whose hash is cheap;
* :class:`Node`: a container (list, dict, set, frozenset, OrderedDict), with
  its kind and the containers it holds (the edges of the containment graph);
* :class:`Made`: what a ``REDUCE`` of an allowed constructor makes (an array
  or dtype to be built, a NumPy scalar, bytes, a complex ...), with what the
  scanner knows of it statically;
* :class:`Tup`: a tuple, with its height (tuples inside tuples), its
  *expanded* size (what a hash visits, counting memo-shared items each time)
  and how many big ints it holds;
* :class:`Lst`: a list, with what dangerous values were appended to it (for
  ``set(list)``/``frozenset(list)``, which hash the items);
* :class:`Big`: an int outside ``+-(2**61 - 1)`` (CPython reduces int hashes
  modulo that prime, so such keys can be made to collide: quadratic dicts);
* :class:`Num`: a numeric literal, decoded from its bytes only if needed;
* :class:`Glob`: an allowed global (a constructor, by its role);
* :class:`Barr`: a ``bytearray`` literal (``BYTEARRAY8``);
* :class:`Run`: a run of plain literal pushes (:data:`PLAIN_RUN`) skipped in
  one regular expression match (counted only when an opcode needs its items
  one by one).

Opcode codes come from :mod:`safenpz._pickle._opcodes`, never from literals.
"""

from __future__ import annotations

import pickle
import re
import struct
from typing import Any, Literal

from ._globals import ROLES
from ._opcodes import BY_CODE, code
from ._rules import Ref

__all__ = [
    "FLOAT_CODES",
    "HASHED",
    "LEAF",
    "LISTED",
    "MUTABLE",
    "NOVAL",
    "PLAIN_CODES",
    "PLAIN_FIRST",
    "PLAIN_RUN",
    "RUN_WIDTH",
    "UNK",
    "Barr",
    "Big",
    "Glob",
    "Lst",
    "Made",
    "Node",
    "Num",
    "Run",
    "StackError",
    "Tup",
    "glob_of",
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
        self.delta = 0  # in a run of one-byte opcodes, which one refused


class Node:
    """A container (list, dict, set, frozenset, OrderedDict, tuple, REDUCE
    result): one per container the stream creates, shared through the memo
    and ``DUP`` like the object.

    ``kids`` are the containers it holds (edges of the containment graph);
    ``h`` is scratch for :func:`~safenpz._pickle._graph.check_graph` (0: not
    seen yet, -1: on the current path, else its height). ``kind`` is what it
    is (``"dict"``, ``"set"``, ``"frozenset"``, ``"OrderedDict"``; ``"list"``,
    ``"tuple"`` for the subclasses); ``n`` counts the items put into it;
    ``items`` records them (the key, value pairs of a dict; the items of a
    frozenset) while they are few (``None`` beyond
    :data:`~safenpz._pickle._static.RECORDED`); ``bad`` is why the decoder's
    final walk would refuse it if the result holds it (a global stored as a
    value, a key that is an array).
    """

    __slots__ = ("bad", "h", "items", "kids", "kind", "n")

    def __init__(self, kids: list[Node] | None = None, kind: str = "dict") -> None:
        self.kids: list[Node] = [] if kids is None else kids
        self.h = 0
        self.kind = kind
        self.n = 0
        self.items: list[object] | None = []
        self.bad: str | None = None


class Tup(Node):
    """A tuple: its height, expanded size, big ints and lists (see above)."""

    __slots__ = ("aval", "big", "flags", "height", "lists", "size", "src", "val")

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
        self.kind = "tuple"
        self.n = 0
        self.items = None
        self.bad = None
        self.flags = 0  # what it holds: see _static.UNHASHABLE, ARRAYISH, MUTABLE_IN
        self.aval: object = NOVAL  # its value as an argument (see _static)
        self.height = height
        self.size = size
        self.big = big
        self.lists = lists
        self.src: list[object] = []  # its items (abstract values), for its hash
        self.val: object = NOVAL  # its value, once needed (UNK: not static)


class Lst(Node):
    """A list: its items (``src``, as appended: what ``set(list)`` would hash
    and what an argument's value is read from) and the expanded size and big
    ints of the tuples among them. ``frozen``: it is an object array's items
    (the decoder keeps the list until its final walk: it may not grow)."""

    __slots__ = ("big", "frozen", "size", "src")

    def __init__(self, kids: list[Node] | None = None) -> None:
        self.kids = [] if kids is None else kids
        self.h = 0
        self.kind = "list"
        self.n = 0
        self.items = None
        self.bad = None
        self.frozen = False
        self.size = 0  # expanded size of the tuples appended (leaves: 0)
        self.big = 0
        self.src: list[object] = []  # the items appended (abstract values)


class Made(Node):
    """What a ``REDUCE`` of an allowed constructor made, other than a
    container: ``role`` (:data:`safenpz._pickle._globals.ROLES`: ``"array"``
    for ``_reconstruct``, ``"dtype"``, ``"scalar"``, ``"frombuffer"``,
    ``"complex"``, ``"bytes"``, ``"encode"``, ``"bytearray"``), ``val`` its
    value as the constructors see it (a real value, or a
    :class:`~safenpz._pickle._rules.Ref` standing for the decoder's object),
    and for arrays and dtypes what ``BUILD`` made of them (``built``,
    ``dtype``, ``shape``, ``data``: an object array's item list)."""

    __slots__ = ("built", "data", "dtype", "raw", "role", "shape", "val")

    def __init__(self, role: str, val: object, kids: list[Node]) -> None:
        self.kids = kids
        self.h = 0
        self.kind = role
        self.n = 0
        self.items = None
        self.bad = None
        self.role = role
        self.val = val
        self.built = role not in ("array", "dtype")
        self.dtype: Any = None
        self.shape: tuple[int, ...] | None = None
        self.data: Lst | None = None
        self.raw: object = None  # a scalar's data, a dtype's type code


class Glob:
    """An allowed global (``role`` as in :data:`~safenpz._pickle._globals.ROLES`;
    ``"?"`` for one outside the table, refused) and its stand-in as a value."""

    __slots__ = ("qualname", "ref", "role")

    def __init__(self, role: str, qualname: str) -> None:
        self.role = role
        self.qualname = qualname
        self.ref = Ref("_Constructor", f"<safenpz constructor for {qualname}>")


_GLOBS = {key: Glob(role, ".".join(key)) for key, role in ROLES.items()}


def glob_of(module: str, name: str) -> Glob:
    """The :class:`Glob` of `module`.`name` (one per allowed global)."""
    glob = _GLOBS.get((module, name))
    return Glob("?", f"{module}.{name}") if glob is None else glob


class Big:
    """An int literal beyond ``+-(2**61 - 1)`` at ``off`` (``LONG1``,
    ``LONG4``, or text ``INT``/``LONG``)."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


class Barr:
    """A ``bytearray`` literal (``BYTEARRAY8``) at ``off``: mutable, not
    hashable."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


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
_NODE_TYPES = frozenset({Node, Lst, Tup, Made})
#: What hashing counts by value (:class:`Big`: by count).
HASHED = frozenset({Tup, Num})
#: What a list's hashing cost depends on (for ``set(list)``).
LISTED = frozenset({Tup, Num, Run})
#: Any value the scanner pushes that is not a container, a literal offset or
#: a number (what a literal is for every other opcode).
LEAF = object()
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
    if op == LONG1:
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
