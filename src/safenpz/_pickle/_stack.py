"""The abstract stack of the static scanner: what each opcode does to it.

The scanner runs the stream's stack and memo on abstract values (see
:mod:`safenpz._pickle._values`) and shows that no opcode pops what is not
there (a stack underflow, a MARK-closing opcode without a MARK, a memo get of
an index never stored: errors the unpickler would raise anyway), while
:class:`~safenpz._pickle._hashing.HashCost` counts what hashing dict keys and
set items would cost and the containment graph records which container holds
which (checked at ``STOP`` by :func:`~safenpz._pickle._graph.check_graph`).

MARKs are kept as stack heights (``marks``): like CPython's fence, no opcode
but a MARK-closing one (or POP of a bare MARK) may pop across a MARK.

What the unpickler refuses about the objects themselves is refused here too,
at the opcode: ``APPEND``/``APPENDS`` to anything but a list (or to an object
array's item list: the decoder keeps it until its final walk),
``SETITEM``/``SETITEMS`` to anything but a dict or an OrderedDict,
``ADDITEMS`` to anything but a set (the unpickler would call a method of
another object, where it has one: ``list.__setitem__``,
``bytearray.extend``; refused whatever the object, a conservative rule no
pickler breaks), an odd number of items for ``DICT`` or ``SETITEMS``, a key
that cannot be hashed, and ``REDUCE``/``BUILD`` as
:mod:`safenpz._pickle._calls` decides.
"""

from __future__ import annotations

import math
from typing import NoReturn

from ._calls import build, reduce
from ._hashing import HashCost, stored
from ._static import RECORDED, Values, length
from ._values import (
    LEAF,
    MUTABLE,
    Big,
    Glob,
    Lst,
    Made,
    Node,
    Num,
    Run,
    StackError,
    Tup,
    nodes,
    run_count,
    run_offs,
)

__all__ = ["Stack"]


class Stack:
    """The abstract stack and memo of one scan (see above).

    Each method applies one opcode (or a run of one opcode); the opcode's
    name is only used in messages. Refusals raise
    :class:`~safenpz._pickle._values.StackError`.
    """

    def __init__(
        self, buf: bytes, max_depth: int, max_items: int, encoding: str = "latin1"
    ) -> None:
        self.buf = buf
        self.items: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.max_items = max_items
        self.values = Values(buf, encoding)
        self.cost = HashCost(self.values, max_depth, max_items)
        self.empty_tuple = Tup(1, 1, 0, ())  # one per scan, like CPython's
        self.unbuilt = 0  # arrays and dtypes REDUCE made and BUILD not yet
        # values the walk counts beyond the stream's pushes (set(x) copies x's
        # items, an object array walks its list's): see _act_stop
        self.extra = 0

    # -- basic moves

    def underflow(self, what: str) -> NoReturn:
        """Refuse `what`: it pops an item that is not there."""
        where = "above the last MARK" if self.marks else "on the stack"
        msg = f"{what}, but there is nothing {where} (stack underflow)"
        raise StackError(msg)

    def top(self, what: str) -> object:
        """The top value (a run of literals as it is)."""
        items = self.items
        if len(items) <= (self.marks[-1] if self.marks else 0):
            self.underflow(what)
        return items[-1]

    def top_item(self, what: str) -> object:
        """The top value itself (the last literal of a run: MEMO, DUP)."""
        last = self.top(what)
        if type(last) is Run:
            assert isinstance(last, Run)
            return Num(run_offs(self.buf, last)[run_count(self.buf, last) - 1])
        return last

    def need(self, target: object, kinds: tuple[str, ...], what: str) -> None:
        """Refuse `what` (an opcode that adds items) on a `target` whose kind
        is not one of `kinds`."""
        kind = self.values.kind(target)
        if kind not in kinds and target is not LEAF:  # LEAF: refused already
            msg = f"{what} on a {kind}: only a {' or '.join(kinds)} takes its items"
            raise StackError(msg)

    def pop(self, k: int, what: str) -> list[object]:
        """Pop `k` items (top last in the returned list)."""
        items = self.items
        floor = self.marks[-1] if self.marks else 0
        out: list[object] = []
        while k:
            if len(items) <= floor:
                self.underflow(what)
            top = items[-1]
            if type(top) is Run:
                offs = run_offs(self.buf, top)
                count = run_count(self.buf, top)
                take = min(count, k)
                out.extend([Num(off) for off in reversed(offs[count - take : count])])
                k -= take
                if take == count:
                    items.pop()
                else:
                    top.count = count - take
            else:
                out.append(items.pop())
                k -= 1
        out.reverse()
        return out

    def pop_mark(self, what: str) -> list[object]:
        """The items above the topmost MARK, removed with the MARK."""
        if not self.marks:
            msg = f"{what} without a MARK to close"
            raise StackError(msg)
        at = self.marks.pop()
        group = self.items[at:]
        del self.items[at:]
        return group

    def fixed(self, name: str, pops: int, push: object) -> None:
        """An opcode that pops `pops` items and pushes `push` (None: nothing)."""
        if pops:
            self.pop(pops, name)
        if push is not None:
            self.items.append(push)

    # -- MARK and the opcodes that close it

    def mark(self) -> None:
        """MARK."""
        self.marks.append(len(self.items))

    def close_tuple(self) -> None:
        """TUPLE: the items above the MARK become one tuple."""
        group = self.pop_mark("TUPLE")
        self.items.append(self.cost.tuple_of(group))

    def close_list(self) -> None:
        """LIST."""
        group = self.pop_mark("LIST")
        lst = Lst(nodes(group))
        self.extend_list(lst, group)
        self.items.append(lst)

    def close_dict(self) -> None:
        """DICT: keys and values alternate above the MARK."""
        group = self.pop_mark("DICT")
        types = set(map(type, group))
        if len(group) % 2 or Run in types:
            _even(self.buf, group, "DICT")
        node = Node(nodes(group), "dict")
        self.fill(node, group, types)
        self.cost.hashed(group, 2, target=node, types=types)
        self.items.append(node)

    def close_frozenset(self) -> None:
        """FROZENSET."""
        group = self.pop_mark("FROZENSET")
        types = set(map(type, group))
        node = Node(nodes(group), "frozenset")
        self.fill(node, group, types)
        self.cost.hashed(group, target=node, what="frozenset item", types=types)
        self.items.append(node)

    def close_appends(self) -> None:
        """APPENDS: the items above the MARK go into the list below it."""
        group = self.pop_mark("APPENDS")
        target = self.top("APPENDS")
        if not group or not self.need_list(target, "APPENDS"):
            return  # nothing to do (or a value of a refused opcode)
        assert isinstance(target, Lst)
        self.extend_list(target, group)
        self._adopt(target, group)

    def close_setitems(self) -> None:
        """SETITEMS: keys and values above the MARK go into the dict below."""
        group = self.pop_mark("SETITEMS")
        target = self.top("SETITEMS")
        if not group:
            return
        types = set(map(type, group))
        if len(group) % 2 or Run in types:
            _even(self.buf, group, "SETITEMS")
        if target is LEAF:
            return
        if type(target) is not Node or target.kind not in _DICTS:
            self.need(target, _DICTS, "SETITEMS")
        assert isinstance(target, Node)
        self.fill(target, group, types)
        self.cost.hashed(group, 2, target=target, types=types)
        if not _NODES.isdisjoint(types):
            target.kids += nodes(group)

    def close_additems(self) -> None:
        """ADDITEMS: the items above the MARK go into the set below it."""
        group = self.pop_mark("ADDITEMS")
        target = self.top("ADDITEMS")
        if not group or target is LEAF:
            return
        if type(target) is not Node or target.kind != "set":
            self.need(target, ("set",), "ADDITEMS")
        assert isinstance(target, Node)
        types = set(map(type, group))
        self.fill(target, group, types)
        self.cost.hashed(group, target=target, what="set item", types=types)
        if not _NODES.isdisjoint(types):
            target.kids += nodes(group)

    def need_list(self, target: object, what: str) -> bool:
        """`what` appends to `target`: a list, not an object array's items
        (False: a value of a refused opcode, report mode)."""
        if target is LEAF:
            return False
        self.need(target, ("list",), what)
        if target.frozen:  # type: ignore[attr-defined]
            msg = (
                f"{what} to a list that is an object array's items (the "
                "decoder reads them at the end: they may not change)"
            )
            raise StackError(msg)
        return True

    def fill(self, node: Node, group: list[object], types: set[type]) -> None:
        """Record in `node` the items put into it (counted, kept while few),
        and whether one of them is a global (the walk refuses it); `types`:
        the types of the items."""
        node.n += len(group)
        items = node.items
        if items is not None:
            items.extend(group)
            if len(items) > RECORDED:
                node.items = None
        if Run in types:
            node.n += length(self.buf, group) - len(group)
        if Glob in types:
            self.globals_in(node, group)
        if Tup in types:
            self.held(group)

    def held(self, group: list[object]) -> None:
        """`group` goes into a container: a tuple in it holding a global is
        something the final walk may meet (checked at ``STOP``)."""
        if any(type(i) is Tup and i.bad is not None for i in group):
            self.cost.flagged = True

    def globals_in(self, node: Node, group: list[object]) -> None:
        """Mark `node`: `group` (put into it) holds a global."""
        glob = next(i for i in group if type(i) is Glob)
        self.cost.mark(node, stored(glob.qualname))

    def close_instance(self, name: str) -> None:
        """INST, OBJ (refused by the scanner; followed in report mode)."""
        group = self.pop_mark(name)
        if name == "OBJ" and not group:
            self.underflow(name)
        self.items.append(LEAF)

    def _adopt(self, target: object, group: list[object]) -> None:
        """Edges from `target` (if mutable) to the containers in `group`."""
        if type(target) in MUTABLE:
            assert isinstance(target, Node)
            target.kids += nodes(group)

    def extend_list(self, lst: Lst, group: list[object]) -> None:
        """Record `group` in `lst` (its items; what ``set(lst)`` would hash)."""
        lst.src.extend(group)
        types = set(map(type, group))
        if Glob in types:
            self.globals_in(lst, group)
        if Tup in types:
            self.held(group)
        if Tup not in types and Big not in types:
            return
        for item in group:
            if type(item) is Tup:
                assert isinstance(item, Tup)
                lst.size += item.size
                lst.big += item.big
            elif type(item) is Big:
                lst.size += 1
                lst.big += 1

    # -- opcodes with a stack effect beyond push/pop

    def reduce(self) -> None:
        """``fn(*args)`` (checked by :func:`~safenpz._pickle._calls.reduce`):
        the result holds the args tuple (an over-estimate of one level: the
        objects ``set(list)`` or an array holds are items of items of the
        args, see :func:`~safenpz._pickle._graph.check_graph`)."""
        fn, args = self.pop(2, "REDUCE")
        made = reduce(self.values, fn, args)
        if made.kind in ("set", "frozenset"):
            assert isinstance(args, Tup)
            self._set_of(args, made)
            self.extra += made.n
        elif type(made) is Made and not made.built:
            self.unbuilt += 1
        self.items.append(made)

    def _set_of(self, args: Tup, made: Node) -> None:
        """``set(x)``/``frozenset(x)`` hash the items of x (a list or tuple)."""
        cost = self.cost
        cost.charge(
            args.size + sum(lst.size for lst in args.lists),
            args.big + sum(lst.big for lst in args.lists),
        )
        if len(args.src) == 1:  # set(x): x's items
            x = args.src[0]
            assert isinstance(x, Lst | Tup)
            what = f"{made.kind} item"
            cost.hashed(x.src, charge=False, target=made, what=what)
            self.held([x, *x.src])

    def tuple_n(self, name: str, k: int) -> None:
        """TUPLE1, TUPLE2, TUPLE3: the top `k` items become a tuple."""
        self.items.append(self.cost.tuple_of(self.pop(k, name)))

    def appends(self, k: int) -> None:
        """`k` APPENDs in a row: each pops an item into the one below it (a
        refusal names the APPEND of the run that fails)."""
        items = self.items
        for i in range(k):
            try:
                if len(items) >= (self.marks[-1] if self.marks else 0) + 2 and (
                    type(items[-1]) is not Run
                ):
                    item = items.pop()  # the common case, in one step
                else:
                    (item,) = self.pop(1, "APPEND")
                self._append_one(self.top("APPEND"), item)
            except StackError as err:
                err.delta = i
                raise

    def _append_one(self, target: object, item: object) -> None:
        """One APPEND of `item` to `target` (:meth:`extend_list`, for one)."""
        if (type(target) is not Lst or target.frozen) and not self.need_list(
            target, "APPEND"
        ):
            return
        assert isinstance(target, Lst)
        target.src.append(item)
        tp = type(item)
        if tp is Tup:
            assert isinstance(item, Tup)
            target.size += item.size
            target.big += item.big
            if item.bad is not None:
                self.cost.flagged = True
        elif tp is Big:
            target.size += 1
            target.big += 1
        elif tp is Glob:
            self.globals_in(target, [item])
        if isinstance(item, Node):
            target.kids.append(item)

    def setitems(self, k: int) -> None:
        """`k` SETITEMs in a row: each pops a key and a value into the dict
        below them (nested dicts: ``}K\x00}K\x00}ss``); a refusal names the
        SETITEM of the run that fails."""
        for i in range(k):
            try:
                key, value = self.pop(2, "SETITEM")
                below = self.top("SETITEM")
                if below is LEAF:
                    continue
                if type(below) is not Node or below.kind not in _DICTS:
                    self.need(below, _DICTS, "SETITEM")
                assert isinstance(below, Node)
                pair = [key, value]
                types = {type(key), type(value)}
                self.fill(below, pair, types)  # (and whether they hold a global)
                self.cost.hashed(pair, 2, target=below, types=types)
                if isinstance(key, Node):
                    below.kids.append(key)
                if isinstance(value, Node):
                    below.kids.append(value)
            except StackError as err:
                err.delta = i
                raise

    def pops(self, k: int) -> None:
        """`k` POPs in a row (POP of a bare MARK drops the MARK)."""
        items, marks = self.items, self.marks
        for i in range(k):
            if marks and marks[-1] == len(items):
                marks.pop()
                continue
            if len(items) <= (marks[-1] if marks else 0):
                try:
                    self.underflow("POP")
                except StackError as err:
                    err.delta = i
                    raise
            top = items[-1]
            if type(top) is Run:
                count = run_count(self.buf, top)
                if count > 1:
                    top.count = count - 1
                    continue
            items.pop()

    def build(self) -> None:
        """``obj.__setstate__(state)`` (checked by
        :func:`~safenpz._pickle._calls.build`): `obj` holds the state (for an
        array, its items are in a list in a tuple: two levels over, see
        :func:`~safenpz._pickle._graph.check_graph`)."""
        (state,) = self.pop(1, "BUILD")
        target = self.top("BUILD")
        unbuilt = type(target) is Made and not target.built
        build(self.values, target, state, self.max_items)
        self.unbuilt -= unbuilt
        if type(target) is Made and target.data is not None:
            assert target.shape is not None
            self.extra += math.prod(target.shape)
        if isinstance(state, Node) and (
            type(target) in MUTABLE or type(target) is Made
        ):
            assert isinstance(target, Node)
            target.kids.append(state)

    # -- the memo

    def put(self, idx: int, what: str) -> None:
        """Store the top value at memo index `idx`."""
        self.memo[idx] = self.top_item(what)

    def get(self, idx: int, what: str) -> None:
        """Push the value stored at memo index `idx`."""
        try:
            self.items.append(self.memo[idx])
        except KeyError:
            msg = f"{what} of memo index {idx}, which was never stored"
            raise StackError(msg) from None


#: What SETITEM and SETITEMS may fill.
_DICTS = ("dict", "OrderedDict")


def _even(buf: bytes, group: list[object], what: str) -> None:
    """`what` takes keys and values in pairs."""
    n = length(buf, group)
    if n % 2:
        msg = f"odd number of items for {what} ({n}): keys and values pair up"
        raise StackError(msg)


#: The abstract values that are containers (edges of the graph).
_NODES = frozenset({Node, Lst, Tup, Made})
