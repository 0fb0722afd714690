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
"""

from __future__ import annotations

import itertools
from typing import NoReturn

from ._hashing import HashCost
from ._values import (
    BIG,
    LISTED,
    MUTABLE,
    SETFN,
    Lst,
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

    def __init__(self, buf: bytes, max_depth: int, max_items: int) -> None:
        self.buf = buf
        self.items: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.cost = HashCost(buf, max_depth, max_items)
        # one per scan: a stream may (wrongly) APPEND to it, adding edges
        self.empty_tuple = Tup(1, 1, 0, ())

    # -- basic moves

    def underflow(self, what: str) -> NoReturn:
        """Refuse `what`: it pops an item that is not there."""
        where = "above the last MARK" if self.marks else "on the stack"
        msg = f"{what}, but there is nothing {where} (stack underflow)"
        raise StackError(msg)

    def top(self, what: str) -> object:
        """The top value (``0`` for a run of literals)."""
        items = self.items
        if len(items) <= (self.marks[-1] if self.marks else 0):
            self.underflow(what)
        top = items[-1]
        return 0 if type(top) is Run else top

    def top_item(self, what: str) -> object:
        """The top value itself (the last literal of a run: MEMO, DUP)."""
        top = self.top(what)
        last = self.items[-1]
        if type(last) is Run:
            assert isinstance(last, Run)
            return Num(run_offs(self.buf, last)[run_count(self.buf, last) - 1])
        return top

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
        self.cost.hashed(group, 2)
        self.items.append(Node(nodes(group)))

    def close_frozenset(self) -> None:
        """FROZENSET."""
        group = self.pop_mark("FROZENSET")
        self.cost.hashed(group)
        self.items.append(Node(nodes(group)))

    def close_appends(self) -> None:
        """APPENDS: the items above the MARK go into the list below it."""
        group = self.pop_mark("APPENDS")
        target = self.top("APPENDS")
        if type(target) is Lst:
            assert isinstance(target, Lst)
            self.extend_list(target, group)
        self._adopt(target, group)

    def close_setitems(self) -> None:
        """SETITEMS: keys and values above the MARK go into the dict below."""
        group = self.pop_mark("SETITEMS")
        target = self.top("SETITEMS")
        self.cost.hashed(group, 2)
        self._adopt(target, group)

    def close_additems(self) -> None:
        """ADDITEMS: the items above the MARK go into the set below it."""
        group = self.pop_mark("ADDITEMS")
        target = self.top("ADDITEMS")
        self.cost.hashed(group)
        self._adopt(target, group)

    def close_instance(self, name: str) -> None:
        """INST, OBJ (refused by the scanner; followed in report mode)."""
        group = self.pop_mark(name)
        if name == "OBJ" and not group:
            self.underflow(name)
        self.items.append(0)

    def _adopt(self, target: object, group: list[object]) -> None:
        """Edges from `target` (if mutable) to the containers in `group`."""
        if type(target) in MUTABLE:
            assert isinstance(target, Node)
            target.kids += nodes(group)

    def extend_list(self, lst: Lst, group: list[object]) -> None:
        """Record in `lst` what ``set(lst)`` would hash of `group`."""
        for item in group:
            if type(item) is Tup:
                assert isinstance(item, Tup)
                lst.size += item.size
                lst.big += item.big
                lst.src.append(item)
            elif item is BIG:
                lst.size += 1
                lst.big += 1
            elif type(item) is Num or type(item) is Run:
                lst.src.append(item)

    # -- opcodes with a stack effect beyond push/pop

    def reduce(self) -> None:
        """``fn(*args)``: the result holds the args tuple (an over-estimate of
        one level: the objects ``set(list)`` or an array holds are items of
        items of the args, see :func:`~safenpz._pickle._graph.check_graph`)."""
        fn, args = self.pop(2, "REDUCE")
        if fn is SETFN and type(args) is Tup:
            assert isinstance(args, Tup)
            self._set_of(args)
        self.items.append(Node([args]) if isinstance(args, Node) else Node())

    def _set_of(self, args: Tup) -> None:
        """``set(x)``/``frozenset(x)`` hash the items of x (a list or tuple)."""
        cost = self.cost
        cost.charge(
            args.size + sum(lst.size for lst in args.lists),
            args.big + sum(lst.big for lst in args.lists),
        )
        if len(args.src) == 1:  # set(x): x's items, when x is static
            x = args.src[0]
            if type(x) is Lst:
                assert isinstance(x, Lst)
                cost.hashed(x.src, charge=False)
            elif type(x) is Tup:
                assert isinstance(x, Tup)
                cost.hashed(x.src, charge=False)

    def tuple_n(self, name: str, k: int) -> None:
        """TUPLE1, TUPLE2, TUPLE3: the top `k` items become a tuple."""
        self.items.append(self.cost.tuple_of(self.pop(k, name)))

    def appends(self, k: int) -> None:
        """`k` APPENDs in a row: each pops an item into the one below it."""
        items = self.items
        if k == 1 and len(items) >= (self.marks[-1] if self.marks else 0) + 2:
            item = items[-1]
            if type(item) is not Run:  # the common case, in one step
                items.pop()
                self._append_one(items[-1], item)
                return
        chain = self.pop(k, "APPEND")
        chain.insert(0, self.top("APPEND"))
        if any(type(i) in LISTED or i is BIG for i in chain):
            for below, item in itertools.pairwise(chain):
                if type(below) is Lst:
                    assert isinstance(below, Lst)
                    self.extend_list(below, [item])
        for below, item in itertools.pairwise(chain):
            if isinstance(item, Node) and type(below) in MUTABLE:
                assert isinstance(below, Node)
                below.kids.append(item)

    def _append_one(self, target: object, item: object) -> None:
        """One APPEND of `item` (not a run) to `target`."""
        if type(target) is Lst:
            assert isinstance(target, Lst)
            if type(item) in LISTED:
                self.extend_list(target, [item])
            if isinstance(item, Node):
                target.kids.append(item)
        elif type(target) is Node and isinstance(item, Node):
            assert isinstance(target, Node)
            target.kids.append(item)

    def setitems(self, k: int) -> None:
        """`k` SETITEMs in a row: each pops a key and a value."""
        popped = self.pop(2 * k, "SETITEM")
        target = self.top("SETITEM")
        self.cost.hashed(popped[0::2])
        # the i-th SETITEM from the top sets a key and value in the value
        # the (i+1)-th one pops (nested dicts: ``}K\x00}K\x00}ss``)
        keys, values = popped[0::2], popped[1::2]
        for below, key, value in zip([target, *values], keys, values, strict=False):
            if type(below) in MUTABLE:
                assert isinstance(below, Node)
                if isinstance(key, Node):
                    below.kids.append(key)
                if isinstance(value, Node):
                    below.kids.append(value)

    def pops(self, k: int) -> None:
        """`k` POPs in a row (POP of a bare MARK drops the MARK)."""
        items, marks = self.items, self.marks
        for _ in range(k):
            if marks and marks[-1] == len(items):
                marks.pop()
                continue
            if len(items) <= (marks[-1] if marks else 0):
                self.underflow("POP")
            top = items[-1]
            if type(top) is Run:
                count = run_count(self.buf, top)
                if count > 1:
                    top.count = count - 1
                    continue
            items.pop()

    def build(self) -> None:
        """``obj.__setstate__(state)``: `obj` holds the state (for an array,
        its items are in a list in a tuple: two levels over, see
        :func:`~safenpz._pickle._graph.check_graph`)."""
        (state,) = self.pop(1, "BUILD")
        target = self.top("BUILD")
        if isinstance(state, Node) and type(target) in MUTABLE:
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
