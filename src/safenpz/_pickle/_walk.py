"""The decoder's final walk: builders out, plain data in, bounds checked.

After the C unpickler has run, the result may still hold stand-ins (arrays,
dtypes and scalars under construction, see :mod:`safenpz._pickle._context`).
:class:`Walker` visits every object once, depth first:

* leaves (numbers, strings, bytes, ``None``) are kept as they are;
* lists, tuples, dicts, ``OrderedDict``\\ s, sets and frozensets are walked,
  and rebuilt in place (keeping their identity, which other objects may
  share) when a child was replaced;
* builders become their finished values (an object array is made from its
  walked items);
* anything else is refused: a constructor stored as a value, an object of a
  type the decoder never makes, a container that contains itself.

Every container item counts towards ``max_items`` and every level towards
``max_depth`` (both from the load's :class:`~safenpz._limits.Limits`).
Objects shared within the pickle are visited once and stay shared.

This walk defines the result; :mod:`safenpz._pickle._finish` reaches the
same result without it where it can, and leaves everything else to it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ._array_state import _ArrayBuilder
from ._constructors import _Constructor, _ScannedScalar
from ._context import BARE_SCALARS, Context, Done
from ._dtype_state import _DtypeBuilder
from ._opcodes import OPS

__all__ = ["LEAF_TYPES", "Walker"]

#: What the walk keeps as it is (exact types): Python's plain leaves, and the
#: numeric NumPy scalars the decoder hands back bare (only its ``scalar``
#: constructor makes them).
LEAF_TYPES = (
    frozenset({int, float, complex, bool, type(None), str, bytes, bytearray})
    | BARE_SCALARS
)
_BUILD = OPS["BUILD"].name
_Visit = Callable[["Walker", Any, int], Any]


class Walker:
    """One walk over one decoded value (see the module docstring).

    Parameters
    ----------
    ctx : Context
        The decode's context: member name and limits.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.max_items = ctx.limits.max_items
        self.max_depth = ctx.limits.max_depth
        self.done: dict[int, Any] = {}
        self.active: set[int] = set()
        self.items = 0

    def count(self, n: int) -> None:
        """Count `n` more values against ``max_items``."""
        self.items += n
        if self.items > self.max_items:
            self.ctx.exceed(
                f"the pickle holds more than max_items={self.max_items} values; "
                "pass a larger max_items to load it",
                "max_items",
                self.items,
            )

    def walk(self, obj: Any, depth: int) -> Any:
        """`obj` as plain data, `depth` levels below the top."""
        tp = type(obj)
        if tp in LEAF_TYPES:
            return obj
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            self.ctx.fail("the pickle holds a container that contains itself")
        if depth > self.max_depth:
            self.ctx.exceed(
                f"data nested deeper than max_depth={self.max_depth}; pass a "
                "larger max_depth to load it",
                "max_depth",
                depth,
            )
        visit: _Visit = _VISIT.get(tp, _unexpected)
        self.active.add(key)
        try:
            out = visit(self, obj, depth)
        finally:
            self.active.discard(key)
        self.done[key] = out
        return out

    def _children(self, seq: Any, depth: int) -> bool:
        """Walk the items of a list (in place) or tuple; True if any changed."""
        self.count(len(seq))
        if set(map(type, seq)) <= LEAF_TYPES:
            return False
        changed = False
        for i, item in enumerate(seq):
            new = self.walk(item, depth + 1)
            if new is not item:
                changed = True
                if isinstance(seq, list):
                    seq[i] = new
        return changed

    def _list(self, obj: list[Any], depth: int) -> list[Any]:
        self._children(obj, depth)
        return obj

    def _tuple(self, obj: tuple[Any, ...], depth: int) -> tuple[Any, ...]:
        if self._children(obj, depth):
            return tuple(self.walk(item, depth + 1) for item in obj)
        return obj

    def _dict(self, obj: dict[Any, Any], depth: int) -> dict[Any, Any]:
        self.count(len(obj))
        items = [
            (self.walk(k, depth + 1), k, self.walk(v, depth + 1), v)
            for k, v in obj.items()
        ]
        if any(nk is not k or nv is not v for nk, k, nv, v in items):
            obj.clear()  # keep the dict's identity (it may be shared)
            try:
                obj.update((nk, nv) for nk, _, nv, _ in items)
            except TypeError as err:
                self.ctx.fail(f"a dict key is not hashable plain data ({err})")
        return obj

    def _ordered_dict(self, obj: OrderedDict[Any, Any], depth: int) -> Any:
        if obj.__dict__:
            self.ctx.fail("the pickle sets attributes on an OrderedDict", opcode=_BUILD)
        return self._dict(obj, depth)

    def _set(self, obj: set[Any] | frozenset[Any], depth: int) -> Any:
        self.count(len(obj))
        walked = [(self.walk(item, depth + 1), item) for item in obj]
        if all(new is old for new, old in walked):
            return obj
        try:
            if type(obj) is frozenset:
                return frozenset(new for new, _ in walked)
            assert isinstance(obj, set)
            obj.clear()
            obj.update(new for new, _ in walked)
        except TypeError as err:
            self.ctx.fail(f"a set item is not hashable plain data ({err})")
        return obj

    def _array(self, obj: _ArrayBuilder, depth: int) -> Any:
        if obj.items is not None:
            self._children(obj.items, depth)
        return obj.result()

    def _finished(self, obj: Done | _DtypeBuilder, depth: int) -> Any:
        return obj.result()

    def _constructor(self, obj: _Constructor, depth: int) -> Any:
        self.ctx.fail(
            f"the pickle stores the global {obj.qualname} as a value; only "
            "data is allowed"
        )


def _unexpected(walker: Walker, obj: object, depth: int) -> Any:
    walker.ctx.fail(f"unexpected object of type {type(obj).__name__} in the pickle")


#: What the walk does with each type it knows (exact types: the unpickler
#: makes no subclasses of these, and a subclass would be refused).
_VISIT: dict[type, _Visit] = {
    list: Walker._list,
    tuple: Walker._tuple,
    dict: Walker._dict,
    OrderedDict: Walker._ordered_dict,
    set: Walker._set,
    frozenset: Walker._set,
    _ArrayBuilder: Walker._array,
    Done: Walker._finished,
    _DtypeBuilder: Walker._finished,
    _Constructor: Walker._constructor,
    _ScannedScalar: Walker._constructor,
}
