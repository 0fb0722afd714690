"""What hashing a pickle's dict keys and set items would cost, counted statically.

CPython's unpickler builds containers iteratively, but *hashing* a tuple
recurses into its items in C without a recursion check: a million-deep tuple
used as a dict key or set item crashes the interpreter, and tuples that share
items through the memo make one hash visit exponentially many values. Numeric
hashes are not randomized: ints beyond ``+-(2**61 - 1)``, floats and tuples of
numbers can be crafted to collide, and a dict of colliding keys takes
quadratic time to build. :class:`HashCost` keeps, for one scan, the bounds
that make hashing safe before the C unpickler runs:

* no tuple is nested deeper than ``max_depth`` and none expands to more than
  ``max_items`` values (:meth:`HashCost.tuple_of`);
* hashing every dict key and set item visits at most ``max_items`` values and
  meets at most :data:`MAX_BIG_INT_KEYS` big ints (:meth:`HashCost.charge`);
* at most :data:`~safenpz._limits.MAX_SAME_HASH` distinct numbers or tuples of
  numbers share one real hash (:meth:`HashCost.count_hash`; values are decoded
  from their literal bytes only when hashed).
"""

from __future__ import annotations

from .._limits import MAX_SAME_HASH
from ._opcodes import code
from ._values import (
    BIG,
    FLOAT_CODES,
    HASHED,
    NOVAL,
    UNK,
    Lst,
    Node,
    Num,
    Run,
    StackError,
    Tup,
    num_value,
    run_count,
    run_offs,
)

__all__ = ["MAX_BIG_INT_KEYS", "HashCost", "is_big_int"]

#: Ints at least this large (in absolute value) may collide in a hash table.
_HASH_MODULUS = 2**61 - 1
#: Dict keys / set items holding such ints that one stream may hash.
MAX_BIG_INT_KEYS = 4096
_BINARY_LONGS = frozenset({code("LONG1"), code("LONG4")})
_BINFLOAT = bytes([code("BINFLOAT")])


def is_big_int(op: int, arg: bytes) -> bool:
    """Whether the int literal of opcode `op` (its argument `arg`) lies outside
    ``+-(2**61 - 1)``."""
    if op in _BINARY_LONGS:
        value = int.from_bytes(arg, "little", signed=True)
    else:  # INT / LONG text ("I01\n" is True in protocol 0; "L" is Python 2)
        digits = arg.rstrip(b"L").lstrip(b"+-")
        if not digits.isdigit():
            return False  # not an int: the unpickler refuses it
        if len(digits.lstrip(b"0")) > 19:
            return True
        value = int(digits)
    return abs(value) >= _HASH_MODULUS


class HashCost:
    """The hashing work of one scan, and the tuples it builds (see above)."""

    def __init__(self, buf: bytes, max_depth: int, max_items: int) -> None:
        self.buf = buf
        self.max_height = max_depth + 1  # the walk's depth 0 is the outermost
        self.max_depth = max_depth
        self.max_items = max_items
        self.hash_work = 0
        self.big_keys = 0
        self.seen: set[object] = set()  # distinct numeric keys hashed so far
        self.same: dict[int, int] = {}  # how many of them share each hash

    def tuple_of(self, items: list[object]) -> Tup:
        """The tuple of `items`, refused if too high or too large to hash."""
        height, size, big = 0, 1, 0
        lists: list[Lst] = []
        kids: list[Node] = []
        for item in items:
            tp = type(item)
            if tp is Tup:
                assert isinstance(item, Tup)
                kids.append(item)
                height = max(height, item.height)
                size += item.size
                big += item.big
                lists.extend(item.lists)
            elif tp is Run:
                assert isinstance(item, Run)
                size += run_count(self.buf, item)
            elif item is BIG:
                size += 1
                big += 1
            elif tp is Lst:
                assert isinstance(item, Lst)
                size += 1 + item.size
                big += item.big
                lists.append(item)
                kids.append(item)
            else:
                if tp is Node:
                    assert isinstance(item, Node)
                    kids.append(item)
                size += 1
        self._check_tuple(height + 1, size)
        tup = Tup(height + 1, size, big, tuple(lists), kids)
        tup.src = items
        return tup

    def _check_tuple(self, height: int, size: int) -> None:
        if height > self.max_height:
            msg = (
                f"tuples nested deeper than max_depth={self.max_depth} (hashing "
                "such a tuple recurses in C and can crash the interpreter)"
            )
            raise StackError(
                msg,
                "limit",
                limit="max_depth",
                value=height - 1,
                maximum=self.max_depth,
            )
        if size > self.max_items:
            msg = (
                f"a tuple that expands to more than max_items={self.max_items} "
                "values through memo-shared items (hashing it would visit "
                "each of them)"
            )
            raise StackError(
                msg, "limit", limit="max_items", value=size, maximum=self.max_items
            )

    def hashed(self, items: list[object], step: int = 1, charge: bool = True) -> None:
        """Account for hashing ``items[::step]`` (dict keys, set items);
        `charge`: count their hash work (not yet counted)."""
        if not any(
            type(i) in HASHED or i is BIG or (type(i) is Run and self.has_float(i))
            for i in items
        ):
            return
        if any(type(i) is Run for i in items):
            items = self._flat(items)
        keys: list[object] = []
        for item in items[::step]:
            if type(item) is Tup:
                assert isinstance(item, Tup)
                if charge:
                    self.charge(item.size, item.big)
                keys.append(item)
            elif item is BIG:
                if charge:
                    self.charge(1, 1)
            elif type(item) is Num:
                assert isinstance(item, Num)
                if self.buf[item.off] in FLOAT_CODES:
                    keys.append(item)
        for key in keys:
            self.count_hash(key)

    def _flat(self, items: list[object]) -> list[object]:
        """`items` with each :class:`Run` replaced by its literals."""
        buf = self.buf
        flat: list[object] = []
        for item in items:
            if type(item) is Run:
                assert isinstance(item, Run)
                offs = run_offs(buf, item)[: run_count(buf, item)]
                flat.extend([Num(off) for off in offs])
            else:
                flat.append(item)
        return flat

    def has_float(self, run: Run) -> bool:
        """Whether `run` may hold a float (a BINFLOAT byte in its range)."""
        return self.buf.find(_BINFLOAT, run.start, run.end) >= 0

    def value(self, item: object) -> object:
        """The Python value of `item` if it is a number or a tuple of numbers
        (:data:`UNK` otherwise). Tuple values are built bottom-up, without
        recursion, and kept (memo-shared tuples are built once)."""
        if type(item) is Num:
            assert isinstance(item, Num)
            return num_value(self.buf, item.off)
        if type(item) is not Tup:
            return UNK
        assert isinstance(item, Tup)
        todo: list[Tup] = [item]
        while todo:
            tup = todo[-1]
            if tup.val is not NOVAL:
                todo.pop()
                continue
            pending = [x for x in tup.src if isinstance(x, Tup) and x.val is NOVAL]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            tup.val = self._tuple_value(tup)
        return item.val

    def _tuple_value(self, tup: Tup) -> object:
        """The value of `tup`, whose tuple items have theirs already."""
        buf = self.buf
        vals: list[object] = []
        for x in tup.src:
            tp = type(x)
            if tp is Run:
                assert isinstance(x, Run)
                offs = run_offs(buf, x)[: run_count(buf, x)]
                vals.extend([num_value(buf, off) for off in offs])
            elif tp is Num:
                assert isinstance(x, Num)
                vals.append(num_value(buf, x.off))
            elif tp is Tup:
                assert isinstance(x, Tup)
                vals.append(x.val)
            else:
                vals.append(UNK)
            if vals[-1] is UNK:
                return UNK
        return tuple(vals)

    def count_hash(self, key: object) -> None:
        """Count one hashed number or tuple of numbers by its real hash:
        CPython's numeric and tuple hashes are not randomized and can be
        inverted, so distinct keys can be crafted to share one hash (a dict
        of them takes quadratic time to build)."""
        value = self.value(key)
        if value is UNK or value in self.seen:
            return
        self.seen.add(value)
        h = hash(value)
        count = self.same.get(h, 0) + 1
        self.same[h] = count
        if count > MAX_SAME_HASH:
            msg = (
                f"more than {MAX_SAME_HASH} distinct dict keys or set items "
                f"share one hash value ({h}): a hash-collision attack (a dict "
                "of such keys takes quadratic time to build)"
            )
            raise StackError(msg)

    def charge(self, size: int, big: int) -> None:
        """Count hashing `size` values, `big` of them big ints."""
        self.hash_work += size
        self.big_keys += big
        if self.hash_work > self.max_items:
            msg = (
                f"hashing the dict keys and set items would visit more than "
                f"max_items={self.max_items} values (tuples sharing items "
                "through the memo)"
            )
            raise StackError(
                msg,
                "limit",
                limit="max_items",
                value=self.hash_work,
                maximum=self.max_items,
            )
        if self.big_keys > MAX_BIG_INT_KEYS:
            msg = (
                f"more than {MAX_BIG_INT_KEYS} dict keys or set items hold ints "
                f"beyond +-(2**61 - 1), whose hashes can be made to collide "
                "(a dict of them can take hours to build)"
            )
            raise StackError(msg)
