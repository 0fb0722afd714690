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
* at most :data:`~safenpz._limits.MAX_SAME_HASH` distinct keys share one real
  hash (:meth:`HashCost.count_hash`): numbers, and what the scanner can value
  statically from literals: tuples and frozensets of such values (strings
  included), ``complex`` and NumPy scalars of the exact kinds (bool, ints,
  floats and complex up to 64 + 64 bits, str, bytes), counted by the value
  the decoder's final walk gives them; keys whose hash is predictable but
  that the scanner does not value (long double, datetime and timedelta
  scalars, dtypes, frozensets too large to record) count against
  :data:`MAX_UNVALUED_KEYS`, like big ints (frozensets count so when they
  hold more than :data:`FROZENSET_VALUED` items or a frozenset, directly or
  in a tuple); values are decoded from their literal bytes only when hashed;
* a key the unpickler cannot hash (a list, dict, set, OrderedDict or
  bytearray, or a tuple holding one) is refused where it is hashed; a key the
  final walk turns into an array (or a void scalar) marks the container
  that holds it (:attr:`~safenpz._pickle._values.Node.bad`), refused at
  ``STOP`` if the result holds it.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .._limits import MAX_SAME_HASH
from ._opcodes import code
from ._rules import Blob, Ref
from ._static import ARRAYISH, FROZEN, MUTABLE_IN, UNHASHABLE, Values
from ._values import (
    FLOAT_CODES,
    HASHED,
    NOVAL,
    UNK,
    Barr,
    Big,
    Glob,
    Lst,
    Made,
    Node,
    Num,
    Run,
    StackError,
    Tup,
    num_value,
    run_count,
    run_offs,
)

__all__ = ["MAX_BIG_INT_KEYS", "MAX_UNVALUED_KEYS", "HashCost", "is_big_int", "stored"]

#: Ints at least this large (in absolute value) may collide in a hash table.
_HASH_MODULUS = 2**61 - 1
#: Dict keys / set items holding such ints that one stream may hash.
MAX_BIG_INT_KEYS = 4096
#: Dict keys / set items with a predictable hash that the scanner does not
#: compute (see the module docstring) that one stream may hash.
MAX_UNVALUED_KEYS = 4096
#: Frozensets of more items count as unvalued keys.
FROZENSET_VALUED = 8192
#: A key whose hash is predictable but not computed here.
UNVALUED = object()
#: Keys of these types need more than a hash count (see :meth:`HashCost.check_key`).
_SPECIAL = frozenset({Lst, Node, Made, Glob, Barr, Tup})
#: Keys that need a look (the others are str or bytes literals).
_LOOKED_AT = _SPECIAL | {Num, Big}
#: What may hash to a crafted value (Big by count; the rest by value).
_COUNTED = HASHED | {Big, Made, Node, int}
_MADE_ONLY: set[type] = {Made}
#: Items a tuple of leaves holds (each one value, no container): numbers,
#: and literals by their offset.
_SCALAR_ITEMS = frozenset({Num, int})
_MUTABLE_KINDS = frozenset({"dict", "set", "OrderedDict"})
#: struct formats of the NumPy float and complex scalars decoded here.
_STRUCT = {("f", 2): "e", ("f", 4): "f", ("f", 8): "d", ("c", 8): "ff", ("c", 16): "dd"}
#: NumPy scalar kinds whose value (``.item()``) hashes and compares exactly.
_EXACT_KINDS = frozenset("biu?SU")


def stored(qualname: str) -> str:
    """Why the decoder's walk refuses a global found as a value."""
    return f"the pickle stores the global {qualname} as a value; only data is allowed"


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

    def __init__(self, values: Values, max_depth: int, max_items: int) -> None:
        self.values = values
        self.buf = values.buf
        self.encoding = values.encoding
        self.max_height = max_depth + 1  # the walk's depth 0 is the outermost
        self.max_depth = max_depth
        self.max_items = max_items
        self.hash_work = 0
        self.big_keys = 0
        self.unvalued = 0
        self.seen: set[object] = set()  # distinct numeric keys hashed so far
        self.same: dict[int, int] = {}  # how many of them share each hash
        self.flagged = False  # some container holds what the walk refuses
        self.known: dict[int, tuple[Node, object]] = {}  # constructed keys' values

    def tuple_of(self, items: list[object]) -> Tup:
        """The tuple of `items`, refused if too high or too large to hash."""
        if _SCALAR_ITEMS.issuperset(map(type, items)):  # numbers, text: leaves
            size = len(items) + 1
            self._check_tuple(1, size)
            leaf = Tup(1, size, 0, ())  # no kids, lists, flags or big ints
            leaf.src = items
            return leaf
        height, size, big, flags = 0, 1, 0, 0
        lists: list[Lst] = []
        kids: list[Node] = []
        bad = None
        for item in items:
            tp = type(item)
            if tp is Tup:
                assert isinstance(item, Tup)
                kids.append(item)
                height = max(height, item.height)
                size += item.size
                big += item.big
                lists.extend(item.lists)
                flags |= item.flags
            elif tp is Run:
                assert isinstance(item, Run)
                size += run_count(self.buf, item)
            elif tp is Big:
                size += 1
                big += 1
            elif tp is Lst:
                assert isinstance(item, Lst)
                size += 1 + item.size
                big += item.big
                lists.append(item)
                kids.append(item)
                flags |= UNHASHABLE | MUTABLE_IN
            else:
                if isinstance(item, Node):
                    kids.append(item)
                    flags |= _held(item)
                elif tp is Barr:
                    flags |= UNHASHABLE | MUTABLE_IN
                elif tp is Glob:
                    bad = stored(item.qualname)  # type: ignore[attr-defined]
                size += 1
        self._check_tuple(height + 1, size)
        tup = Tup(height + 1, size, big, tuple(lists), kids)
        tup.src = items
        tup.flags = flags
        # a global in a tuple is refused only if the walk meets the tuple: it
        # is not a REDUCE's arguments then, but in a container (Stack.held)
        tup.bad = bad if bad is not None else _bad_kid(kids)
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

    def hashed(
        self,
        items: list[object],
        step: int = 1,
        charge: bool = True,
        target: Node | None = None,
        what: str = "dict key",
        types: set[type] | None = None,
    ) -> None:
        """Account for hashing ``items[::step]`` (dict keys, set items) put
        into `target`; `charge`: count their hash work (not yet counted).
        `what` names them in messages; `types` are the items' types, if
        known."""
        if types is None:
            types = set(map(type, items))
        if Run in types:
            if not self._worth(items, types):
                return
            items = self._flat(items)
            types = set(map(type, items))
        keys = items[::step] if step > 1 else items
        kinds = set(map(type, keys)) if step > 1 else types
        if _LOOKED_AT.isdisjoint(kinds):  # str and bytes literals only
            return
        if kinds == _MADE_ONLY:  # NumPy scalar keys (a label map)
            self._made_keys(keys, target, what)
            return
        if not _SPECIAL.isdisjoint(kinds):
            for key in keys:
                self.check_key(key, target, what)
        for key in self._counted(keys, charge):
            self.count_hash(key)

    def _made_keys(self, keys: list[Any], target: Node | None, what: str) -> None:
        """:meth:`hashed` for keys that constructors made, in two passes as
        there: :meth:`check_key` (which only looks at bytearrays and void
        scalars, or anything not a scalar), then each key counted by its
        value (:meth:`count_hash`; a key's value is computed once)."""
        for key in keys:
            if key.role != "scalar" or key.dtype.kind == "V":
                self.check_key(key, target, what)
        known, values = self.known, self.values
        for key in keys:
            kept = known.get(id(key))
            if kept is None:  # (key: its id stays its)
                kept = known[id(key)] = (key, _made_value(values, key))
            self._count_value(kept[1])

    def _counted(self, keys: list[object], charge: bool) -> list[object]:
        """The keys to count by hash; the hash work of tuples and big ints
        charged on the way (`charge`)."""
        counted: list[object] = []
        for item in keys:
            tp = type(item)
            if tp is Tup:
                assert isinstance(item, Tup)
                if charge:
                    self.charge(item.size, item.big)
                counted.append(item)
            elif tp is Big:
                if charge:
                    self.charge(1, 1)
            elif tp is Num:
                assert isinstance(item, Num)
                if self.buf[item.off] in FLOAT_CODES:
                    counted.append(item)
            elif tp in _COUNTED and tp is not int:
                counted.append(item)
        return counted

    def _worth(self, items: list[object], types: set[type]) -> bool:
        """Whether hashing `items` (of `types`, runs of literals among them)
        needs a look: a container, a value a constructor made, a big int or
        a float (ints below 2**61 have hashes no file can make collide)."""
        if not _SPECIAL.isdisjoint(types) or Big in types:
            return True
        buf = self.buf
        if Num in types and any(
            type(i) is Num and buf[i.off] in FLOAT_CODES for i in items
        ):
            return True
        return Run in types and any(type(i) is Run and self.has_float(i) for i in items)

    def check_key(self, key: object, target: Node | None, what: str) -> None:
        """Refuse a key the unpickler cannot hash; mark `target` when the
        decoder's final walk would refuse the key (module docstring)."""
        tp = type(key)
        kind = ""
        if tp is Lst:
            kind = "list"
        elif tp is Node and key.kind in _MUTABLE_KINDS:  # type: ignore[attr-defined]
            kind = key.kind  # type: ignore[attr-defined]
        elif tp is Barr or (tp is Made and key.role == "bytearray"):  # type: ignore[attr-defined]
            kind = "bytearray"
        elif tp is Tup and key.flags & UNHASHABLE:  # type: ignore[attr-defined]
            kind = "tuple holding a list, dict, set or bytearray"
        if kind:
            msg = f"{what}s must be hashable plain data (unhashable type: '{kind}')"
            raise StackError(msg)
        walked = "a dict key" if what == "dict key" else "a set item"
        if tp is Glob:
            self.mark(target, stored(key.qualname))  # type: ignore[attr-defined]
        elif (tp is Tup and key.flags & ARRAYISH) or (  # type: ignore[attr-defined]
            tp is Made and _held(key) & ARRAYISH  # type: ignore[arg-type]
        ):
            self.mark(target, f"{walked} is not hashable plain data (a NumPy array)")

    def mark(self, target: Node | None, why: str) -> None:
        """`target` holds what the walk refuses (checked at ``STOP``)."""
        if target is not None and target.bad is None:
            target.bad = why
            self.flagged = True

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
        """The value of `item` as the decoder's final walk gives it, for its
        hash: a number, str, bytes, complex, or a tuple or frozenset of such
        values (:data:`UNK`: not predictable or not a key;
        :data:`UNVALUED`: predictable, not computed). Tuple values are built
        bottom-up, without recursion, and kept (memo-shared tuples are built
        once)."""
        tp = type(item)
        if tp is Num:
            assert isinstance(item, Num)
            return num_value(self.buf, item.off)
        if tp is int:
            assert isinstance(item, int)
            value = self.values.literal(item)
            return UNK if isinstance(value, Blob) else value
        if tp is Made or tp is Node:  # computed once (memo-shared keys)
            assert isinstance(item, Node)
            kept = self.known.get(id(item))
            if kept is None:
                if type(item) is Made:
                    known = _made_value(self.values, item)
                else:
                    known = self._frozenset_value(item)
                kept = self.known[id(item)] = (item, known)  # (item: its id stays its)
            return kept[1]
        if tp is not Tup:
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
        unvalued = False
        for x in tup.src:
            tp = type(x)
            if tp is Run:
                assert isinstance(x, Run)
                offs = run_offs(buf, x)[: run_count(buf, x)]
                vals.extend([num_value(buf, off) for off in offs])
                continue
            if tp is Tup:
                assert isinstance(x, Tup)
                value = x.val
            else:
                value = self.value(x)
            if value is UNK:
                return UNK
            unvalued = unvalued or value is UNVALUED
            vals.append(value)
        return UNVALUED if unvalued else tuple(vals)

    def _frozenset_value(self, node: Node) -> object:
        """A frozenset key's value, from its items: those of a frozenset of
        at most :data:`FROZENSET_VALUED` items none of which is (or holds,
        in a tuple) a frozenset."""
        if node.kind != "frozenset":
            return UNK
        if node.items is None or node.n > FROZENSET_VALUED:
            return UNVALUED
        items = self._flat(node.items)
        for x in items:
            if (type(x) is Node and x.kind == "frozenset") or (
                type(x) is Tup and x.flags & FROZEN
            ):
                return UNVALUED
        vals = [self.value(x) for x in items]
        if any(v is UNK for v in vals):
            return UNK
        if any(v is UNVALUED for v in vals):
            return UNVALUED
        return frozenset(vals)

    def count_hash(self, key: object) -> None:
        """Count one hashed number or tuple of numbers by its real hash:
        CPython's numeric and tuple hashes are not randomized and can be
        inverted, so distinct keys can be crafted to share one hash (a dict
        of them takes quadratic time to build)."""
        self._count_value(self.value(key))

    def _count_value(self, value: object) -> None:
        """:meth:`count_hash` for a key whose value is `value`."""
        if value is UNVALUED:
            self.unvalued += 1
            if self.unvalued > MAX_UNVALUED_KEYS:
                msg = (
                    f"more than {MAX_UNVALUED_KEYS} dict keys or set items "
                    "have a hash that can be predicted but is not computed "
                    "here (NumPy long double, datetime or timedelta scalars, "
                    "dtypes, large frozensets): their hashes could be made to "
                    "collide"
                )
                raise StackError(msg)
            return
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


def _bad_kid(kids: list[Node]) -> str | None:
    """What the walk refuses in a tuple holding `kids`: a tuple holding a
    global (the tuples of a tuple are walked with it)."""
    for kid in kids:
        if type(kid) is Tup and kid.bad is not None:
            return kid.bad
    return None


def _held(node: Node) -> int:
    """The :attr:`~safenpz._pickle._values.Tup.flags` a container or a
    constructor's value gives a tuple that holds it."""
    if type(node) is Made:
        assert isinstance(node, Made)
        if node.role in ("array", "frombuffer") or (
            node.role == "scalar" and node.dtype.kind == "V"
        ):
            return ARRAYISH
        return UNHASHABLE | MUTABLE_IN if node.role == "bytearray" else 0
    if node.kind in _MUTABLE_KINDS:
        return UNHASHABLE | MUTABLE_IN
    return MUTABLE_IN if node.kind != "frozenset" else FROZEN


def _made_value(values: Values, made: Made) -> object:
    """The value the walk gives what a constructor made, for its hash."""
    role = made.role
    if role == "complex":
        return made.val
    if role == "bytes":
        return made.val if isinstance(made.val, bytes) else UNK
    if role == "dtype":
        return UNVALUED
    if role != "scalar":
        return UNK  # an array (marked), a bytearray (refused)
    dt: np.dtype[Any] = made.dtype
    if dt.kind in "fc" and dt.itemsize <= (8 if dt.kind == "f" else 16):
        return _scalar_item(values, made)
    if dt.kind in _EXACT_KINDS:
        return _scalar_item(values, made)
    return UNVALUED  # long double, datetime, timedelta; void: marked


def _scalar_item(values: Values, made: Made) -> object:
    """The value of a NumPy scalar key (its hash and equality are those of
    ``.item()`` for the exact kinds): ints, bools and floats decoded here,
    the rest by NumPy."""
    dt: np.dtype[Any] = made.dtype
    fmt = _STRUCT.get((dt.kind, dt.itemsize))
    if fmt is not None or dt.kind in "iu":
        raw = values.data(made.raw)
        if isinstance(raw, bytes):
            big = dt.str[0] == ">"
            if fmt is None:
                return int.from_bytes(
                    raw, "big" if big else "little", signed=dt.kind == "i"
                )
            parts = struct.unpack((">" if big else "<") + fmt, raw)
            return parts[0] if dt.kind == "f" else complex(*parts)
    scalar = values.scalar(made)
    if isinstance(scalar, Ref):  # data too long to read here
        return UNK if made.dtype.kind in "SU" else UNVALUED
    value: object = scalar.item()
    return value
