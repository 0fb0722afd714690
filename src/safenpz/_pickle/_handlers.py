"""The scanner's opcode handlers, and the table that dispatches to them.

A handler takes the scan state and the offset of its opcode and returns where
the next opcode starts (:data:`~safenpz._pickle._state.Handler`).
:data:`DISPATCH` has one per code byte:

* :func:`plain`: a run of plain literal pushes (one regular expression match,
  one stack item; the bulk path, :mod:`safenpz._pickle._bulk`, makes the same
  item for the runs it takes);
* the *structural* opcodes (:data:`STRUCTURAL`: MARK, the MARK-closing ones,
  the container builders, ``REDUCE``, ``BUILD``): the MARK depth and the
  container count are kept here, and only here;
* runs of ``APPEND``/``SETITEM``/``POP``, applied in one step;
* the string and memo opcodes picklers write most, read in place;
* everything else through the general handler (:mod:`safenpz._pickle._general`,
  :data:`GENERAL`): the argument read by its kind, the forbidden opcodes
  refused, then the opcode's own action. A fast handler whose argument does
  not fit hands the opcode to the general handler, which reports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._general import general_table, unknown
from ._literals import utf8_problem
from ._opcodes import OPS, Op, code
from ._scalars import scalar_runs
from ._stack import Stack
from ._state import Handler, Scan
from ._values import PLAIN_CODES, PLAIN_RUN, RUN_WIDTH, UNK, Lst, Node, Num, Run

__all__ = ["DISPATCH", "GENERAL", "STRUCTURAL", "TALLY_ORDER", "plain"]

BINGET = code("BINGET")
BINPUT = code("BINPUT")
BINUNICODE = code("BINUNICODE")
EMPTY_DICT = code("EMPTY_DICT")
EMPTY_LIST = code("EMPTY_LIST")
EMPTY_SET = code("EMPTY_SET")
EMPTY_TUPLE = code("EMPTY_TUPLE")
MARK = code("MARK")
MEMOIZE = code("MEMOIZE")
POP = code("POP")
SHORT_BINBYTES = code("SHORT_BINBYTES")
SHORT_BINUNICODE = code("SHORT_BINUNICODE")

_EMPTY_MUTABLE = (EMPTY_LIST, EMPTY_DICT, EMPTY_SET)
_EMPTY_POP = re.compile(
    b"(?:["
    + b"".join(re.escape(bytes([c])) for c in _EMPTY_MUTABLE)
    + b"]"
    + re.escape(bytes([POP]))
    + b")+"
)
_POP_WINDOW = 2**21  # bytes matched at once (bounded copies, prompt limits)
_KIND = {EMPTY_DICT: "dict", EMPTY_SET: "set"}
_match_plain = PLAIN_RUN.match

#: Opcodes whose container counts toward ``max_items`` (the empty tuple is
#: one shared object: not counted).
_COUNTED = frozenset(op.code for op in OPS.values() if op.container) - {EMPTY_TUPLE}


# --------------------------------------------------------------------------
# plain literals: the one place runs of them are consumed


def plain(sc: Scan, pos: int) -> int:
    """A run of plain literal pushes (``BININT1`` ... ``NEWFALSE``): one item
    of the abstract stack, looked at only if an opcode needs its items.

    The bulk path (:mod:`safenpz._pickle._bulk`) makes the same item for a
    run it takes: a :class:`Num` for one literal, a :class:`Run` for several."""
    m = _match_plain(sc.buf, pos)
    if m is None:  # a truncated argument: the general reader reports it
        return GENERAL[sc.buf[pos]](sc, pos)
    end = m.end()
    sc.plain_runs += 1
    sc.t_a = sc.t_b = UNK
    # one literal: a plain item; more: one Run item
    if end - pos == RUN_WIDTH[sc.buf[pos]]:
        sc.stack.append(Num(pos))
    else:
        sc.stack.append(Run(pos, end))
    return end


# --------------------------------------------------------------------------
# structural opcodes: MARK depth and container count


def _mark(sc: Scan, pos: int) -> int:
    sc.counts[MARK] += 1
    marks = sc.st.marks
    marks.append(len(sc.stack))
    if len(marks) > sc.max_depth:
        msg = f"nesting deeper than max_depth={sc.max_depth}"
        sc.problem(
            "limit",
            "MARK",
            pos,
            msg,
            limit="max_depth",
            value=len(marks),
            maximum=sc.max_depth,
        )
    sc.t_a = sc.t_b = UNK
    return pos + 1


def _empty_mutable(sc: Scan, pos: int) -> int:
    """EMPTY_LIST, EMPTY_DICT, EMPTY_SET (and runs of them, each popped)."""
    buf = sc.buf
    op = buf[pos]
    if pos + 1 < sc.n and buf[pos + 1] == POP:
        return _empty_popped(sc, pos)
    sc.counts[op] += 1
    sc.stack.append(Lst() if op == EMPTY_LIST else Node(None, _KIND[op]))
    report = sc.report
    report.containers += 1
    if report.containers > sc.max_items:
        sc.too_many(op, pos)
    sc.t_a = sc.t_b = UNK
    return pos + 1


def _empty_popped(sc: Scan, pos: int) -> int:
    """Empty containers popped at once: no stack effect, only the container
    count (a hostile member is made of them)."""
    buf, report, limit = sc.buf, sc.report, sc.max_items
    m = _EMPTY_POP.match(buf, pos, min(sc.n, pos + _POP_WINDOW))
    assert m is not None
    k = (m.end() - pos) // 2
    if report.containers + k > limit and not sc.over_items:
        at = pos + 2 * (limit - report.containers)  # the first one beyond
        sc.too_many(buf[at], at)
    report.containers += k
    run = m.group()
    for c in _EMPTY_MUTABLE:
        sc.counts[c] += run.count(c)
    sc.ops["POP"] += k
    sc.t_a = sc.t_b = UNK
    return m.end()


def _structural(op: Op, apply: Callable[[Stack], object]) -> Handler:
    """The handler of a structural opcode without an argument: `apply` is
    its effect on the stack; a container counts toward ``max_items``."""
    c = op.code

    def counted(sc: Scan, pos: int) -> int:
        sc.counts[c] += 1
        apply(sc.st)
        report = sc.report
        report.containers += 1
        if report.containers > sc.max_items:
            sc.too_many(c, pos)
        sc.t_a = sc.t_b = UNK
        return pos + 1

    def uncounted(sc: Scan, pos: int) -> int:
        sc.counts[c] += 1
        apply(sc.st)
        sc.t_a = sc.t_b = UNK
        return pos + 1

    return counted if c in _COUNTED else uncounted


def _tuple_n(op: Op) -> Callable[[Stack], object]:
    name, k = op.name, op.pops
    return lambda st: st.tuple_n(name, k)


def _structural_table() -> dict[int, Handler]:
    """Every structural opcode's handler, by code."""
    table: dict[int, Handler] = {MARK: _mark}
    for c in _EMPTY_MUTABLE:
        table[c] = _empty_mutable
    effects: dict[str, Callable[[Stack], object]] = {
        "EMPTY_TUPLE": lambda st: st.items.append(st.empty_tuple),
        "TUPLE1": _tuple_n(OPS["TUPLE1"]),
        "TUPLE2": _tuple_n(OPS["TUPLE2"]),
        "TUPLE3": _tuple_n(OPS["TUPLE3"]),
        "TUPLE": Stack.close_tuple,
        "LIST": Stack.close_list,
        "DICT": Stack.close_dict,
        "FROZENSET": Stack.close_frozenset,
        "APPENDS": Stack.close_appends,
        "SETITEMS": Stack.close_setitems,
        "ADDITEMS": Stack.close_additems,
        "POP_MARK": lambda st: st.pop_mark("POP_MARK"),
        "REDUCE": Stack.reduce,
        "BUILD": Stack.build,
    }
    for name, apply in effects.items():
        table[code(name)] = _structural(OPS[name], apply)
    return table


#: The structural opcodes' handlers, by code: the only ones that count
#: containers and MARK depth.
STRUCTURAL = _structural_table()


# --------------------------------------------------------------------------
# runs of APPEND, SETITEM, POP


def _repeat(op: Op, apply: Callable[[Stack, int], None]) -> Handler:
    """The handler of a run of `op` (``apply(stack, run length)``)."""
    match = re.compile(re.escape(bytes([op.code])) + b"+").match
    name = op.name

    def handler(sc: Scan, pos: int) -> int:
        m = match(sc.buf, pos)
        assert m is not None
        k = m.end() - pos
        sc.ops[name] += k
        apply(sc.st, k)
        sc.t_a = sc.t_b = UNK
        return pos + k

    return handler


_RUNS: dict[int, Handler] = {
    code("APPEND"): _repeat(OPS["APPEND"], Stack.appends),
    code("SETITEM"): _repeat(OPS["SETITEM"], Stack.setitems),
    POP: _repeat(OPS["POP"], Stack.pops),
}
#: Opcodes that never reach the general reader.
_ALWAYS_FAST = frozenset({*_RUNS, MEMOIZE})


# --------------------------------------------------------------------------
# strings and the memo, read in place (the general reader when they do not fit)


def _short_binunicode(sc: Scan, pos: int) -> int:
    """SHORT_BINUNICODE (and the MEMOIZE protocol 4 writes after it); text
    that is not UTF-8: the general reader refuses it."""
    buf, n = sc.buf, sc.n
    if pos + 2 > n or pos + 2 + buf[pos + 1] > n:
        return GENERAL[SHORT_BINUNICODE](sc, pos)
    end = pos + 2 + buf[pos + 1]
    if not buf[pos + 2 : end].isascii() and utf8_problem(buf, pos + 2, end):
        return GENERAL[SHORT_BINUNICODE](sc, pos)
    counts = sc.counts
    counts[SHORT_BINUNICODE] += 1
    sc.t_a = sc.t_b
    sc.t_b = pos  # its offset: read only if named
    sc.stack.append(pos)
    if end < n and buf[end] == MEMOIZE:
        counts[MEMOIZE] += 1
        names = sc.names
        idx = len(names)
        sc.memo[idx] = pos
        names[idx] = pos
        end += 1
    return end


def _short_binbytes(sc: Scan, pos: int) -> int:
    """SHORT_BINBYTES (never a name; and a MEMOIZE after it)."""
    buf, n = sc.buf, sc.n
    if pos + 2 > n or pos + 2 + buf[pos + 1] > n:
        return GENERAL[SHORT_BINBYTES](sc, pos)
    end = pos + 2 + buf[pos + 1]
    counts = sc.counts
    counts[SHORT_BINBYTES] += 1
    sc.t_a = sc.t_b = UNK
    sc.stack.append(pos)
    if end < n and buf[end] == MEMOIZE:
        counts[MEMOIZE] += 1
        names = sc.names
        idx = len(names)
        sc.memo[idx] = pos
        names[idx] = UNK
        end += 1
    return end


def _binunicode(sc: Scan, pos: int) -> int:
    """BINUNICODE (and the BINPUT protocols 1-3 write after it)."""
    buf, n = sc.buf, sc.n
    if pos + 5 > n:
        return GENERAL[BINUNICODE](sc, pos)
    end = pos + 5 + int.from_bytes(buf[pos + 1 : pos + 5], "little")
    if end > n or utf8_problem(buf, pos + 5, end):
        return GENERAL[BINUNICODE](sc, pos)
    counts = sc.counts
    counts[BINUNICODE] += 1
    sc.t_a = sc.t_b
    sc.t_b = pos
    sc.stack.append(pos)
    if end + 1 < n and buf[end] == BINPUT and buf[end + 1] <= n:
        idx = buf[end + 1]
        counts[BINPUT] += 1
        sc.memo[idx] = pos
        sc.names[idx] = pos
        end += 2
    return end


#: BINPUT, LONG_BINPUT and BINGET, LONG_BINGET: memo opcodes with a binary index.
_BINARY_PUTS = [op for op in OPS.values() if op.memo == "put" and op.arg != "nl"]
_BINARY_GETS = [op for op in OPS.values() if op.memo == "get" and op.arg != "nl"]


def _memoize(sc: Scan, pos: int) -> int:
    """MEMOIZE: CPython's index is the number of memo entries."""
    sc.counts[MEMOIZE] += 1
    names = sc.names
    idx = len(names)
    sc.st.put(idx, "MEMOIZE")
    names[idx] = sc.t_b
    return pos + 1


def _fast_get(op: Op, runs: Callable[[Scan, int], int] | None = None) -> Handler:
    """BINGET, LONG_BINGET; `runs` is tried first where the opcode after the
    next is a SHORT_BINBYTES (a run of NumPy scalars, :mod:`._scalars`:
    where it ends, or 0)."""
    c, name, width = op.code, op.name, int(op.arg)

    def handler(sc: Scan, pos: int) -> int:
        if pos + width >= sc.n:
            return GENERAL[c](sc, pos)
        buf = sc.buf
        if runs is not None and pos + 5 < sc.n and buf[pos + 4] == SHORT_BINBYTES:
            end = runs(sc, pos)
            if end:
                return end
        idx = (
            buf[pos + 1]
            if width == 1
            else int.from_bytes(buf[pos + 1 : pos + 1 + width], "little")
        )
        sc.counts[c] += 1
        sc.st.get(idx, name)
        sc.t_a, sc.t_b = sc.t_b, sc.names.get(idx, UNK)
        return pos + 1 + width

    return handler


def _fast_put(op: Op) -> Handler:
    """BINPUT, LONG_BINPUT (an index beyond the stream: the general reader)."""
    c, name, width = op.code, op.name, int(op.arg)

    def handler(sc: Scan, pos: int) -> int:
        if pos + width >= sc.n:
            return GENERAL[c](sc, pos)
        idx = int.from_bytes(sc.buf[pos + 1 : pos + 1 + width], "little")
        if idx > sc.n:
            return GENERAL[c](sc, pos)
        sc.counts[c] += 1
        sc.st.put(idx, name)
        sc.names[idx] = sc.t_b
        return pos + 1 + width

    return handler


def _fast_table() -> dict[int, Handler]:
    """The handlers that skip the general reader, by code."""
    table: dict[int, Handler] = dict.fromkeys(PLAIN_CODES, plain)
    table.update(_RUNS)
    table[SHORT_BINUNICODE] = _short_binunicode
    table[SHORT_BINBYTES] = _short_binbytes
    table[BINUNICODE] = _binunicode
    table[MEMOIZE] = _memoize
    for op in _BINARY_PUTS:
        table[op.code] = _fast_put(op)
    for op in _BINARY_GETS:
        table[op.code] = _fast_get(op, scalar_runs if op.code == BINGET else None)
    return table


#: The general handlers, by code (what a fast handler hands over to).
GENERAL = general_table(frozenset({*STRUCTURAL, *_ALWAYS_FAST}))

#: One handler per code byte (a byte that is no opcode: refused).
DISPATCH: list[Handler] = [unknown] * 256
for _c, _handler in [*GENERAL.items(), *STRUCTURAL.items(), *_fast_table().items()]:
    DISPATCH[_c] = _handler
del _c, _handler

#: The order in which the fast handlers' counts join ``report.opcodes``.
TALLY_ORDER: tuple[int, ...] = (
    *[op.code for op in OPS.values() if op.code in STRUCTURAL],
    *[op.code for op in (*_BINARY_PUTS, *_BINARY_GETS)],
    SHORT_BINUNICODE,
    MEMOIZE,
    BINUNICODE,
    SHORT_BINBYTES,
)
