"""The dynamic half of the reference scan: the decoder's verdict, opcode by opcode.

:mod:`reference_scan` checks what needs no values (stack shape, globals,
limits, the containment graph). Whether values are acceptable is decided
here by *running* the stream, independently of the static scanner: the
standard library's pure-Python unpickler (one opcode at a time, so each
refusal is attributed to the opcode and byte offset it happened at), with
``find_class`` mapped to safenpz's own validating constructors (the decoder's
closed table) and the decoder's final walk at ``STOP``. On top of what the
decoder refuses, the rules the scanner adds, written down again:

* protocol 0 literals are read by the C unpickler (``pickle.loads`` of the
  one literal), as the real decoder does;
* ``REDUCE`` needs a tuple of arguments (the C unpickler's rule);
* ``APPEND``/``APPENDS`` go to a list only, and not to one that is an object
  array's items; ``SETITEM``/``SETITEMS`` to a dict or an OrderedDict;
  ``ADDITEMS`` to a set; ``BUILD`` with a state other than ``None`` only on
  an array or a dtype being built; a structured object array's rows must fit
  its fields when ``BUILD`` gives them (NumPy's own ``__setstate__`` on the
  walked rows);
* hash collisions (``MAX_SAME_HASH``): the dict keys and set items a file can
  make collide are counted by the value the final walk gives them -- floats,
  tuples and frozensets (of values, strings included), ``complex``, NumPy
  scalars of the exact kinds (as ``.item()``) -- at most 64 distinct values
  per hash; keys with a predictable hash that are not valued (other NumPy
  scalars, dtypes, frozensets of more than 8192 items or holding a frozenset,
  tuples holding such) at most 4096; ints beyond ``+-(2**61 - 1)`` are
  counted by the static half; ints, strings and bytes alone are not counted.

:func:`decode_verdict` returns ``(kind, opcode, offset, rank)`` of the first
refusal or None; `rank` orders refusals at one opcode against the static
half's (lower first: the static half's are 1, unsafe globals -1).
"""

from __future__ import annotations

import functools
import io
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np

from safenpz import FormatError, LimitError, SafenpzError, UnsafeFileError
from safenpz._limits import DEFAULT_LIMITS, MAX_SAME_HASH, Limits
from safenpz._pickle._array_state import _ArrayBuilder
from safenpz._pickle._constructors import TABLE, _Constructor
from safenpz._pickle._context import Context, Done
from safenpz._pickle._dtype_state import _DtypeBuilder
from safenpz._pickle._globals import ROLES
from safenpz._pickle._walk import Walker

__all__ = ["decode_verdict"]

Verdict = tuple[str, str, int, float] | None
_UNK = object()  # a key whose hash the rules do not count
_UNVALUED = object()  # a key with a predictable hash, not valued
_MAX_UNVALUED = 4096
_BIG = 2**61 - 1


class _Refused(Exception):
    """A rule of this module refuses the stream (format), at `rank`."""

    def __init__(self, message: str, rank: float = 0) -> None:
        super().__init__(message)
        self.rank = rank


def _kind(err: BaseException) -> str:
    if isinstance(err, UnsafeFileError):
        return "unsafe"
    if isinstance(err, LimitError | RecursionError | MemoryError):
        return "limit"
    return "format"


class _Run(pickle._Unpickler):
    """One stream, run by the pure-Python unpickler with the decoder's table."""

    def __init__(self, data: bytes, spans: list[tuple[str, int]], limits: Limits):
        super().__init__(io.BytesIO(data), fix_imports=False, encoding="latin1")
        self.spans = spans
        self.ctx = Context("<reference>", limits, "latin1")
        self.frozen: set[int] = set()  # id() of lists that are array items
        self.seen: set[object] = set()
        self.same: dict[int, int] = {}
        self.unvalued = 0

    def find_class(self, module: str, name: str) -> Any:
        try:
            qualname, fn = TABLE[(module, name)]
        except KeyError:
            msg = f"{module}.{name}"
            raise UnsafeFileError(msg) from None
        bound = None if fn is None else functools.partial(fn, self.ctx)
        return _Constructor(qualname, bound, "<reference>", ROLES[(module, name)])

    def persistent_load(self, pid: Any) -> Any:
        msg = "persistent id"
        raise UnsafeFileError(msg)

    def run(self, stop_at: int | None) -> Verdict:
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[Any] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        for name, pos in self.spans:
            if stop_at is not None and pos >= stop_at:
                return None  # the static half refused already
            key = self.read(1)
            try:
                _DISPATCH[key[0]](self)
            except pickle._Stop as stop:  # type: ignore[attr-defined]
                return self.walk(stop.value, name, pos)
            except _Refused as err:
                return "format", name, pos, err.rank
            except BaseException as err:
                return _kind(err), name, pos, -1 if _kind(err) == "unsafe" else 0
        return None

    def walk(self, result: Any, name: str, pos: int) -> Verdict:
        try:
            Walker(self.ctx).walk(result, 0)
        except (SafenpzError, RecursionError, MemoryError, TypeError) as err:
            return _kind(err), name, pos, 2
        return None

    def load_frame(self) -> None:
        """The C unpickler only reads ahead: frames do not have to end on an
        opcode (the static half checks that they fit the stream)."""
        self.read(8)

    # -- protocol 0 text: the C unpickler's own reading

    def _text(self, op: bytes) -> None:
        line = self.readline()
        self.append(pickle.loads(op + line + b".", encoding="latin1"))

    def load_int(self) -> None:
        self._text(b"I")

    def load_long(self) -> None:
        self._text(b"L")

    def load_float(self) -> None:
        self._text(b"F")

    def load_string(self) -> None:
        self._text(b"S")

    def load_unicode(self) -> None:
        self._text(b"V")

    # -- the calls

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if type(args) is not tuple:
            msg = "argument list must be a tuple"
            raise TypeError(msg)
        role = getattr(func, "role", None)
        try:
            value = func(*args)
        except FormatError as err:
            hashing = role in ("set", "frozenset") and "hashable" in str(err)
            raise _Refused(str(err), 1.5 if hashing else 0) from None
        self.stack[-1] = value
        if role in ("set", "frozenset") and args:
            self.count(list(args[0]))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, _ArrayBuilder | _DtypeBuilder | Done):
            inst.__setstate__(state)
            if isinstance(inst, _ArrayBuilder) and inst.items is not None:
                self.frozen.add(id(inst.items))
                _fits(inst)
            return
        if state is not None:
            msg = "BUILD with a state on what is not built"
            raise _Refused(msg)

    # -- the containers

    def _list(self, what: str) -> list[Any]:
        target = self.stack[-1]
        if type(target) is not list or id(target) in self.frozen:
            msg = f"{what} to a {type(target).__name__}"
            raise _Refused(msg)
        return target

    def load_append(self) -> None:
        value = self.stack.pop()
        self._list("APPEND").append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()  # type: ignore[attr-defined]
        if items:
            self._list("APPENDS").extend(items)

    def _dict(self, items: list[Any], what: str) -> None:
        if len(items) % 2:
            msg = f"odd number of items for {what}"
            raise _Refused(msg)
        if not items:
            return
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict):
            msg = f"{what} to a {type(target).__name__}"
            raise _Refused(msg)
        self.count(items[0::2])  # first: colliding keys would take long
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._dict([key, value], "SETITEM")

    def load_setitems(self) -> None:
        items = self.pop_mark()  # type: ignore[attr-defined]
        self._dict(items, "SETITEMS")

    def load_dict(self) -> None:
        items = self.pop_mark()  # type: ignore[attr-defined]
        if len(items) % 2:
            msg = "odd number of items for DICT"
            raise _Refused(msg)
        self.count(items[0::2])
        self.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})

    def load_additems(self) -> None:
        items = self.pop_mark()  # type: ignore[attr-defined]
        if not items:
            return
        target = self.stack[-1]
        if type(target) is not set:
            msg = f"ADDITEMS to a {type(target).__name__}"
            raise _Refused(msg)
        self.count(items)
        target.update(items)

    def load_frozenset(self) -> None:
        items = self.pop_mark()  # type: ignore[attr-defined]
        self.count(items)
        self.append(frozenset(items))

    # -- hash collisions

    def count(self, keys: list[Any]) -> None:
        """Count `keys` (dict keys, set items) by the value they will have."""
        for key in keys:
            if type(key) in (int, bool, str, bytes, bytearray) or key is None:
                continue
            value = _value(key)
            if value is _UNK:
                continue
            if value is _UNVALUED:
                self.unvalued += 1
                if self.unvalued > _MAX_UNVALUED:
                    msg = "too many unvalued keys"
                    raise _Refused(msg, 2)
                continue
            if value in self.seen:
                continue
            self.seen.add(value)
            h = hash(value)
            self.same[h] = self.same.get(h, 0) + 1
            if self.same[h] > MAX_SAME_HASH:
                msg = "hash collisions"
                raise _Refused(msg, 2)


def _value(obj: Any, in_frozenset: bool = False) -> object:
    """What the final walk makes of a key, for its hash (see the docstring)."""
    if isinstance(obj, Done):
        return _scalar(obj.value)
    if isinstance(obj, _DtypeBuilder):
        return _UNVALUED
    if type(obj) is int and abs(obj) >= _BIG:
        return _UNK  # counted by the static half
    if type(obj) in (int, float, bool, str, bytes, complex) or obj is None:
        return obj
    if type(obj) is tuple:
        return _combine(tuple, [_value(x, in_frozenset) for x in obj])
    if type(obj) is frozenset:
        if in_frozenset or len(obj) > 8192 or any(_holds_frozenset(x) for x in obj):
            return _UNVALUED
        return _combine(frozenset, [_value(x, True) for x in obj])
    return _UNK


def _holds_frozenset(obj: Any) -> bool:
    if type(obj) is frozenset:
        return True
    return type(obj) is tuple and any(_holds_frozenset(x) for x in obj)


def _combine(kind: type, values: list[object]) -> object:
    if any(v is _UNK for v in values):
        return _UNK
    if any(v is _UNVALUED for v in values):
        return _UNVALUED
    return kind(values)


def _scalar(value: Any) -> object:
    if not isinstance(value, np.generic) or isinstance(value, np.void):
        return _UNK  # an array: refused by the walk
    kind, size = value.dtype.kind, value.dtype.itemsize
    exact = (
        kind in "biu?SU" or (kind == "f" and size <= 8) or (kind == "c" and size <= 16)
    )
    return value.item() if exact else _UNVALUED


def _walked(value: Any) -> Any:
    """A row value as the final walk gives it (before NumPy takes it)."""
    if isinstance(value, Done):
        return value.value
    if type(value) in (tuple, list):
        return type(value)(_walked(v) for v in value)
    return value


def _fits(builder: _ArrayBuilder) -> None:
    """A structured object array's rows, given to NumPy as the walk would."""
    assert builder.state is not None
    assert builder.items is not None
    version, shape, dt, fortran = builder.state
    if dt.names is None:
        return
    fields = [dt.fields[n][0] for n in dt.names]  # type: ignore[index]
    if any(f.hasobject and f != np.dtype(object) for f in fields):
        msg = "objects nested in a field"
        raise _Refused(msg)
    rows = [
        tuple(
            None if f.hasobject else _walked(v)
            for f, v in zip(fields, row, strict=True)
        )
        for row in builder.items
    ]
    try:
        np.ndarray((0,), np.int8).__setstate__((version, shape, dt, fortran, rows))  # type: ignore[arg-type]
    except Exception as err:
        msg = f"rows that do not fit: {err}"
        raise _Refused(msg) from None


_DISPATCH: dict[int, Any] = dict(pickle._Unpickler.dispatch)
for _name in (
    "frame",
    "int",
    "long",
    "float",
    "string",
    "unicode",
    "reduce",
    "build",
    "append",
    "appends",
    "setitem",
    "setitems",
    "dict",
    "additems",
    "frozenset",
):
    _DISPATCH[pickle.__dict__[_name.upper()][0]] = getattr(_Run, f"load_{_name}")


def decode_verdict(
    data: bytes,
    spans: list[tuple[str, int]],
    limits: Limits = DEFAULT_LIMITS,
    stop_at: int | None = None,
) -> Verdict:
    """The first refusal of running `data` (whose opcodes are `spans`:
    ``(name, offset)``) before the opcode at `stop_at` (where the static half
    refused: running on could take unbounded time or crash), or None."""
    return _Run(data, spans, limits).run(stop_at)
