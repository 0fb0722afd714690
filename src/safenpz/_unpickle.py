"""Safe decoding of pickled data: a closed table instead of ``find_class``.

:func:`safe_loads` decodes a pickle stream into plain data without ever
calling, importing or even looking up a callable the stream names:

1. :func:`safenpz._pickle_scan.scan_pickle` checks the whole stream statically
   first (forbidden opcodes, globals outside the table, bounds, limits), so the
   decoder never starts on a stream that names anything else.
2. The stream is then run by CPython's C unpickler (for speed) whose
   ``find_class`` is replaced by a lookup in :data:`_TABLE`, mapping each
   allowed ``(module, name)`` to a safenpz *constructor*: an immutable object
   (no ``__dict__``, attributes cannot be set) whose ``__call__`` validates its
   arguments and builds the value itself. ``persistent_load`` always refuses.
3. Arrays, dtypes and NumPy scalars are produced as *builders* (safenpz objects
   whose ``__setstate__`` validates the state ``BUILD`` hands them) and are
   swapped for the real values by a final walk, which also checks that the
   result is plain data (no constructor leaked as a value), bounds the nesting
   depth and the number of items, and refuses self-referencing containers.

Nothing in this module imports a module by name or uses ``getattr`` on a name
from the file.
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import re
import reprlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from ._exceptions import FormatError, LimitError, SafenpzError, UnsafeFileError
from ._gc import no_gc
from ._limits import DEFAULT_LIMITS
from ._pickle._globals import SAFE_GLOBALS
from ._pickle._scanner import scan_pickle
from ._preview import shape_problem

__all__ = ["safe_loads"]

_LEAF_TYPES = frozenset({int, float, complex, bool, type(None), str, bytes, bytearray})
# NumPy's C scalar builder (numpy[._]core.multiarray.scalar), taken from a
# scalar's own reduce so no module is named and no deprecation warning fires
_numpy_scalar: Callable[[np.dtype[Any], bytes], Any] = np.float64(0).__reduce__()[0]  # type: ignore[assignment]


class _Context:
    """Per-call state shared by the constructors of one decode."""

    __slots__ = ("encoding", "max_depth", "max_items", "member")

    def __init__(
        self, member: str, max_depth: int, max_items: int, encoding: str
    ) -> None:
        self.member = member
        self.max_depth = max_depth
        self.max_items = max_items
        self.encoding = encoding

    def fail(self, msg: str) -> NoReturn:
        msg_0 = f"member {self.member!r}: {msg}"
        raise FormatError(msg_0)


# --------------------------------------------------------------------------
# builders: stand-ins that receive BUILD's state and are swapped out at the end


class _Builder:
    __slots__ = ("_built", "ctx", "value")

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.value: Any = None
        self._built = False

    def result(self) -> Any:
        if not self._built:
            self.ctx.fail(
                f"a {self.kind} was used before the pickle finished building it"
            )
        return self.value

    kind = "value"

    def __setstate__(self, state: object) -> None:
        self.ctx.fail(f"unexpected BUILD on a finished {self.kind}")

    def __reduce__(self) -> NoReturn:  # never pickled back
        msg = "internal safenpz object"
        raise TypeError(msg)


class _Done(_Builder):
    """A finished value (NumPy scalar, array from ``_frombuffer``)."""

    __slots__ = ()

    def __init__(self, ctx: _Context, value: Any) -> None:
        super().__init__(ctx)
        self.value = value
        self._built = True


class _DtypeBuilder(_Builder):
    __slots__ = ("code",)
    kind = "dtype"

    def __init__(self, ctx: _Context, code: str) -> None:
        super().__init__(ctx)
        self.code = code

    def __setstate__(self, state: object) -> None:
        if self._built:
            self.ctx.fail("a dtype was built twice")
        self.value = _dtype_from_state(self.ctx, self.code, state)
        self._built = True


class _ArrayBuilder(_Builder):
    """Receives an ndarray's BUILD state and checks it.

    The array itself is made by NumPy's own ``ndarray.__setstate__`` from the
    checked state (see :func:`_finish_array`), so byte order, memory order and
    structured layouts come out exactly as :func:`numpy.load` gives them.
    Object arrays keep their elements in ``items`` until the final walk has
    replaced nested builders by real values."""

    __slots__ = ("items", "state")
    kind = "array"

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.state: tuple[int, tuple[int, ...], np.dtype[Any], bool] | None = None
        self.items: list[Any] | None = None

    def __setstate__(self, state: object) -> None:
        if self._built or self.state is not None:
            self.ctx.fail("an array was built twice")
        self.state, raw = _array_state(self.ctx, state)
        if isinstance(raw, list):
            self.items = raw  # finished by result(), after the walk
        else:
            self.value = _finish_array(self.state, raw)
            self._built = True

    def result(self) -> Any:
        if not self._built and self.state is not None and self.items is not None:
            self.value = _finish_array(self.state, self.items)
            self.items = None
            self._built = True
        return super().result()


# --------------------------------------------------------------------------
# validation helpers


_DTYPE_CODE = re.compile(r"^(?:[biufcSUVOMm]\d{0,6}|[?]|b1)$")
_ENDIANS = frozenset({"<", ">", "|", "="})
_DATETIME_UNITS = frozenset(
    {"Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic"}
)


def _as_bytes(ctx: _Context, raw: object, what: str) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray):
        return bytes(raw)
    if isinstance(raw, str):  # Python 2 str decoded as latin-1
        try:
            return raw.encode("latin-1")
        except UnicodeEncodeError:
            ctx.fail(f"{what} is text that is not latin-1")
    ctx.fail(f"{what} must be bytes, not {type(raw).__name__}")


def _check_shape(ctx: _Context, shape: object) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 64:
        ctx.fail(
            f"array shape must be a tuple of at most 64 ints, got {_preview(shape)}"
        )
    for dim in shape:
        if type(dim) is not int or dim < 0:
            ctx.fail(f"array shape must hold non-negative ints, got {_preview(shape)}")
    problem = shape_problem(shape)  # huge dims: compared, never multiplied
    if problem is not None:
        ctx.fail(
            f"an array of shape {_preview(shape)} needs more elements than NumPy "
            f"can address ({problem})"
        )
    return shape


def _resolve_dtype(ctx: _Context, obj: object) -> np.dtype[Any]:
    if isinstance(obj, _DtypeBuilder):
        value = obj.result()
        assert isinstance(value, np.dtype)
        return value
    ctx.fail(f"expected a dtype, got {type(obj).__name__}")


_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel = 3
_PREVIEW.maxstring = _PREVIEW.maxother = 60
_PREVIEW.maxlong = 40


def _preview(value: object) -> str:
    """A short repr of an untrusted value, in time bounded by its preview.

    Huge ints are described, not converted (``repr`` of a million-digit int is
    slow, and refused beyond ``sys.get_int_max_str_digits()``)."""
    if type(value) is int and value.bit_length() > 128:
        return f"<int of {value.bit_length()} bits>"
    try:
        return _PREVIEW.repr(value)
    except Exception:  # a value whose repr fails is still worth naming
        return f"<{type(value).__name__}>"


def _text(value: object) -> object:
    """Python 2 ``str`` arrives as bytes under ``encoding="bytes"``."""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return value
    return value


_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a dtype state's flags


def _dtype_from_state(ctx: _Context, code: str, state: object) -> np.dtype[Any]:
    """Rebuild a dtype from the state ``numpy.dtype.__reduce__`` pickles.

    Layout: ``(version, endian, subdescr, names, fields, elsize, alignment,
    flags[, metadata])`` with ``version`` 3 (or 4, with metadata; NumPy before
    1.1 wrote version 1 without ``flags``). ``endian`` is
    one of ``< > | =``; ``subdescr`` is ``(base dtype, shape)`` for a sub-array
    dtype; ``names`` (a tuple) and ``fields`` (name or title ->
    ``(dtype, offset[, title])``) describe a structured dtype; ``flags`` carries
    ``NPY_ALIGNED_STRUCT`` for ``align=True``. ``metadata`` is a dict, or for
    datetimes ``(dict or None, (unit, num, 1, 1))``.
    """
    if not isinstance(state, tuple) or len(state) not in (7, 8, 9):
        ctx.fail(f"bad dtype state {_preview(state)}")
    if len(state) == 7:  # version 1 (NumPy < 1.1): no flags yet
        state = (*state, 0)
    version, endian, subdescr, names, fields, elsize, _align, flags = state[:8]
    extra = state[8] if len(state) == 9 else None
    endian = _text(endian)
    if version not in (1, 2, 3, 4) or endian not in _ENDIANS:
        ctx.fail(f"bad dtype state {_preview(state)}")
    if type(elsize) is not int or type(flags) is not int:
        ctx.fail("bad dtype item size or flags")
    try:
        if names is not None:
            dt = _structured_dtype(ctx, names, fields, elsize, flags)
        elif subdescr is not None:
            dt = _subarray_dtype(ctx, subdescr)
        else:
            dt, extra = _simple_dtype(ctx, code, endian, elsize, extra)
        if extra is not None:
            dt = np.dtype(dt, metadata=_metadata(ctx, extra))
    except SafenpzError:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        ctx.fail(f"invalid dtype: {_preview(err)}")
    return dt


def _structured_dtype(
    ctx: _Context, names: object, fields: object, elsize: int, flags: int
) -> np.dtype[Any]:
    """``names`` is a tuple of field names; ``fields`` maps each name, and each
    field's title if it has one, to ``(dtype, offset)`` or
    ``(dtype, offset, title)``."""
    if isinstance(names, tuple):
        names = tuple(_text(n) for n in names)
    if isinstance(fields, dict):
        fields = {_text(k): v for k, v in fields.items()}
    if not (
        isinstance(names, tuple)
        and isinstance(fields, dict)
        and all(type(n) is str for n in names)
        and len(set(names)) == len(names) <= 4096
        and set(names) <= set(fields)
    ):
        ctx.fail("bad structured dtype fields")
    formats, offsets, titles = [], [], []
    for n in names:
        spec = fields[n]
        if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
            ctx.fail(f"bad field {_preview(n)} in structured dtype")
        if type(spec[1]) is not int:
            ctx.fail(f"bad offset of field {_preview(n)} in structured dtype")
        formats.append(_resolve_dtype(ctx, spec[0]))
        offsets.append(spec[1])
        title = _text(spec[2]) if len(spec) == 3 else None
        if title is not None:
            if type(title) is not str or title in names:
                ctx.fail(f"bad title of field {_preview(n)}")
            if title in fields and fields[title] is not spec:
                ctx.fail(f"the title of field {_preview(n)} names another field")
        titles.append(title)
    # NumPy lists each field under its name and again under its title
    if not set(fields) <= set(names) | {t for t in titles if t is not None}:
        ctx.fail("a structured dtype lists fields that have no name")
    return np.dtype(
        {
            "names": list(names),
            "formats": formats,
            "offsets": offsets,
            "titles": titles,
            "itemsize": elsize,
        },
        align=bool(flags & _ALIGNED_STRUCT),
    )


def _subarray_dtype(ctx: _Context, subdescr: object) -> np.dtype[Any]:
    """``subdescr`` is ``(base dtype, shape tuple)``."""
    if not (isinstance(subdescr, tuple) and len(subdescr) == 2):
        ctx.fail("bad sub-array dtype")
    base = _resolve_dtype(ctx, subdescr[0])
    sub_shape = _check_shape(ctx, subdescr[1])
    return np.dtype((base, sub_shape))


def _simple_dtype(
    ctx: _Context, code: str, endian: str, elsize: int, extra: object
) -> tuple[np.dtype[Any], object]:
    """A dtype named by its type code (``"f8"``, ``"U7"``, ``"M8"`` ...).

    Returns the dtype and what is left of ``extra`` as metadata (datetimes
    carry ``(metadata, (unit, num, 1, 1))`` there).
    """
    if not _DTYPE_CODE.match(code):
        ctx.fail(f"unsupported dtype code {_preview(code)}")
    dt = np.dtype(code)
    if dt.kind in "SUV" and elsize > 0:
        per = 4 if dt.kind == "U" else 1
        dt = np.dtype(f"{dt.kind}{elsize // per}")
    if dt.kind in "Mm":
        if not (
            isinstance(extra, tuple)
            and len(extra) == 2
            and isinstance(extra[1], tuple)
            and len(extra[1]) == 4
        ):
            ctx.fail("datetime dtype without unit metadata")
        unit = _as_bytes(ctx, extra[1][0], "datetime unit").decode("latin-1")
        num = extra[1][1]
        if unit not in _DATETIME_UNITS or type(num) is not int or not 0 < num < 2**31:
            ctx.fail(f"bad datetime unit {_preview(unit)}")
        dt = np.dtype(f"{dt.kind}8[{'' if num == 1 else num}{unit}]")
        extra = extra[0]
    if endian in "<>" and dt.itemsize > 1:
        # through the type string, so native order reads "=" as in NumPy
        dt = np.dtype(endian + dt.str[1:])
    return dt, extra


_METADATA_LEAVES = (str, int, float, bool, bytes, type(None))


def _metadata(ctx: _Context, meta: object) -> dict[str, Any]:
    """dtype metadata: a dict of str keys to scalars, strings or flat
    lists/tuples of them (what users attach in practice)."""
    if not isinstance(meta, dict) or len(meta) > 1024:
        ctx.fail("dtype metadata must be a small dict")
    for key, value in meta.items():
        values = value if type(value) in (list, tuple) else (value,)
        if type(key) is not str or len(values) > 1024:
            ctx.fail("dtype metadata must have str keys and small values")
        if not all(isinstance(v, _METADATA_LEAVES) for v in values):
            ctx.fail(
                f"dtype metadata {_preview(key)} holds a "
                f"{type(value).__name__}; only scalars and strings are supported"
            )
    return meta


def _array_state(
    ctx: _Context, state: object
) -> tuple[tuple[int, tuple[int, ...], np.dtype[Any], bool], list[Any] | bytes]:
    """Check the state ``ndarray.__reduce__`` pickles.

    Layout: ``(version, shape, dtype, is_fortran, data)``, with ``version`` 0
    or 1 (very old NumPy wrote the four items without it), ``shape`` a tuple of
    ints, ``is_fortran`` a bool (or int) and ``data`` the raw
    bytes (a latin-1 ``str`` in Python 2 pickles) or, for dtypes holding
    objects, a list of ``prod(shape)`` items (tuples for structured dtypes).
    """
    if isinstance(state, tuple) and len(state) == 4:  # version 0: no version
        state = (0, *state)
    if not (isinstance(state, tuple) and len(state) == 5):
        ctx.fail(f"bad ndarray state of type {type(state).__name__}")
    version, shape, dtype_b, fortran, raw = state
    if type(version) is not int or version not in (0, 1):
        ctx.fail(f"unsupported ndarray pickle version {_preview(version)}")
    shape = _check_shape(ctx, shape)
    dt = _resolve_dtype(ctx, dtype_b)
    if type(fortran) not in (bool, int):  # NumPy reads the flag as a C int
        ctx.fail("ndarray fortran flag must be a bool")
    fortran = bool(fortran)
    count = math.prod(shape)
    checked = (version, shape, dt, fortran)
    if dt.hasobject:
        if count > ctx.max_items:
            msg = (
                f"member {ctx.member!r}: object array of {count} elements exceeds "
                f"max_items={ctx.max_items}; pass a larger max_items to load it"
            )
            raise LimitError(msg)
        if type(raw) is not list or len(raw) != count:
            ctx.fail(
                f"object array of shape {shape} needs a list of {count} items, "
                f"got {type(raw).__name__}"
                + (f" of {len(raw)}" if isinstance(raw, list) else "")
            )
        if dt.names is not None and not all(
            type(item) is tuple and len(item) == len(dt.names) for item in raw
        ):
            ctx.fail(f"a structured array needs a tuple of {len(dt.names)} per item")
        return checked, raw
    if dt.itemsize == 0 and count > ctx.max_items:
        msg = (
            f"member {ctx.member!r}: array of {count} zero-width elements exceeds "
            f"max_items={ctx.max_items}; pass a larger max_items to load it"
        )
        raise LimitError(msg)
    data = _as_bytes(ctx, raw, "array data")
    if len(data) != count * dt.itemsize:
        ctx.fail(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {len(data)}"
        )
    return checked, data


def _finish_array(
    checked: tuple[int, tuple[int, ...], np.dtype[Any], bool],
    data: list[Any] | bytes,
) -> np.ndarray[Any, Any]:
    """Build the array with NumPy's own ``__setstate__`` from a checked state.

    Only ever called with a state :func:`_array_state` accepted and, for
    object items, with plain data the final walk produced: NumPy then applies
    its own rules (a non-native byte order becomes native for simple dtypes,
    Fortran order, structured items), so the result is what ``np.load`` gives.
    """
    arr: np.ndarray[Any, Any] = np.ndarray((0,), dtype=np.int8)
    arr.__setstate__((*checked, data))  # type: ignore[arg-type]
    return arr


# --------------------------------------------------------------------------
# the closed table: (module, name) -> safenpz constructor


class _Constructor:
    """An allowed global: immutable, callable, validating."""

    __slots__ = ("_fn", "member", "qualname")
    qualname: str
    member: str
    _fn: Callable[..., Any] | None

    def __init__(
        self, qualname: str, fn: Callable[..., Any] | None, member: str
    ) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "member", member)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = (
            f"member {self.member!r}: the pickle tried to set attribute {name!r} on "
            f"{self.qualname} (opcode BUILD); safenpz constructors are immutable"
        )
        raise FormatError(msg)

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            msg = f"member {self.member!r}: {self.qualname} may not be called"
            raise FormatError(msg)
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"<safenpz constructor for {self.qualname}>"

    def __reduce__(self) -> NoReturn:
        msg = "internal safenpz object"
        raise TypeError(msg)


# Every constructor takes the per-decode context as its first argument;
# find_class binds it, so concurrent decodes in threads never share state.


def _c_reconstruct(
    ctx: _Context, cls: object, shape: object, code: object
) -> _ArrayBuilder:
    if not (isinstance(cls, _Constructor) and cls.qualname == "numpy.ndarray"):
        ctx.fail("_reconstruct may only build numpy.ndarray (no subclasses)")
    if shape != (0,) or _as_bytes(ctx, code, "_reconstruct dtype code") != b"b":
        ctx.fail(
            f"unexpected _reconstruct arguments {_preview(shape)}, {_preview(code)}"
        )
    return _ArrayBuilder(ctx)


def _c_dtype(
    ctx: _Context, obj: object, align: object = False, copy: object = True
) -> _DtypeBuilder:
    obj = _text(obj)
    if type(obj) is not str or len(obj) > 16:
        ctx.fail(f"numpy.dtype argument must be a short type code, got {_preview(obj)}")
    # NumPy < 1.19 pickled the flags as ints (``dtype('O8', 0, 1)``)
    if type(align) not in (bool, int) or type(copy) not in (bool, int):
        ctx.fail("numpy.dtype flags must be bools or the ints 0 and 1")
    if align not in (0, 1) or copy not in (0, 1):
        ctx.fail("numpy.dtype flags must be bools or the ints 0 and 1")
    return _DtypeBuilder(ctx, obj)


def _c_scalar(ctx: _Context, dtype_b: object, raw: object = None) -> _Done:
    dt = _resolve_dtype(ctx, dtype_b)
    if dt.hasobject:
        ctx.fail("object-dtype NumPy scalars are not supported")
    data = _as_bytes(ctx, raw, "scalar data")
    if len(data) != dt.itemsize:
        ctx.fail(f"a {dt} scalar needs {dt.itemsize} bytes, got {len(data)}")
    # NumPy's own scalar builder, on a checked non-object dtype and exactly
    # itemsize bytes (zero-width str/bytes/void scalars included)
    return _Done(ctx, _numpy_scalar(dt, data))


def _c_frombuffer(
    ctx: _Context, buf: object, dtype_b: object, shape: object, order: object
) -> _Done:
    data = _as_bytes(ctx, buf, "array buffer")
    dt = _resolve_dtype(ctx, dtype_b)
    shape = _check_shape(ctx, shape)
    if dt.hasobject or order not in ("C", "F"):
        ctx.fail("bad _frombuffer arguments")
    count = math.prod(shape)
    if len(data) != count * dt.itemsize:
        ctx.fail(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dt, count=count).copy()
    return _Done(ctx, arr.reshape(shape, order=order))


def _c_encode(ctx: _Context, text: object, encoding: object = "utf-8") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        ctx.fail("_codecs.encode is only allowed as (str, 'latin1')")
    return _as_bytes(ctx, text, "bytes literal")


def _c_bytes(ctx: _Context, *args: object) -> bytes:
    if args == ():
        return b""
    if len(args) == 2 and args[1] in ("latin1", "latin-1") and type(args[0]) is str:
        return args[0].encode("latin-1")
    ctx.fail("bytes() is only allowed with no arguments or (str, 'latin1')")


def _c_bytearray(ctx: _Context, *args: object) -> bytearray:
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], bytes):
        return bytearray(args[0])
    if len(args) == 2 and args[1] in ("latin1", "latin-1") and type(args[0]) is str:
        return bytearray(args[0].encode("latin-1"))
    ctx.fail("bad bytearray() arguments")


def _iterable_arg(
    ctx: _Context, args: tuple[object, ...], what: str
) -> list[Any] | tuple[Any, ...]:
    if not args:
        return []
    if len(args) == 1 and type(args[0]) in (list, tuple):
        return args[0]  # type: ignore[return-value]
    ctx.fail(f"{what}() takes a list or tuple")


def _c_set(ctx: _Context, *args: object) -> set[Any]:
    try:
        return set(_iterable_arg(ctx, args, "set"))
    except TypeError as err:
        ctx.fail(f"set items must be hashable plain data ({err})")


def _c_frozenset(ctx: _Context, *args: object) -> frozenset[Any]:
    try:
        return frozenset(_iterable_arg(ctx, args, "frozenset"))
    except TypeError as err:
        ctx.fail(f"frozenset items must be hashable plain data ({err})")


def _c_complex(ctx: _Context, real: object = 0.0, imag: object = 0.0) -> complex:
    if not (isinstance(real, int | float) and isinstance(imag, int | float)):
        ctx.fail("complex() takes two numbers")
    return complex(real, imag)


def _c_ordereddict(ctx: _Context, *args: object) -> OrderedDict[Any, Any]:
    # protocol 2+ pickles an OrderedDict as OrderedDict() + SETITEMS, which fills
    # it through OrderedDict's own C __setitem__; np.load gives an OrderedDict
    if args:
        ctx.fail("OrderedDict() is only allowed without arguments")
    return OrderedDict()


_TABLE: dict[tuple[str, str], tuple[str, Callable[..., Any] | None]] = {}
for _mod in (
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",  # NumPy 1.16.0
    "numpy._core._multiarray_umath",
):
    _TABLE[(_mod, "_reconstruct")] = (f"{_mod}._reconstruct", _c_reconstruct)
    _TABLE[(_mod, "scalar")] = (f"{_mod}.scalar", _c_scalar)
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _TABLE[(_mod, "_frombuffer")] = (f"{_mod}._frombuffer", _c_frombuffer)
_TABLE[("numpy", "ndarray")] = ("numpy.ndarray", None)
_TABLE[("numpy", "dtype")] = ("numpy.dtype", _c_dtype)
_TABLE[("_codecs", "encode")] = ("_codecs.encode", _c_encode)
for _mod in ("builtins", "__builtin__"):
    _TABLE[(_mod, "bytes")] = (f"{_mod}.bytes", _c_bytes)
    _TABLE[(_mod, "bytearray")] = (f"{_mod}.bytearray", _c_bytearray)
    _TABLE[(_mod, "set")] = (f"{_mod}.set", _c_set)
    _TABLE[(_mod, "frozenset")] = (f"{_mod}.frozenset", _c_frozenset)
    _TABLE[(_mod, "complex")] = (f"{_mod}.complex", _c_complex)
_TABLE[("collections", "OrderedDict")] = ("collections.OrderedDict", _c_ordereddict)
assert set(_TABLE) == SAFE_GLOBALS, "the scanner and the decoder disagree"


class _TableUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedReader, ctx: _Context) -> None:
        enc = "latin1" if ctx.encoding == "latin1" else ctx.encoding
        super().__init__(file, fix_imports=False, encoding=enc, errors="strict")
        self._ctx = ctx
        self._bound: dict[tuple[str, str], _Constructor] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._bound:
            return self._bound[key]
        try:
            qualname, fn = _TABLE[key]
        except (KeyError, TypeError):
            msg = (
                f"member {self._ctx.member!r}: global {module}.{name} is not in "
                "safenpz's table of allowed constructors"
            )
            raise UnsafeFileError(msg) from None
        member = self._ctx.member
        if fn is None:  # numpy.ndarray: only ever an argument of _reconstruct
            ctor = _Constructor(qualname, None, member)
        else:
            ctor = _Constructor(qualname, functools.partial(fn, self._ctx), member)
        self._bound[key] = ctor
        return ctor

    def persistent_load(self, pid: Any) -> NoReturn:
        msg = f"member {self._ctx.member!r}: persistent ids are never resolved"
        raise UnsafeFileError(msg)


# --------------------------------------------------------------------------
# the final walk


class _Walker:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.done: dict[int, Any] = {}
        self.active: set[int] = set()
        self.items = 0

    def count(self, n: int) -> None:
        self.items += n
        if self.items > self.ctx.max_items:
            msg = (
                f"member {self.ctx.member!r}: the pickle holds more than "
                f"max_items={self.ctx.max_items} values; pass a larger max_items "
                "to load it"
            )
            raise LimitError(msg)

    def walk(self, obj: Any, depth: int) -> Any:
        tp = type(obj)
        if tp in _LEAF_TYPES:
            return obj
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            self.ctx.fail("the pickle holds a container that contains itself")
        if depth > self.ctx.max_depth:
            msg = (
                f"member {self.ctx.member!r}: data nested deeper than "
                f"max_depth={self.ctx.max_depth}; pass a larger max_depth to "
                "load it"
            )
            raise LimitError(msg)
        self.active.add(key)
        try:
            out = self._walk(obj, tp, depth)
        finally:
            self.active.discard(key)
        self.done[key] = out
        return out

    def _children(self, seq: Any, depth: int) -> bool:
        """Walk the items of a list (in place) or tuple; True if any changed."""
        self.count(len(seq))
        if set(map(type, seq)) <= _LEAF_TYPES:
            return False
        changed = False
        for i, item in enumerate(seq):
            new = self.walk(item, depth + 1)
            if new is not item:
                changed = True
                if isinstance(seq, list):
                    seq[i] = new
        return changed

    def _walk(self, obj: Any, tp: type, depth: int) -> Any:
        if tp is list:
            self._children(obj, depth)
            return obj
        if tp is tuple:
            if self._children(obj, depth):
                return tuple(self.walk(item, depth + 1) for item in obj)
            return obj
        if tp is OrderedDict and obj.__dict__:
            self.ctx.fail("the pickle sets attributes on an OrderedDict (opcode BUILD)")
        if tp is dict or tp is OrderedDict:
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
        if tp is set or tp is frozenset:
            self.count(len(obj))
            walked = [(self.walk(item, depth + 1), item) for item in obj]
            if all(new is old for new, old in walked):
                return obj
            try:
                if tp is frozenset:
                    return frozenset(new for new, _ in walked)
                obj.clear()
                obj.update(new for new, _ in walked)
            except TypeError as err:
                self.ctx.fail(f"a set item is not hashable plain data ({err})")
            return obj
        if isinstance(obj, _ArrayBuilder):
            if obj.items is not None:
                self._children(obj.items, depth)
            return obj.result()
        if isinstance(obj, _Done | _DtypeBuilder):
            return obj.result()
        if isinstance(obj, _Constructor):
            self.ctx.fail(
                f"the pickle stores the global {obj.qualname} as a value; only "
                "data is allowed"
            )
        self.ctx.fail(f"unexpected object of type {tp.__name__} in the pickle")


def safe_loads(
    data: bytes | bytearray | memoryview,
    *,
    member: str = "<pickle>",
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
    encoding: str = "latin1",
) -> Any:
    """Decode a pickle stream into plain data, never running code from it.

    Parameters
    ----------
    data : bytes-like
        The whole pickle stream.
    member : str
        Name used in error messages.
    max_depth, max_items : int
        Limits on nesting depth and on the number of decoded values.
    encoding : {"latin1", "bytes", "ASCII"}
        How Python 2 ``str`` objects are decoded (as :func:`numpy.load`).

    Returns
    -------
    object
        Plain data: numbers, strings, bytes, lists, tuples, dicts, sets,
        NumPy arrays (object arrays holding plain data), NumPy scalars and
        dtypes.

    Raises
    ------
    UnsafeFileError, FormatError, LimitError

    Examples
    --------
    >>> import pickle, numpy as np
    >>> safe_loads(pickle.dumps(np.array([[1, 2], [3]], dtype=object)))
    array([list([1, 2]), list([3])], dtype=object)
    """
    if encoding not in ("latin1", "bytes", "ASCII"):
        msg = f"encoding must be 'latin1', 'bytes' or 'ASCII', not {encoding!r}"
        raise ValueError(msg)
    scan_pickle(data, member=member, max_depth=max_depth, max_items=max_items)
    ctx = _Context(member, max_depth, max_items, encoding)
    # BufferedReader gives the C unpickler peek(), ~3x faster than bare BytesIO
    stream: Any = io.BufferedReader(io.BytesIO(data))
    with no_gc():
        try:
            raw = _TableUnpickler(stream, ctx).load()
            return _Walker(ctx).walk(raw, 0)
        except SafenpzError:
            raise
        except RecursionError as err:  # the walk recurses ~3 frames per level
            msg = (
                f"member {member!r}: nesting too deep for Python's recursion "
                "limit; lower max_depth or raise sys.setrecursionlimit"
            )
            raise LimitError(msg) from err
        except MemoryError as err:
            msg = f"member {member!r}: decoding ran out of memory"
            raise LimitError(msg) from err
        except Exception as err:  # the C unpickler's own complaints
            msg = (
                f"member {member!r}: the pickle is malformed "
                f"({type(err).__name__}: {err})"
            )
            raise FormatError(msg) from err
