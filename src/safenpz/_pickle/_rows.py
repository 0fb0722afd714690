"""Rows: runs of small containers of literals, for the scanner's bulk path.

Most of a list of records is *rows*: a dict or a list, memoised, filled with
string and number literals (and memo gets of strings) in one MARK group::

    ROW  := EMPTY_DICT PUT (MARK (KEY VALUE)+ SETITEMS)?
          | EMPTY_LIST PUT (MARK ITEM+ APPENDS)?
    KEY  := STRING PUT? | GET          VALUE := KEY | NUMBER
    ITEM := STRING PUT? | NUMBER+ | GET

(``STRING``: text, bytes or a Python 2 string; ``NUMBER``: a plain literal;
``GET``: ``BINGET``/``LONG_BINGET`` of a string). Each row pushes one
container on the stack and leaves its MARK, its items and its closer behind,
so a run of rows has the same effect wherever the loop meets it:
:func:`find_rows` finds them in a chunk's opcodes (one regular expression
over one symbol per opcode), :func:`plan_rows` computes what the loop's
handlers would do with one (the containers and what they hold, the memo
entries, the counts), or None where the loop must decide (the container past
``max_items``, a MARK deeper than ``max_depth``, a memo index that is not
the next free one, a get of anything but a string, the first Python 2 string
of the stream).

What the handlers do with a row is what :class:`~safenpz._pickle._stack.Stack`
does with a fresh container and literals: a dict records its items
(:meth:`~safenpz._pickle._stack.Stack.fill`: the count, the items while
fewer than :data:`~safenpz._pickle._static.RECORDED`; string keys cost no
hashing), a list its items (``src``); neither holds a container, so no edge
of the containment graph is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._opcodes import code
from ._runs import named, put_indices, py2_counts
from ._state import Scan
from ._static import RECORDED
from ._values import PLAIN_CODES, RUN_WIDTH, UNK, Lst, Node, Num, Run

__all__ = ["COUNTED_ROWS", "RowsPlan", "find_rows", "plan_rows"]

MEMOIZE = code("MEMOIZE")
BINGET = code("BINGET")
LONG_BINGET = code("LONG_BINGET")
EMPTY_DICT = code("EMPTY_DICT")
EMPTY_LIST = code("EMPTY_LIST")

_SYMBOLS = {
    "d": ["EMPTY_DICT"],
    "l": ["EMPTY_LIST"],
    "p": ["MEMOIZE", "BINPUT", "LONG_BINPUT"],
    "(": ["MARK"],
    "u": ["SETITEMS"],
    "e": ["APPENDS"],
    "s": ["SHORT_BINUNICODE", "BINUNICODE", "SHORT_BINBYTES"],
    "y": ["SHORT_BINSTRING", "BINSTRING"],
    "g": ["BINGET", "LONG_BINGET"],
}


def _table() -> NDArray[np.uint8]:
    sym = np.full(256, ord("x"), np.uint8)
    for s, names in _SYMBOLS.items():
        sym[[code(n) for n in names]] = ord(s)
    sym[list(PLAIN_CODES)] = ord("n")
    return sym


#: one symbol per opcode code (``x``: anything a row does not hold)
SYM = _table()
_KEY = rb"(?:[sy]p?|g)"
_ROW = (
    rb"dp(?:\((?:" + _KEY + rb"(?:[sy]p?|n|g))+u)?"
    rb"|lp(?:\((?:[sy]p?|n|g)+e)?"
)
_STRING_SYMS = np.array([ord("s"), ord("y")], np.uint8)
_WIDTH = np.zeros(256, np.int64)  # bytes one plain literal takes
_WIDTH[list(RUN_WIDTH)] = list(RUN_WIDTH.values())
#: a run of rows: every symbol has one parse (no repetition nested in
#: another), so a match costs time linear in what it reads, however hostile
#: the stream; consecutive numbers of a list are one item (see _items)
_ROWS = re.compile(rb"(?:" + _ROW + rb")+")
#: codes the loop counts in ``Scan.counts`` inside rows
_COUNTED_NAMES = [
    *("EMPTY_DICT", "EMPTY_LIST", "MEMOIZE", "BINPUT", "LONG_BINPUT", "MARK"),
    *("SETITEMS", "APPENDS", "SHORT_BINUNICODE", "BINUNICODE", "SHORT_BINBYTES"),
    *("BINGET", "LONG_BINGET"),
]
#: codes the loop counts in ``Scan.counts`` inside rows
COUNTED_ROWS = np.zeros(256, bool)
COUNTED_ROWS[[code(name) for name in _COUNTED_NAMES]] = True


def find_rows(
    codes: NDArray[np.uint8], ok: NDArray[np.bool_], min_rows: int
) -> list[tuple[int, int]]:
    """The runs of at least `min_rows` rows among `codes` (`ok`: the opcodes
    the bulk path may take, see :func:`~safenpz._pickle._runs.find_runs`),
    as ``(first, end)`` opcode indices."""
    sym = SYM[codes]
    sym[~ok] = ord("x")
    raw = sym.tobytes()
    out = []
    for m in _ROWS.finditer(raw):
        a, b = m.span()
        if raw.count(b"d", a, b) + raw.count(b"l", a, b) >= min_rows:
            out.append((a, b))
    return out


@dataclass
class RowsPlan:
    """What a run of rows does (see :func:`plan_rows`)."""

    nodes: list[object]
    base: int
    vals: list[object]
    names: list[object]
    counts: list[tuple[int, int]]
    named_counts: list[tuple[str, int]]
    plain: int

    def apply(self, sc: Scan) -> range:
        """Change the scan's state; returns the memo indices of `vals`
        (`names`: their names), left to the caller."""
        sc.stack.extend(self.nodes)
        for c, count in self.counts:
            sc.counts[c] += count
        for name, count in self.named_counts:
            sc.ops[name] += count
        sc.report.containers += len(self.nodes)
        sc.plain_runs += self.plain
        sc.t_a = sc.t_b = UNK
        return range(self.base, self.base + len(self.vals))


def plan_rows(
    sc: Scan,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    base: int,
) -> RowsPlan | None:
    """What the loop's handlers do with the rows at `pos` (opcodes `codes`,
    each ending at `after`), the memo's next free index being `base`; None
    where the loop must decide."""
    sym = SYM[codes]
    rows = np.flatnonzero((sym == ord("d")) | (sym == ord("l")))
    if not sc.over_items and sc.report.containers + len(rows) > sc.max_items:
        return None  # the container past max_items: the loop reports it
    if (sym == ord("(")).any() and len(sc.st.marks) + 1 > sc.max_depth:
        return None
    named_counts = py2_counts(codes)
    if any(name not in sc.ops for name, _ in named_counts):
        return None  # the first of them: the loop's (the report's order)
    puts = np.flatnonzero(sym == ord("p"))
    if not _new_indices(sc, pos, codes, puts, base):
        return None
    items = _items(sc, pos, after, codes, sym, puts, base)
    if items is None:
        return None
    values, heads = items
    nodes = _nodes(sym, rows, heads, values)
    vals, names = _put_values(sc.buf, pos, codes, sym, puts, rows, nodes)
    counts = np.bincount(codes[COUNTED_ROWS[codes]], minlength=256)
    plain = int(np.count_nonzero(sym[heads] == ord("n")))
    return RowsPlan(
        nodes=nodes,
        base=base,
        vals=vals,
        names=names,
        counts=[(c, int(counts[c])) for c in np.flatnonzero(counts).tolist()],
        named_counts=named_counts,
        plain=plain,
    )


def _new_indices(
    sc: Scan,
    pos: NDArray[np.int64],
    codes: NDArray[np.uint8],
    puts: NDArray[np.intp],
    base: int,
) -> bool:
    """Whether the puts at `puts` store the next free indices from `base`
    on, in order (each a new entry), within the stream."""
    if not len(puts):
        return True
    new = range(base, base + len(puts))
    if new[-1] > sc.n or not sc.names.keys().isdisjoint(new):
        return False
    explicit = np.flatnonzero(codes[puts] != MEMOIZE)
    if len(explicit):
        got = put_indices(sc.buf, pos[puts[explicit]], codes[puts[explicit]])
        return bool((got == base + explicit).all())
    return True


def _items(
    sc: Scan,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    sym: NDArray[np.uint8],
    puts: NDArray[np.intp],
    base: int,
) -> tuple[list[object], NDArray[np.intp]] | None:
    """The stack items the rows' literals and gets push, in order, and the
    opcodes that push them (a run of numbers: its first); None if a get is
    not of a string stored before it."""
    m = len(sym)
    prev = np.zeros(m, np.uint8)
    prev[1:] = sym[:-1]
    n = sym == ord("n")
    heads = np.flatnonzero(
        (sym == ord("s"))
        | (sym == ord("y"))
        | (sym == ord("g"))
        | (n & (prev != ord("n")))
    )
    values: list[object] = pos[heads].tolist()
    kind = sym[heads]
    plain = np.flatnonzero(kind == ord("n"))
    if len(plain):
        other = np.append(np.flatnonzero(~n), m)  # a run of numbers ends there
        at = heads[plain]
        ends = after[other[np.searchsorted(other, at)] - 1]
        single = (ends - pos[at] == _WIDTH[codes[at]]).tolist()
        made = [
            Num(s) if one else Run(s, e)
            for s, e, one in zip(pos[at].tolist(), ends.tolist(), single, strict=True)
        ]
        for k, v in zip(plain.tolist(), made, strict=True):
            values[k] = v
    gets = np.flatnonzero(kind == ord("g"))
    if len(gets):
        got = _gets(sc, pos, codes, sym, puts, base, heads[gets])
        if got is None:
            return None
        for k, got_v in zip(gets.tolist(), got, strict=True):
            values[k] = got_v
    return values, heads


def _gets(
    sc: Scan,
    pos: NDArray[np.int64],
    codes: NDArray[np.uint8],
    sym: NDArray[np.uint8],
    puts: NDArray[np.intp],
    base: int,
    at: NDArray[np.intp],
) -> list[int] | None:
    """The values the gets at `at` push: a string's offset, stored before
    (in the memo, or by a put of these rows); None for anything else."""
    idx = put_indices(sc.buf, pos[at], codes[at])
    k = idx - base
    here = (k >= 0) & (k < len(puts))
    out = np.empty(len(at), np.int64)
    h = np.flatnonzero(here)
    if len(h):
        put = puts[k[h]]
        if (put > at[h]).any() or not np.isin(sym[put - 1], _STRING_SYMS).all():
            return None  # a get before its put, or of a container
        out[h] = pos[put - 1]
    o = np.flatnonzero(~here)
    if len(o):
        keys, inverse = np.unique(idx[o], return_inverse=True)
        found = [sc.memo.get(key) for key in keys.tolist()]
        if any(type(v) is not int for v in found):
            return None  # never stored (the loop refuses it), or no string
        out[o] = np.array(found, np.int64)[inverse]
    got: list[int] = out.tolist()
    return got


def _nodes(
    sym: NDArray[np.uint8],
    rows: NDArray[np.intp],
    heads: NDArray[np.intp],
    values: list[object],
) -> list[object]:
    """The containers of the rows, filled as the handlers fill them."""
    closers = np.flatnonzero((sym == ord("u")) | (sym == ord("e")))
    row_of = np.searchsorted(rows, closers) - 1  # the row each closer ends
    first = np.full(len(rows), -1, np.int64)
    last = np.full(len(rows), -1, np.int64)
    marks = np.flatnonzero(sym == ord("("))
    first[row_of] = np.searchsorted(heads, marks)
    last[row_of] = np.searchsorted(heads, closers)
    nodes: list[object] = []
    for r, a, b in zip(sym[rows].tolist(), first.tolist(), last.tolist(), strict=True):
        group = values[a:b] if a >= 0 else []
        if r == ord("d"):
            node = Node(None, "dict")
            node.n = len(group)
            node.items = group if len(group) <= RECORDED else None
            nodes.append(node)
        else:
            lst = Lst()
            lst.src = group
            nodes.append(lst)
    return nodes


def _put_values(
    buf: bytes,
    pos: NDArray[np.int64],
    codes: NDArray[np.uint8],
    sym: NDArray[np.uint8],
    puts: NDArray[np.intp],
    rows: NDArray[np.intp],
    nodes: list[object],
) -> tuple[list[object], list[object]]:
    """What each put stores (a row's container, a string's offset) and the
    name it gives (none for a container, see :func:`named`)."""
    before = puts - 1
    vals: list[object] = pos[before].tolist()
    names = named(buf, codes[before], pos[before], pos[puts])
    row_puts = np.flatnonzero((sym[before] == ord("d")) | (sym[before] == ord("l")))
    row_no = np.searchsorted(rows, before[row_puts])
    for k, r in zip(row_puts.tolist(), row_no.tolist(), strict=True):
        vals[k] = nodes[r]
        names[k] = UNK
    return vals, names
