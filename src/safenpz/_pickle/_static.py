"""What the scanner knows statically about a value of its abstract stack.

The shared checks (:mod:`safenpz._pickle._rules`) take plain values; the
scanner reads them from the stream's literals with :class:`Values`:

* :meth:`Values.kind` is the type name the C unpickler's object would have
  (``"list"``, ``"str"``, ``"_DtypeBuilder"`` ...);
* :meth:`Values.arg` is the value a constructor would be called with: numbers
  and strings decoded from their literals, tuples, lists and dicts rebuilt
  from their items (lists to :data:`WIDTH` items and dicts from their first
  :data:`RECORDED` entries, :data:`DEPTH` levels deep: no check looks further),
  stand-ins (:class:`~safenpz._pickle._rules.Ref`) for constructors, builders
  and finished NumPy values;
* :meth:`Values.data` is the same for an array's data or a scalar's bytes,
  with long literals as a :class:`~safenpz._pickle._rules.Blob` (type and
  length, never copied);
* :meth:`Values.resolve` is the dtype a ``numpy.dtype`` builder stands for,
  once ``BUILD`` finished it.

Every value read is charged to a budget of a few values (or characters) per
byte of the stream (memo-shared containers and strings are read again at
each use), so reading arguments stays linear in the stream, in time and in
memory; a stream that needs more is refused.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ._literals import BYTES_CODES, PY2_CODES, UNICODE_CODES, literal, literal_size
from ._opcodes import code
from ._rules import (
    Blob,
    Ref,
    Refused,
    as_bytes,
    byte_length,
    expected_dtype,
    type_name,
    unbuilt,
)
from ._values import (
    NOVAL,
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

__all__ = [
    "ARRAYISH",
    "DEPTH",
    "FROZEN",
    "MUTABLE_IN",
    "RECORDED",
    "UNHASHABLE",
    "WIDTH",
    "Values",
    "expand",
    "length",
    "refused",
]

#: Items recorded per dict (keys and values) and per frozenset: enough for the
#: largest structured dtype's field table (4096 names and their titles).
RECORDED = 2 * 2 * 4096 + 2
#: Items of a list read as an argument (no check accepts a longer list).
WIDTH = 4097
#: Levels of containers read as an argument (no check looks deeper).
DEPTH = 6

#: :attr:`~safenpz._pickle._values.Tup.flags`: the tuple holds (at any depth)
#: a list, dict, set, OrderedDict or bytearray (hashing it fails at once) ...
UNHASHABLE = 1
#: ... an array or a void scalar (hashing it fails once the walk builds it) ...
ARRAYISH = 2
#: ... a container that may still change (its argument value is not kept) ...
MUTABLE_IN = 4
#: ... a frozenset.
FROZEN = 8

_NONE = code("NONE")
_SHORT_BINBYTES = code("SHORT_BINBYTES")
#: Literals whose length is that of their bytes (bytes; Python 2 strings).
_SIZED = BYTES_CODES | (PY2_CODES - {code("STRING")})
_MADE_NAMES = {
    "array": "_ArrayBuilder",
    "dtype": "_DtypeBuilder",
    "scalar": "Done",
    "frombuffer": "Done",
    "complex": "complex",
    "bytes": "bytes",
    "bytearray": "bytearray",
}


def expand(buf: bytes, items: list[object]) -> list[object]:
    """`items` with each :class:`Run` replaced by its literals."""
    if not any(type(i) is Run for i in items):
        return items
    out: list[object] = []
    for item in items:
        if type(item) is Run:
            assert isinstance(item, Run)
            offs = run_offs(buf, item)[: run_count(buf, item)]
            out.extend([Num(off) for off in offs])
        else:
            out.append(item)
    return out


def length(buf: bytes, items: list[object]) -> int:
    """How many values `items` (which may hold runs) stand for."""
    if Run not in set(map(type, items)):
        return len(items)
    runs = [i for i in items if type(i) is Run]
    return len(items) - len(runs) + sum(run_count(buf, r) for r in runs)


class Values:
    """Static values of one scan (see the module docstring).

    Parameters
    ----------
    buf : bytes
        The stream.
    encoding : str
        What Python 2 strings become (the load's ``encoding``).
    """

    def __init__(self, buf: bytes, encoding: str) -> None:
        self.buf = buf
        self.encoding = encoding
        self.budget = 4 * len(buf) + (1 << 20)
        self.blobs: dict[int, Blob] = {}  # long literals read, by offset
        # calls checked already, by what decides them (see _scalars)
        self.checked: dict[tuple[int, ...], tuple[object, ...]] = {}

    def charge(self, n: int) -> None:
        """Count `n` values read (refused beyond the budget)."""
        self.budget -= n
        if self.budget < 0:
            msg = (
                "the constructor arguments and BUILD states hold more values "
                "than the stream has bytes to spell (memo-shared containers "
                "read again and again)"
            )
            raise StackError(msg)

    # -- what it is

    def kind(self, item: object) -> str:
        """The type name of the object the unpickler would have for `item`."""
        tp = type(item)
        if tp is int:
            assert isinstance(item, int)
            op = self.buf[item]
            if op in UNICODE_CODES or op in BYTES_CODES:
                return "str" if op in UNICODE_CODES else "bytes"
            if op in PY2_CODES:
                return "bytes" if self.encoding == "bytes" else "str"
            return "str"  # UNICODE
        if tp is Num or tp is Big:
            return type(self.number(item)).__name__
        if tp is Run:
            assert isinstance(item, Run)
            last = run_offs(self.buf, item)[run_count(self.buf, item) - 1]
            return type(num_value(self.buf, last)).__name__
        if tp is Made:
            assert isinstance(item, Made)
            return _MADE_NAMES.get(item.role, type_name(item.val))
        if isinstance(item, Node):
            return item.kind
        if tp is Glob:
            return "_Constructor"
        return "bytearray" if tp is Barr else "object"

    def is_none(self, item: object) -> bool:
        """Whether `item` is ``None`` (a ``NONE`` literal)."""
        return type(item) is Num and self.buf[item.off] == _NONE

    def number(self, item: object) -> Any:
        """The value of a :class:`Num` or :class:`Big`."""
        assert isinstance(item, Num | Big)
        return num_value(self.buf, item.off)

    # -- values

    def arg(self, item: object, depth: int = 0) -> Any:
        """The value a constructor would be called with (module docstring)."""
        tp = type(item)
        if tp is Num or tp is Big:
            return self.number(item)
        if tp is int:
            assert isinstance(item, int)
            value: Any = literal(self.buf, item, self.encoding, limit=len(self.buf))
            self.charge(1 + len(value))
            return value
        if tp is Tup:
            assert isinstance(item, Tup)
            return self._tuple(item, depth)
        if isinstance(item, Node) and tp is not Made:
            if depth >= DEPTH:
                return Ref(item.kind)
            return self._container(item, depth)
        return self.data(item)

    def data(self, item: object) -> Any:
        """:meth:`arg`, with long literals as a Blob (an array's data)."""
        tp = type(item)
        if tp is int:
            assert isinstance(item, int)
            return self.literal(item)
        if tp is Barr:
            assert isinstance(item, Barr)
            return self.literal(item.off)
        if tp is Made:
            assert isinstance(item, Made)
            if item.val is None:  # a stand-in, named like the decoder's object
                item.val = Ref(_MADE_NAMES[item.role], owner=item)
            return item.val
        if tp is Glob:
            assert isinstance(item, Glob)
            return item.ref
        if tp is Num or tp is Big or tp is Tup or isinstance(item, Node):
            return self.arg(item)
        return Ref("object")

    def literal(self, off: int) -> Any:
        """The string or bytes literal at `off`: its value, charged to the
        budget by its length, or (beyond :data:`BLOB_BYTES`) a Blob, made
        once."""
        buf = self.buf
        if buf[off] == _SHORT_BINBYTES:  # (a NumPy scalar's data) in place
            raw = buf[off + 2 : off + 2 + buf[off + 1]]
            self.charge(1 + len(raw))
            return raw
        blob = self.blobs.get(off)
        if blob is not None:
            return blob
        value = literal(buf, off, self.encoding)
        if isinstance(value, Blob):
            self.blobs[off] = value
        else:
            self.charge(1 + len(value))  # type: ignore[arg-type]
        return value

    def _tuple(self, tup: Tup, depth: int) -> Any:
        if tup.aval is not NOVAL:
            return tup.aval
        if depth >= DEPTH:
            return Ref("tuple")
        items = expand(self.buf, tup.src)
        self.charge(len(items))
        value = tuple(self.arg(i, depth + 1) for i in items)
        if not tup.flags & MUTABLE_IN:
            tup.aval = value  # one object, as the unpickler's (memo: `is`)
        return value

    def _container(self, node: Node, depth: int) -> Any:
        if type(node) is Lst:
            assert isinstance(node, Lst)
            items = expand(self.buf, node.src[:WIDTH])[:WIDTH]
            self.charge(len(items))
            return [self.arg(i, depth + 1) for i in items]
        if node.kind in ("dict", "OrderedDict") and node.items is not None:
            pairs = expand(self.buf, node.items)
            if len(pairs) > RECORDED:
                return Ref(node.kind)
            self.charge(len(pairs))
            out = dict if node.kind == "dict" else OrderedDict
            return out(
                (self.arg(k, depth + 1), self.arg(v, depth + 1))
                for k, v in zip(pairs[0::2], pairs[1::2], strict=True)
            )
        return Ref(node.kind)

    def walked(self, item: object, depth: int = 0) -> Any:
        """The value the decoder's final walk gives `item`, where a field of
        a structured array needs it (numbers, text, bytes, NumPy scalars,
        tuples and lists of them; anything else a stand-in NumPy refuses)."""
        tp = type(item)
        if tp is Num or tp is Big or tp is int:
            return self.arg(item)
        if (tp is Tup or tp is Lst) and depth < DEPTH:
            items = expand(self.buf, item.src)  # type: ignore[attr-defined]
            self.charge(len(items))
            walked = [self.walked(i, depth + 1) for i in items]
            return tuple(walked) if tp is Tup else walked
        if tp is Made and item.role in ("complex", "bytes"):  # type: ignore[attr-defined]
            return item.val  # type: ignore[attr-defined]
        if tp is Made and item.role == "scalar":  # type: ignore[attr-defined]
            return self.scalar(item)  # type: ignore[arg-type]
        return Ref(self.kind(item))

    def size(self, item: object, what: str) -> int:
        """``len(as_bytes(value))`` of the argument `item` (a literal's
        length read from its opcode)."""
        if item is None:
            return byte_length(None, what)
        if type(item) is int:
            assert isinstance(item, int)
            op = self.buf[item]
            if op in _SIZED and (op in BYTES_CODES or self.encoding != "ASCII"):
                return literal_size(self.buf, item)
        return byte_length(self.data(item), what)

    def dtype(self, item: object) -> np.dtype[Any]:
        """The finished dtype the argument `item` stands for."""
        if type(item) is Made and item.role == "dtype" and item.built:
            dt: np.dtype[Any] = item.dtype
            return dt
        return self.resolve(self.arg(item))

    def scalar(self, made: Made) -> Any:
        """The NumPy scalar a ``scalar`` REDUCE makes (its dtype and data are
        checked; data beyond a literal's Blob size give a stand-in)."""
        dt: np.dtype[Any] = made.dtype
        if dt.itemsize == 0:
            return np.ndarray((), dtype=dt)[()]
        raw = self.data(made.raw)
        if isinstance(raw, Blob):
            return Ref("Done")
        return np.ndarray((), dtype=dt, buffer=as_bytes(raw, "scalar data"))[()]

    # -- dtypes

    def resolve(self, value: object) -> np.dtype[Any]:
        """The finished dtype the argument `value` stands for."""
        owner = value.owner if isinstance(value, Ref) else None
        if not (isinstance(owner, Made) and owner.role == "dtype"):
            raise expected_dtype(value)
        if not owner.built:
            msg = "dtype"
            raise unbuilt(msg)
        dt: np.dtype[Any] = owner.dtype
        return dt


def refused(err: Refused) -> StackError:
    """The scanner's refusal for a failed shared check."""
    if err.limit is not None:
        return StackError(
            str(err), "limit", limit=err.limit, value=err.value, maximum=err.maximum
        )
    return StackError(str(err))
