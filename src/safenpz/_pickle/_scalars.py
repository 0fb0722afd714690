"""Runs of NumPy scalars in the scanner: one step for many identical calls.

A pickled NumPy scalar (protocol 4, as ``np.save`` writes a Keras history or
a label map) is nine opcodes, and a file holds thousands of them in a row::

    BINGET g  BINGET d  SHORT_BINBYTES n <n bytes>  MEMOIZE
    TUPLE2  MEMOIZE  REDUCE  MEMOIZE

(``g``: the memo index of ``numpy.core.multiarray.scalar``, ``d``: that of a
finished dtype). :func:`scalar_runs` wraps the ``BINGET`` handler: where such
a *unit* starts, it finds the units that follow with the same ``g``, ``d``
and ``n`` (one regular expression match, at C speed) and applies all of them
at once, with the effects the opcode handlers would have had, one by one:

* the checks: every unit of the run calls the same constructor on the same
  dtype with data of the same length, and the memo indices are the next ones
  (no index of the run was stored before), so the checks the scanner makes
  for one unit (:meth:`~safenpz._pickle._hashing.HashCost.tuple_of`,
  :func:`~safenpz._pickle._calls.reduce`: the decoder's rules) decide them
  all; they are made on the first unit, without changing any state;
* the state: per unit, a tuple (:class:`~safenpz._pickle._values.Tup`) and a
  scalar (:class:`~safenpz._pickle._values.Made`) like those the first unit's
  checks made, three memo entries (the bytes, the tuple, the scalar), the
  scalar pushed; the opcode counts and the container count (one tuple per
  unit) in one step.

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
from ._state import Handler, Scan
from ._values import UNK, Glob, Made, Node, StackError, Tup

__all__ = ["ENABLED", "scalar_runs"]

#: Switch for the differential tests (the opcode handlers alone: reference).
ENABLED = True

BINGET = code("BINGET")
SHORT_BINBYTES = code("SHORT_BINBYTES")
MEMOIZE = code("MEMOIZE")
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


@functools.cache
def _run_of(n: int) -> re.Pattern[bytes]:
    """Units with `n` bytes of data, each with the first one's ``g`` and ``d``
    (back-references), up to :data:`_MAX_UNITS` of them."""
    get, data = re.escape(_GET), re.escape(_BYTES) + re.escape(bytes([n]))
    tail = re.escape(_TAIL)
    first = get + b"(.)" + get + b"(.)" + data + b".{%d}" % n + tail
    more = get + b"\\1" + get + b"\\2" + data + b".{%d}" % n + tail
    return re.compile(first + b"(?:" + more + b"){0,%d}" % (_MAX_UNITS - 1), re.DOTALL)


def scalar_runs(exact: Handler) -> Handler:
    """The ``BINGET`` handler: a run of scalar units at once where one starts
    (see the module docstring), else `exact` (the opcode's own handler)."""

    def handler(sc: Scan, pos: int) -> int:
        buf = sc.buf
        at = buf.startswith
        if ENABLED and at(_BYTES, pos + 4) and at(_GET, pos + 2):
            end = _apply(sc, pos)
            if end:
                return end
        return exact(sc, pos)

    return handler


def _apply(sc: Scan, pos: int) -> int:
    """Apply the run of units at `pos`; 0 if there is none to apply here."""
    buf = sc.buf
    n = buf[pos + 5] if pos + 5 < sc.n else 0
    m = _run_of(n).match(buf, pos) if n else None
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
