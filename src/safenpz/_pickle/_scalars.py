"""Runs of NumPy scalars in the scanner: one step for many identical calls.

A pickled NumPy scalar (protocol 4, as ``np.save`` writes a Keras history or
a label map) is nine opcodes, and a file holds thousands of them in a row::

    BINGET g  BINGET d  SHORT_BINBYTES n <n bytes>  MEMOIZE
    TUPLE2  MEMOIZE  REDUCE  MEMOIZE

(``g``: the memo index of ``numpy.core.multiarray.scalar``, ``d``: that of a
finished dtype; protocols 1-3, as NumPy 1.x's ``np.save`` writes them, put
with ``BINPUT i`` or ``LONG_BINPUT i`` instead of each ``MEMOIZE``).
:func:`scalar_runs` is called by the ``BINGET`` handler: where such
a *unit* starts, it finds the units that follow with the same ``g``, ``d``
and ``n`` (one regular expression match, at C speed) and applies all of them
at once, with the effects the opcode handlers would have had, one by one:

* the checks: every unit of the run calls the same constructor on the same
  dtype with data of the same length, and the memo indices are the next ones
  (no index of the run was stored before; with indexed puts: none is the
  constructor's or the dtype's, none beyond the stream), so the checks the
  scanner makes for one unit
  (:meth:`~safenpz._pickle._hashing.HashCost.tuple_of`,
  :func:`~safenpz._pickle._calls.reduce`: the decoder's rules) decide them
  all; they are made once per constructor, dtype and data length in a scan
  (kept in ``Values.checked``), without changing any state;
* the state: per unit, a tuple (:class:`~safenpz._pickle._values.Tup`) and a
  scalar (:class:`~safenpz._pickle._values.Made`) like those the checks
  made, three memo entries (the bytes, the tuple, the scalar), the scalar
  pushed; the opcode counts and the container count (one tuple per unit) in
  one step.

Anything else is left to the opcode handlers, unchanged: a unit that is not
exactly this, a memo entry that is not the constructor or a finished dtype,
a check that refuses (the handlers then refuse it at its own opcode), a run
that would take the container count beyond ``max_items`` (the units up to
the limit are applied; the handlers count the one beyond), memo indices
stored before. So a scan gives the same report, and the same error at the
same opcode, with or without this module (``ENABLED = False``: the
differential tests in ``tests/internal/test_scalar_runs.py``).
"""

from __future__ import annotations

import functools
import re

from ._calls import reduce
from ._opcodes import code
from ._state import Scan
from ._values import UNK, Glob, Made, Node, StackError, Tup

__all__ = ["ENABLED", "scalar_runs"]

#: Switch for the differential tests (the opcode handlers alone: reference).
ENABLED = True

BINGET = code("BINGET")
SHORT_BINBYTES = code("SHORT_BINBYTES")
MEMOIZE = code("MEMOIZE")
BINPUT = code("BINPUT")
LONG_BINPUT = code("LONG_BINPUT")
TUPLE2 = code("TUPLE2")
REDUCE = code("REDUCE")

_GET = bytes([BINGET])
_BYTES = bytes([SHORT_BINBYTES])
#: What follows a unit's data.
_TAIL = bytes([MEMOIZE, TUPLE2, MEMOIZE, REDUCE, MEMOIZE])
#: Bytes of a unit before its data (``BINGET g BINGET d SHORT_BINBYTES n``).
_HEAD = 6
#: Units applied at once at most (bounded work between two checks of the
#: loop; the next run starts where this one stops).
_MAX_UNITS = 1 << 16


#: A memo put with its index (protocols 1-3: ``BINPUT i``, ``LONG_BINPUT i``).
_PUT = (
    b"(?:"
    + re.escape(bytes([BINPUT]))
    + b".|"
    + re.escape(bytes([LONG_BINPUT]))
    + b"....)"
)
#: What follows a unit's data when the puts name their indices.
_TAIL_PUTS = (
    _PUT + re.escape(bytes([TUPLE2])) + _PUT + re.escape(bytes([REDUCE])) + _PUT
)


@functools.cache
def _run_of(n: int, puts: bool) -> re.Pattern[bytes]:
    """Units with `n` bytes of data, each with the first one's ``g`` and ``d``
    (back-references), up to :data:`_MAX_UNITS` of them; with ``MEMOIZE``
    (or, `puts`, memo puts with indices) after the data, the tuple and the
    scalar."""
    get, data = re.escape(_GET), re.escape(_BYTES) + re.escape(bytes([n]))
    tail = _TAIL_PUTS if puts else re.escape(_TAIL)
    first = get + b"(.)" + get + b"(.)" + data + b".{%d}" % n + tail
    more = get + b"\\1" + get + b"\\2" + data + b".{%d}" % n + tail
    return re.compile(first + b"(?:" + more + b"){0,%d}" % (_MAX_UNITS - 1), re.DOTALL)


def scalar_runs(sc: Scan, pos: int) -> int:
    """Apply the run of units at `pos` (a ``BINGET``, a ``SHORT_BINBYTES``
    four bytes on: see the module docstring); where it ends, or 0 where the
    opcode handlers go on."""
    return _apply(sc, pos) if ENABLED else 0


def _apply(sc: Scan, pos: int) -> int:
    """Apply the run of units at `pos`; 0 if there is none to apply here."""
    buf = sc.buf
    n = buf[pos + 5] if pos + 5 < sc.n else 0
    after = pos + _HEAD + n
    if not n or after >= sc.n:
        return 0
    if buf[after] != MEMOIZE:
        return _apply_puts(sc, pos, n) if buf[after] in _PUTS else 0
    m = _run_of(n, False).match(buf, pos)
    if m is None:
        return 0
    memo, names = sc.memo, sc.names
    fn, dt = memo.get(buf[pos + 1]), memo.get(buf[pos + 3])
    size = _HEAD + n + len(_TAIL)
    k = min((m.end() - pos) // size, sc.max_items - sc.report.containers)
    first = len(names)
    if k <= 0 or not names.keys().isdisjoint(range(first, first + 3 * k)):
        return 0
    checked = _checked(sc, fn, dt, n, pos)
    if checked is None:
        return 0
    _push(sc, pos, k, size, *checked)
    return pos + k * size


_PUTS = {BINPUT: 1, LONG_BINPUT: 4}  # index widths


def _apply_puts(sc: Scan, pos: int, n: int) -> int:
    """:func:`_apply` for units whose memo puts name their indices (as
    protocols 1-3 write them). A run ends before a unit that puts into the
    memo entry of the constructor or of the dtype (the units after it would
    not be alike) or at an index beyond the stream (refused by the
    handlers)."""
    buf = sc.buf
    m = _run_of(n, True).match(buf, pos)
    if m is None:
        return 0
    g, d = buf[pos + 1], buf[pos + 3]
    checked = _checked(sc, sc.memo.get(g), sc.memo.get(d), n, pos)
    if checked is None:
        return 0
    units: list[tuple[int, int, int, int]] = []
    limit = min(_MAX_UNITS, sc.max_items - sc.report.containers)
    u, end = pos, m.end()
    while u < end and len(units) < limit:
        p, idx = u + _HEAD + n, [u + 4]
        for _ in range(3):  # the puts of the bytes, the tuple, the scalar
            width = _PUTS[buf[p]]
            idx.append(int.from_bytes(buf[p + 1 : p + 1 + width], "little"))
            p += 2 + width  # (and the TUPLE2 or REDUCE after it)
        off, i, j, k = idx
        if g in (i, j, k) or d in (i, j, k) or max(i, j, k) > sc.n:
            break
        units.append((off, i, j, k))
        u = p - 1
    if not units:
        return 0
    _push_puts(sc, units, *checked)
    return u


def _checked(
    sc: Scan, fn: object, dt: object, n: int, pos: int
) -> tuple[Tup, Made] | None:
    """The args tuple and the scalar of a unit calling `fn` on `dt` and `n`
    bytes at `pos`, if the checks pass (None: they refuse, or it is no
    scalar). They depend on nothing else in a scan: made once per `fn`,
    `dt`, `n` (``Values.checked``), without changing any state."""
    if type(fn) is not Glob or fn.role != "scalar":
        return None
    if type(dt) is not Made or dt.role != "dtype" or not dt.built:
        return None
    st = sc.st
    key = (id(fn), id(dt), n)
    kept = st.values.checked.get(key)
    if kept is not None and kept[0] is fn and kept[1] is dt:
        return kept[2], kept[3]  # type: ignore[return-value]
    try:
        tup = st.cost.tuple_of([dt, pos + 4])
        made = reduce(st.values, fn, tup)
    except StackError:
        return None  # the opcode handlers refuse it, at its opcode
    if type(made) is not Made or made.role != "scalar":
        return None  # pragma: no cover - a scalar's REDUCE makes one
    st.values.checked[key] = (fn, dt, tup, made)  # (the objects keep their ids)
    return tup, made


def _push(sc: Scan, pos: int, k: int, size: int, tup: Tup, made: Made) -> None:
    """The state after `k` units from `pos` (each `size` bytes), whose
    tuples and scalars are like `tup` and `made` (what the checks made).
    Each scalar's edge in the containment graph goes to `tup`: the tuples
    are alike (the same items but the bytes: the same height, and nothing
    below them can change), so the graph is searched below one of them
    only."""
    memo, names, push = sc.memo, sc.names, sc.stack.append
    dt, flags, bad, npdt = tup.src[0], tup.flags, tup.bad, made.dtype
    height, width, big, lists, kids = tup.height, tup.size, tup.big, tup.lists, tup.kids
    idx = len(names)
    edge: list[Node] = [
        tup
    ]  # (edge lists shared: no opcode adds to a tuple or a scalar)
    for off in range(pos + 4, pos + 4 + k * size, size):
        t = Tup(height, width, big, lists, kids)
        t.src, t.flags, t.bad = [dt, off], flags, bad
        s = Made("scalar", None, edge)
        s.dtype, s.raw = npdt, off
        memo[idx], memo[idx + 1], memo[idx + 2] = off, t, s
        names[idx] = names[idx + 1] = names[idx + 2] = UNK
        idx += 3
        push(s)
    counts = sc.counts
    counts[BINGET] += 2 * k
    counts[SHORT_BINBYTES] += k
    counts[MEMOIZE] += 3 * k
    counts[TUPLE2] += k
    counts[REDUCE] += k
    sc.report.containers += k
    sc.t_a = sc.t_b = UNK


def _push_puts(
    sc: Scan, units: list[tuple[int, int, int, int]], tup: Tup, made: Made
) -> None:
    """:func:`_push` for units whose puts name their indices: `units` holds
    each unit's data offset and its three memo indices."""
    buf, memo, names, push = sc.buf, sc.memo, sc.names, sc.stack.append
    dt, flags, bad, npdt = tup.src[0], tup.flags, tup.bad, made.dtype
    height, width, big, lists, kids = tup.height, tup.size, tup.big, tup.lists, tup.kids
    edge: list[Node] = [tup]
    counts = sc.counts
    for off, i, j, h in units:
        t = Tup(height, width, big, lists, kids)
        t.src, t.flags, t.bad = [dt, off], flags, bad
        s = Made("scalar", None, edge)
        s.dtype, s.raw = npdt, off
        memo[i] = off  # in the order of the puts (an index may repeat)
        memo[j] = t
        memo[h] = s
        names[i] = names[j] = names[h] = UNK
        push(s)
    k = len(units)
    n = buf[units[0][0] + 1]
    for off, *_ in units:  # the opcodes of the puts, by kind
        p = off + 2 + n
        for _ in range(3):
            counts[buf[p]] += 1
            p += 2 + _PUTS[buf[p]]
    counts[BINGET] += 2 * k
    counts[SHORT_BINBYTES] += k
    counts[TUPLE2] += k
    counts[REDUCE] += k
    sc.report.containers += k
    sc.t_a = sc.t_b = UNK
