"""Legacy writer: pickles, ``.npy`` and ``.npz`` byte for byte as old NumPy wrote them.

Real legacy files were written by other people with other software: Python 2
NumPy (``cPickle``, protocol 2) and NumPy 1.x on Python 3 (protocols 0-5).
This module re-creates their bytes from plain data, so the tests cover every
layout without shipping those files. Two pickler models:

**Python 3** (``Layout(3, p, ...)``): the C pickler of CPython 3
(``pickle.dumps``) as it pickles a NumPy 1.x array. Memo ids from 0, every
non-atomic object memoised (``PUT``/``BINPUT``/``LONG_BINPUT``/``MEMOIZE``, by
identity), lists and dicts in batches of 1000 (a batch of one item is
``MARK item APPENDS`` unless the whole list has one item: ``item APPEND``; a
dict of a multiple of 1000 items ends in an empty ``MARK SETITEMS``), bytes as
``_codecs.encode(str, 'latin1')`` below protocol 3, ``STACK_GLOBAL`` and
64 KiB frames from protocol 4, ``_frombuffer`` with an in-band ``BYTEARRAY8``
for contiguous numeric arrays in protocol 5. ``int_flags=True`` writes the
``numpy.dtype`` flags as NumPy < 1.19 did (ints ``0``/``1``: ``K\\x00K\\x01``, or
``I0\\nI1\\n`` in protocol 0); otherwise as bools. With the NumPy spelling
of the running NumPy and bool flags, the output equals ``pickle.dumps`` (the
tests check this).

**Python 2** (``PY2``): ``cPickle`` protocol 2 as NumPy 1.x on Python 2 used it
(the Keras IMDb/Reuters files). Memo ids from 1 (``len(memo) + 1``); an object
is memoised only when its reference count is >= 2 (``put``), except non-empty
lists and dicts and objects reduced with a tuple state (the ndarray, the
dtype), which always are (``put2``), and str/unicode of fewer than 2
characters, which never are. References are modelled: a list item, a dict key
or value and an object-array element are held by their container *and* by the
pickler's iterator (so always >= 2); a tuple element by its tuple only; the
tuples, strings and data that ``__reduce__`` creates are fresh (1). Strings are
``SHORT_BINSTRING``/``BINSTRING`` (Python 3 ``str`` that fits latin-1, and
``bytes``; both load as ``str`` with ``encoding="latin1"``) or ``BINUNICODE``
(other ``str``, or :class:`Unicode`); ``GLOBAL``; ints in ``BININT1/2/BININT``,
ints outside 32 bits but inside 64 as text ``INT`` (``I...\\n``), larger ones
as ``LONG1`` (a Python 2 ``long``); lists and dicts in batches of 1000 where a
batch of exactly one item is ``item APPEND`` / ``key value SETITEM``.

Values: ``None``, bool, int, float, str, bytes, list, tuple, dict,
``OrderedDict`` (Python 3 layouts only) and NumPy arrays (object arrays of any
of these, numeric arrays of any byte order, both memory orders).

Files: :func:`npy_bytes` (header v1.0, keys sorted, padded to 16 bytes in the
Python 2 style, 64 otherwise) and :func:`npz_bytes` (``np.savez_compressed`` as
NumPy 1.x on Python 2 wrote it: one temporary file per member, written into
the zip with ``ZipFile.write``: deflate level -1, no data descriptor, Unix mode
0600 from ``mkstemp``, the files' modification times).
"""

from __future__ import annotations

import collections
import io
import struct
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import length_hint
from typing import Any

import numpy as np

__all__ = [
    "IMDB_MEMBERS",
    "LAYOUTS",
    "PY2",
    "PY3_LAYOUTS",
    "REUTERS_MEMBERS",
    "Layout",
    "Unicode",
    "dumps",
    "npy_bytes",
    "npz_bytes",
]

# Python 2 dict order of np.savez's keyword names (what the Keras files hold)
REUTERS_MEMBERS = ("y", "x")
IMDB_MEMBERS = ("x_test", "x_train", "y_train", "y_test")


@dataclass(frozen=True)
class Layout:
    """Which software wrote the pickle.

    Attributes
    ----------
    python : int
        2 (``cPickle``) or 3 (CPython 3's C pickler).
    protocol : int
        Pickle protocol: 2 for Python 2; 0-5 for Python 3.
    int_flags : bool
        ``numpy.dtype`` flags as ints (NumPy < 1.19) instead of bools.
    core : str
        Module spelling of ``_reconstruct``: ``numpy.core`` (NumPy 1.x) or
        ``numpy._core`` (NumPy 2).
    """

    python: int
    protocol: int
    int_flags: bool
    core: str = "numpy.core"

    @property
    def name(self) -> str:
        if self.python == 2:
            return "py2-cpickle2"
        flags = "intflags" if self.int_flags else "boolflags"
        return f"py3-p{self.protocol}-{flags}"


PY2 = Layout(2, 2, int_flags=True)
PY3_LAYOUTS = tuple(Layout(3, p, f) for p in range(6) for f in (True, False))
LAYOUTS = (PY2, *PY3_LAYOUTS)


class Unicode(str):
    """A Python 2 ``unicode`` value (``BINUNICODE``) in the Python 2 layout."""

    __slots__ = ()


_BATCH = 1000
_FRAME_TARGET = 64 * 1024
_FRAME_MIN = 4
_INT64 = (-(2**63), 2**63 - 1)
_FIX_IMPORTS = {"builtins": "__builtin__"}


def _long_bytes(x: int) -> bytes:
    """pickle's ``encode_long``: two's complement, little endian, minimal."""
    if x == 0:
        return b""
    nbytes = (x.bit_length() >> 3) + 1
    result = x.to_bytes(nbytes, byteorder="little", signed=True)
    if x < 0 and nbytes > 1 and result[-1] == 0xFF and (result[-2] & 0x80) != 0:
        result = result[:-1]
    return result


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True)
class _Reduce:
    """``func(*args)``, then ``BUILD state`` (and dict items), memoised as `obj`."""

    func: _Global
    args: tuple[Any, ...]
    state: Any
    obj: Any
    dictitems: Iterator[tuple[Any, Any]] | None = None


class _Writer:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.py2 = layout.python == 2
        self.proto = layout.protocol
        self.bin = self.proto >= 1
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # memoised objects stay alive: ids stay unique
        self.interned: dict[tuple[type, Any], Any] = {}
        self.out = io.BytesIO()
        self.frame: io.BytesIO | None = None
        self.refs: dict[int, int] = {}  # Python 2: modelled reference counts

    # -- output, framing as pickle's _Framer -------------------------------

    def write(self, data: bytes) -> None:
        (self.frame or self.out).write(data)

    def commit_frame(self, force: bool = False) -> None:
        f = self.frame
        if f is None or not (f.tell() >= _FRAME_TARGET or force):
            return
        data = f.getvalue()
        if f.tell() == 0:
            return
        if len(data) >= _FRAME_MIN:
            self.out.write(b"\x95" + struct.pack("<Q", len(data)))
        self.out.write(data)
        self.frame = io.BytesIO()

    def write_large(self, header: bytes, payload: bytes) -> None:
        if self.frame is not None:
            self.commit_frame(force=True)
            self.out.write(header)
            self.out.write(payload)
        else:
            self.write(header + payload)

    def dumps(self, obj: Any) -> bytes:
        if self.py2:
            self._count_refs(obj)
            self.refs[id(obj)] = self.refs.get(id(obj), 0) + 2
        if self.proto >= 2:
            self.write(b"\x80" + bytes([self.proto]))
        if self.proto >= 4:
            self.frame = io.BytesIO()
        self.save(obj)
        self.write(b".")
        if self.frame is not None:
            if self.frame.tell():
                self.commit_frame(force=True)
            self.frame = None
        return self.out.getvalue()

    # -- memo ---------------------------------------------------------------

    def put_op(self, idx: int) -> bytes:
        if self.proto >= 4:
            return b"\x94"
        if self.bin:
            if idx < 256:
                return b"q" + bytes([idx])
            return b"r" + struct.pack("<I", idx)
        return b"p" + str(idx).encode() + b"\n"

    def get_op(self, idx: int) -> bytes:
        if self.bin:
            if idx < 256:
                return b"h" + bytes([idx])
            return b"j" + struct.pack("<I", idx)
        return b"g" + str(idx).encode() + b"\n"

    def memoize(self, obj: Any, *, always: bool = True) -> None:
        """Python 3: always. Python 2: ``put2`` (`always`) or ``put`` (refcount)."""
        if self.py2 and not always and self.refs.get(id(obj), 1) < 2:
            return
        idx = len(self.memo) + (1 if self.py2 else 0)
        self.write(self.put_op(idx))
        self.memo[id(obj)] = idx
        self.keep.append(obj)

    def _count_refs(self, obj: Any) -> None:
        """Python 2 reference counts of the graph (see the module docstring)."""
        seen: set[int] = set()
        todo = [obj]
        while todo:
            x = todo.pop()
            if id(x) in seen:
                continue
            seen.add(id(x))
            if isinstance(x, np.ndarray):
                kids = list(x.ravel(order="C")) if x.dtype.hasobject else []
                step = 3  # the array, the element list, the pickler's iterator
            elif isinstance(x, list):
                kids, step = x, 2
            elif isinstance(x, dict):
                kids = [y for kv in x.items() for y in kv]
                step = 2
            elif isinstance(x, tuple):
                kids, step = list(x), 1
            else:
                continue
            for k in kids:
                self.refs[id(k)] = self.refs.get(id(k), 0) + step
                todo.append(k)

    # -- save ---------------------------------------------------------------

    def save(self, obj: Any) -> None:
        self.commit_frame()
        if isinstance(obj, _Global):
            obj = self.intern(obj)  # one object per global, as in a module
        if self._save_atom(obj):
            return
        if id(obj) in self.memo and self._looked_up(obj):
            self.write(self.get_op(self.memo[id(obj)]))
            return
        if isinstance(obj, _Global):
            self.save_global(obj)
        elif isinstance(obj, _Reduce):
            self.save_reduce(obj)
        elif type(obj) in _SAVERS:
            _SAVERS[type(obj)](self, obj)
        elif isinstance(obj, np.dtype):
            self.save_reduce(self.reduce_dtype(obj))
        else:
            msg = f"legacy writer: cannot write {type(obj).__name__}"
            raise TypeError(msg)

    def _save_atom(self, obj: Any) -> bool:
        """Write `obj` if it is a value never memoised (None, bools, ints,
        floats, the empty tuple); say whether it was."""
        if obj is None:
            self.write(b"N")
        elif obj is True or obj is False:
            self.save_bool(obj)
        elif type(obj) is int:
            self.save_int(obj)
        elif type(obj) is float:
            self.save_float(obj)
        elif type(obj) is tuple and not obj:
            self.write(b")" if self.bin else b"(t")
        else:
            return False
        return True

    def _looked_up(self, obj: Any) -> bool:
        """Python 3 looks every object up in the memo; cPickle only those with
        a reference count >= 2 (globals, dtypes and arrays always have)."""
        if not self.py2 or self.refs.get(id(obj), 1) >= 2:
            return True
        return not isinstance(obj, str | bytes | tuple | list | dict)

    def save_bool(self, obj: bool) -> None:
        if self.proto >= 2:
            self.write(b"\x88" if obj else b"\x89")
        else:
            self.write(b"I01\n" if obj else b"I00\n")

    def save_float(self, obj: float) -> None:
        if self.bin:
            self.write(b"G" + struct.pack(">d", obj))
        else:
            self.write(b"F" + repr(obj).encode() + b"\n")

    def save_int(self, obj: int) -> None:
        if self.bin and -(2**31) <= obj < 2**31:
            if 0 <= obj <= 0xFF:
                self.write(b"K" + bytes([obj]))
            elif 0 <= obj <= 0xFFFF:
                self.write(b"M" + struct.pack("<H", obj))
            else:
                self.write(b"J" + struct.pack("<i", obj))
            return
        if self.py2 and _INT64[0] <= obj <= _INT64[1]:
            self.write(b"I" + str(obj).encode() + b"\n")  # a Python 2 int
            return
        if self.proto >= 2:
            raw = _long_bytes(obj)
            if len(raw) < 256:
                self.write(b"\x8a" + bytes([len(raw)]) + raw)
            else:
                self.write(b"\x8b" + struct.pack("<i", len(raw)) + raw)
        elif -(2**31) <= obj < 2**31:
            self.write(b"I" + str(obj).encode() + b"\n")
        else:
            self.write(b"L" + str(obj).encode() + b"L\n")

    def save_str(self, obj: str) -> None:
        if self.py2:
            if type(obj) is not Unicode:
                try:
                    self._py2_string(obj.encode("latin-1"), obj)
                    return
                except UnicodeEncodeError:
                    pass
            raw = obj.encode("utf-8", "surrogatepass")
            self.write(b"X" + struct.pack("<I", len(raw)) + raw)
            if len(obj) >= 2:
                self.memoize(obj, always=False)
            return
        if self.bin:
            raw = obj.encode("utf-8", "surrogatepass")
            n = len(raw)
            if n <= 0xFF and self.proto >= 4:
                self.write(b"\x8c" + bytes([n]) + raw)
            elif n >= _FRAME_TARGET and self.frame is not None:
                self.write_large(b"X" + struct.pack("<I", n), raw)
            else:
                self.write(b"X" + struct.pack("<I", n) + raw)
        else:
            text = (
                obj.replace("\\", "\\u005c")
                .replace("\0", "\\u0000")
                .replace("\n", "\\u000a")
                .replace("\r", "\\u000d")
                .replace("\x1a", "\\u001a")
            )
            self.write(b"V" + text.encode("raw-unicode-escape") + b"\n")
        self.memoize(obj)

    def _py2_string(self, raw: bytes, obj: Any) -> None:
        """A Python 2 ``str``: memoised by reference count, never when short."""
        if len(raw) < 256:
            self.write(b"U" + bytes([len(raw)]) + raw)
        else:
            self.write(b"T" + struct.pack("<i", len(raw)) + raw)
        if len(raw) >= 2:
            self.memoize(obj, always=False)

    def save_bytes(self, obj: bytes) -> None:
        if self.py2:
            self._py2_string(obj, obj)
            return
        if self.proto < 3:
            if not obj:
                red = _Reduce(_Global("builtins", "bytes"), (), None, obj)
            else:
                text = str(obj, "latin1")  # CPython caches strings of 0/1 char
                args = (
                    self.intern(text) if len(text) < 2 else text,
                    self.intern("latin1"),
                )
                red = _Reduce(_Global("_codecs", "encode"), args, None, obj)
            self.save_reduce(red)
            return
        n = len(obj)
        if n <= 0xFF:
            self.write(b"C" + bytes([n]) + obj)
        elif n > 0xFFFFFFFF and self.proto >= 4:
            self.write_large(b"\x8e" + struct.pack("<Q", n), obj)
        elif n >= _FRAME_TARGET and self.frame is not None:
            self.write_large(b"B" + struct.pack("<I", n), obj)
        else:
            self.write(b"B" + struct.pack("<I", n) + obj)
        self.memoize(obj)

    def save_bytearray(self, obj: bytearray) -> None:
        n = len(obj)
        head = b"\x96" + struct.pack("<Q", n)
        if n >= _FRAME_TARGET:
            self.write_large(head, bytes(obj))
        else:
            self.write(head + bytes(obj))
        self.memoize(obj)

    def intern(self, obj: Any) -> Any:
        """One object per value, as CPython's interned/cached strings are."""
        return self.interned.setdefault((type(obj), obj), obj)

    def save_tuple(self, obj: tuple[Any, ...]) -> None:
        n = len(obj)
        if n <= 3 and self.proto >= 2:
            for x in obj:
                self.save(x)
            self.write(bytes([0x84 + n]))  # TUPLE1/2/3
        else:
            self.write(b"(")
            for x in obj:
                self.save(x)
            self.write(b"t")
        self.memoize(obj, always=False)

    def save_list(self, obj: list[Any]) -> None:
        self.write(b"]" if self.bin else b"(l")
        self.memoize(obj, always=bool(obj))
        self.batch(obj, b"a", b"e", len(obj), exact=True)

    def save_dict(self, obj: dict[Any, Any]) -> None:
        self.write(b"}" if self.bin else b"(d")
        self.memoize(obj, always=bool(obj))
        self.batch(obj.items(), b"s", b"u", len(obj), exact=True, pairs=True)

    def save_ordered_dict(self, obj: collections.OrderedDict[Any, Any]) -> None:
        if self.py2:
            msg = "legacy writer: OrderedDict in the Python 2 layout"
            raise TypeError(msg)
        red = _Reduce(
            _Global("collections", "OrderedDict"), (), None, obj, iter(obj.items())
        )
        self.save_reduce(red)

    def save_array(self, arr: np.ndarray) -> None:
        self.save_reduce(self.reduce_array(arr))

    def batch(
        self,
        items: Iterable[Any],
        one: bytes,
        many: bytes,
        size: int,
        *,
        exact: bool,
        pairs: bool = False,
    ) -> None:
        """APPENDS/SETITEMS batches: CPython 3's ``batch_*_exact`` for exact
        lists and dicts, else (Python 2, iterators) the generic form."""
        emit = self._save_pair if pairs else self.save
        if not self.bin:
            for x in items:
                emit(x)
                self.write(one)
        elif exact and not self.py2:
            self._batch_exact(items, one, many, size, emit, pairs=pairs)
        else:
            self._batch_generic(items, one, many, emit)

    def _save_pair(self, kv: tuple[Any, Any]) -> None:
        self.save(kv[0])
        self.save(kv[1])

    def _batch_exact(
        self,
        items: Iterable[Any],
        one: bytes,
        many: bytes,
        size: int,
        emit: Callable[[Any], None],
        *,
        pairs: bool,
    ) -> None:
        """CPython 3's batch_list_exact / batch_dict_exact."""
        if size == 1:
            emit(next(iter(items)))
            self.write(one)
            return
        if size == 0:
            return
        it = iter(items)
        while True:
            chunk = list(islice(it, _BATCH))
            self.write(b"(")
            for x in chunk:
                emit(x)
            self.write(many)
            # lists stop after the last item; dicts only after a short batch
            if len(chunk) < _BATCH or (not pairs and length_hint(it) == 0):
                return

    def _batch_generic(
        self,
        items: Iterable[Any],
        one: bytes,
        many: bytes,
        emit: Callable[[Any], None],
    ) -> None:
        """Batches of 1000: ``MARK items many``, a batch of one ``item one``."""
        it = iter(items)
        while True:
            chunk = list(islice(it, _BATCH))
            if len(chunk) > 1:
                self.write(b"(")
                for x in chunk:
                    emit(x)
                self.write(many)
            elif chunk:
                emit(chunk[0])
                self.write(one)
            if len(chunk) < _BATCH:
                return

    def save_global(self, g: _Global) -> None:
        module, name = g.module, g.name
        if self.proto >= 4:
            self.save(self.intern(module))
            self.save(self.intern(name))
            self.write(b"\x93")
        else:
            if self.proto < 3:
                module = _FIX_IMPORTS.get(module, module)
            self.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(self.intern(g))

    def save_reduce(self, red: _Reduce) -> None:
        self.save(red.func)
        self.save(red.args)
        self.write(b"R")
        # Python 2: put2 for objects with a (non-dict) state, else put
        self.memoize(red.obj, always=red.state is not None or not self.py2)
        if red.dictitems is not None:
            self.batch(red.dictitems, b"s", b"u", -1, exact=False, pairs=True)
        if red.state is not None:
            self.save(red.state)
            self.write(b"b")

    # -- NumPy --------------------------------------------------------------

    def reduce_array(self, arr: np.ndarray) -> _Reduce:
        core = self.layout.core
        if self.proto >= 5 and not arr.dtype.hasobject:
            rv: Any = arr.__reduce_ex__(5)
            if getattr(rv[0], "__name__", "") == "_frombuffer":
                buf, dtype, shape, order = rv[1]
                raw = bytearray(buf.raw())
                func = _Global(f"{core}.numeric", "_frombuffer")
                return _Reduce(func, (raw, dtype, shape, order), None, arr)
        reduced: Any = arr.__reduce__()
        _func, (_cls, zero, b), state = reduced
        version, shape, dtype, fortran, data = state
        if self.py2:
            data = data if isinstance(data, list) else bytes(data)
        args = (_Global("numpy", "ndarray"), zero, b)
        return _Reduce(
            _Global(f"{core}.multiarray", "_reconstruct"),
            args,
            (version, shape, dtype, fortran, data),
            arr,
        )

    def reduce_dtype(self, dtype: np.dtype[Any]) -> _Reduce:
        reduced: Any = dtype.__reduce__()
        _cls, (name, align, copy), state = reduced
        if self.layout.int_flags:
            align, copy = int(align), int(copy)
        return _Reduce(_Global("numpy", "dtype"), (name, align, copy), state, dtype)


#: the writer of each exact type (a subclass is not written, except np.dtype's)
_SAVERS: dict[type, Callable[[_Writer, Any], None]] = {
    Unicode: _Writer.save_str,
    str: _Writer.save_str,
    bytes: _Writer.save_bytes,
    bytearray: _Writer.save_bytearray,
    tuple: _Writer.save_tuple,
    list: _Writer.save_list,
    dict: _Writer.save_dict,
    collections.OrderedDict: _Writer.save_ordered_dict,
    np.ndarray: _Writer.save_array,
}


def dumps(obj: Any, layout: Layout) -> bytes:
    """The pickle of `obj` as the software of `layout` wrote it."""
    return _Writer(layout).dumps(obj)


# --------------------------------------------------------------------------
# files


def _descr(dtype: np.dtype[Any]) -> Any:
    return np.lib.format.dtype_to_descr(dtype)


def npy_bytes(arr: np.ndarray, layout: Layout) -> bytes:
    """A ``.npy`` file (format 1.0) of `arr` as ``np.save`` of `layout` wrote it.

    The header dict has sorted keys, is padded with spaces to a multiple of 16
    bytes (Python 2 NumPy) or 64 (NumPy >= 1.14 on Python 3) and ends in
    ``\\n``. Object arrays are pickled with `layout`, others stored raw.
    """
    fortran = bool(arr.flags.f_contiguous and not arr.flags.c_contiguous)
    text = (
        f"{{'descr': {_descr(arr.dtype)!r}, 'fortran_order': {fortran!r}, "
        f"'shape': {arr.shape!r}, }}"
    )
    align = 16 if layout.python == 2 else 64
    pad = align - (10 + len(text) + 1) % align
    if pad == align and layout.python == 3:
        pad = 0
    header = (text + " " * pad + "\n").encode("latin-1")
    out = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    if arr.dtype.hasobject:
        return out + dumps(arr, layout)
    return out + arr.tobytes(order="F" if fortran else "C")


def npz_bytes(
    members: Sequence[tuple[str, np.ndarray]],
    layout: Layout,
    *,
    date_times: Sequence[tuple[int, int, int, int, int, int]] | None = None,
    compress: bool = True,
) -> bytes:
    """An ``.npz`` as NumPy 1.x's ``savez(_compressed)`` wrote it on Python 2.

    Each member went through a temporary file and ``ZipFile.write``: a local
    header without data descriptor, deflate at zlib's default level (-1), the
    temporary file's mode (``0600``, Unix) and modification time. `members`
    are written in the given order (:data:`REUTERS_MEMBERS`,
    :data:`IMDB_MEMBERS`: Python 2's dict order of the keyword names);
    `date_times` (one per member, default 1980-01-01 00:00:00) are the zip
    entries' modification times.
    """
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for i, (name, arr) in enumerate(members):
            when = date_times[i] if date_times is not None else (1980, 1, 1, 0, 0, 0)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=when)
            info.compress_type = method
            info.external_attr = 0o100600 << 16
            info.create_system = 3
            zf.writestr(info, npy_bytes(arr, layout))
    return buf.getvalue()
