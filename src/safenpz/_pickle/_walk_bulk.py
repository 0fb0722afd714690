"""The final walk in bulk: a whole level at a time, at C speed.

:class:`~safenpz._pickle._walk.Walker` visits every object in Python. The
values most files hold are trees of lists, tuples and dicts of leaves (or of
NumPy scalars and arrays in lists and dict values), where the walk's checks
can be made for a whole level of the tree at once, with C-level passes over
all its containers: ``sum(map(len, level))`` counts their items,
``set(map(type, items))`` sees every item's type, ``itertools.chain`` and
``compress`` gather the containers of the next level. A list of 100,000
small dicts costs a few such passes, not 100,000 Python calls.

:func:`bulk_walk` gives the walk's result, or :data:`BAIL` when the exact
walk must decide (it then raises, or handles what this one does not). It
bails, before changing anything, on:

* a type the exact walk refuses or treats specially: constructors, unknown
  objects, an ``OrderedDict`` with attributes, builders that are not finished
  (or would be finished from an object array's items by anything but NumPy's
  plain object dtype), a builder inside a tuple, a set or a dict key (the
  exact walk rebuilds those and checks that they stay hashable);
* more than ``max_items`` items, more than `budget` items in all (objects
  shared through the memo are counted each time they are reached here, once
  in the exact walk: a bound on the work of this walk, see below), or more
  levels than ``max_depth`` (or :data:`MAX_LEVELS`: beyond that the exact
  walk, which recurses, decides).

Otherwise the walk's result is the exact walk's: counting shared objects
again only over-counts, a cycle never ends before ``max_depth`` (so it
bails), and every level is checked. Builders are then swapped for their
values in place, deepest level first (an object array's items before the
array is made from them): lists keep their identity, dicts their identity
and key order, a shared builder gives one value; tuples, sets and keys hold
no builder here, so nothing is rebuilt.

The work is bounded by the items counted: at most `budget` (a small multiple
of the stream's length, so shared objects cannot make it grow exponentially)
and ``max_items``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from itertools import chain, compress
from operator import attrgetter, not_
from typing import Any

import numpy as np

from ._array_state import _ArrayBuilder
from ._context import Context, Done
from ._dtype_state import _DtypeBuilder
from ._walk import LEAF_TYPES

__all__ = ["BAIL", "BUILDER_TYPES", "MAX_LEVELS", "bulk_walk"]

#: What :func:`bulk_walk` returns when the exact walk must decide.
BAIL: Any = object()
#: Nesting beyond which the exact walk decides (it recurses: ~3 frames a level).
MAX_LEVELS = 100
#: The stand-ins the walk swaps for their values.
BUILDER_TYPES = frozenset({Done, _ArrayBuilder, _DtypeBuilder})

_OBJECT = np.dtype(object)
_VALUE = attrgetter("value")
_IS_LEAF = LEAF_TYPES.__contains__


class _Bail(Exception):
    """Internal: the exact walk must decide."""


class _Levels:
    """One bulk walk: the level being gathered, the items counted, the
    containers whose builders are swapped at the end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.next: list[Any] = []
        self.fix: list[list[Any] | dict[Any, Any]] = []

    def take(self, n: int) -> None:
        """Count `n` more items (before they are gathered)."""
        self.count += n
        if self.count > self.limit:
            raise _Bail

    def items(
        self,
        kids: Iterable[Any],
        parents: list[Any] | None,
        of: Callable[[Any], Iterable[Any]] = iter,
    ) -> None:
        """Check `kids` (the items of `parents`) and queue those that are not
        leaves. Builders may only be list items or dict values: `parents`
        holding one are swapped later (`of` gives a parent's items); with
        `parents` None a builder bails."""
        types = set(map(type, kids))
        if types <= LEAF_TYPES:
            return
        if not BUILDER_TYPES.isdisjoint(types):
            if parents is None:
                raise _Bail
            self.fix.extend(
                p for p in parents if not BUILDER_TYPES.isdisjoint(map(type, of(p)))
            )
        if types.isdisjoint(LEAF_TYPES):
            self.next.extend(kids)
        else:
            self.next.extend(compress(kids, map(not_, map(_IS_LEAF, map(type, kids)))))

    def seqs(self, group: list[Any], fixable: bool) -> None:
        """Lists (their builders are swapped in place) or tuples."""
        self.take(sum(map(len, group)))
        kids = group[0] if len(group) == 1 else list(chain.from_iterable(group))
        self.items(kids, group if fixable else None)

    def dicts(self, group: list[dict[Any, Any]]) -> None:
        """Dicts (and OrderedDicts): keys as set items, values as list items."""
        self.take(sum(map(len, group)))
        if len(group) == 1:
            self.items(group[0].keys(), None)
            self.items(group[0].values(), group, dict.values)
            return
        self.items(list(chain.from_iterable(group)), None)
        values = list(chain.from_iterable(map(dict.values, group)))
        self.items(values, group, dict.values)


def _lists(lv: _Levels, group: list[Any]) -> None:
    lv.seqs(group, True)


def _tuples(lv: _Levels, group: list[Any]) -> None:
    lv.seqs(group, False)


def _sets(lv: _Levels, group: list[Any]) -> None:
    lv.take(sum(map(len, group)))
    lv.items(group[0] if len(group) == 1 else list(chain.from_iterable(group)), None)


def _ordered_dicts(lv: _Levels, group: list[Any]) -> None:
    if any(map(vars, group)):  # attributes set by BUILD: the exact walk refuses
        raise _Bail
    lv.dicts(group)


def _arrays(lv: _Levels, group: list[_ArrayBuilder]) -> None:
    """Arrays: finished, or an object array's items, which are walked as a
    list of the array's level (and the array made from them at the end)."""
    items = []
    for arr in group:
        if arr.finished:
            continue
        state = arr.state
        if (
            state is None
            or arr.items is None
            or state[2] != _OBJECT
            or len(arr.items) != math.prod(state[1])
        ):
            raise _Bail  # never built, or items NumPy could refuse
        items.append(arr.items)
    if items:
        lv.seqs(items, True)


def _done(lv: _Levels, group: list[Done]) -> None:
    """Finished values (always finished: nothing to check)."""


def _dtypes(lv: _Levels, group: list[_DtypeBuilder]) -> None:
    if not all(b.finished for b in group):
        raise _Bail  # used before BUILD finished it: the exact walk refuses


#: What each type's containers add to the next level (exact types: a type
#: not here bails).
_STEPS: dict[type, Callable[[_Levels, list[Any]], None]] = {
    list: _lists,
    tuple: _tuples,
    dict: _Levels.dicts,
    OrderedDict: _ordered_dicts,
    set: _sets,
    frozenset: _sets,
    _ArrayBuilder: _arrays,
    Done: _done,
    _DtypeBuilder: _dtypes,
}


def _by_type(level: list[Any]) -> Iterable[tuple[type, list[Any]]]:
    """The objects of `level`, grouped by exact type."""
    types = set(map(type, level))
    if len(types) == 1:
        return [(types.pop(), level)]
    groups: dict[type, list[Any]] = {tp: [] for tp in types}
    for obj in level:
        groups[type(obj)].append(obj)
    return groups.items()


def _check(root: Any, ctx: Context, budget: int) -> _Levels:
    """Walk the levels below `root`, changing nothing (raises :class:`_Bail`)."""
    lv = _Levels(min(ctx.limits.max_items, budget))
    max_level = min(ctx.limits.max_depth, MAX_LEVELS)
    level, depth = [root], 0
    while level:
        if depth > max_level:
            raise _Bail
        for tp, group in _by_type(level):
            step = _STEPS.get(tp)
            if step is None:
                raise _Bail
            step(lv, group)
        level, lv.next = lv.next, []
        depth += 1
    return lv


def _swap(parent: list[Any] | dict[Any, Any]) -> None:
    """Swap the builders in `parent` (a list, or a dict's values) for their
    values, in place."""
    if type(parent) is list:
        if set(map(type, parent)) == {Done}:
            parent[:] = map(_VALUE, parent)
        else:
            parent[:] = [x.result() if type(x) in BUILDER_TYPES else x for x in parent]
        return
    assert isinstance(parent, dict)
    parent.update(
        [(k, v.result()) for k, v in parent.items() if type(v) in BUILDER_TYPES]
    )


def bulk_walk(root: Any, ctx: Context, budget: int) -> Any:
    """`root` as plain data, as the exact walk gives it, or :data:`BAIL`.

    Parameters
    ----------
    root : object
        What the unpickler returned.
    ctx : Context
        The decode's context (its limits).
    budget : int
        The most items to count (shared objects each time they are reached)
        before leaving the value to the exact walk.
    """
    if type(root) in LEAF_TYPES:
        return root
    try:
        lv = _check(root, ctx, budget)
    except _Bail:
        return BAIL
    for parent in reversed(lv.fix):
        _swap(parent)
    return root.result() if type(root) in BUILDER_TYPES else root
