"""The checks the decoder and the static scanner share: one validation, two users.

Each allowed global of a pickle (:data:`safenpz._pickle._globals.ROLES`) is
called with arguments and finished by ``BUILD`` with a state. Whether those
are acceptable is decided here, by pure functions over plain values:

* the decoder (:mod:`safenpz._pickle._constructors`, ``_dtype_state``,
  ``_array_state``) calls them with the objects the C unpickler hands it;
* the static scanner (:mod:`safenpz._pickle._calls`) calls them with the
  values it reads from the literals of the stream, before anything is
  decoded, so that ``safenpz scan`` and :func:`safenpz.load` refuse the same
  streams.

What the scanner cannot hold as a real object it passes as a stand-in
(:class:`Ref`, named like the decoder's object: ``_Constructor``,
``_DtypeBuilder``, ``Done`` ...; :class:`Blob` for long text and bytes,
known by their type and length). The functions below name a value's type
with :func:`type_name`, which sees through stand-ins, so both callers get the
same verdict and the same message. Dtypes are passed through a ``resolve``
callable (the finished :class:`numpy.dtype` a reference stands for).

A refusal raises :class:`Refused`: the decoder turns it into
:class:`~safenpz.FormatError` (or :class:`~safenpz.LimitError` when it names a
limit) at the member, the scanner at the opcode.

The dtype states are checked in :mod:`safenpz._pickle._dtype_rules`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np

from .._preview import preview as _preview
from .._preview import shape_problem

__all__ = [
    "ARITY",
    "Blob",
    "Checked",
    "Ref",
    "Refused",
    "Resolve",
    "array_head",
    "as_bytes",
    "as_text",
    "byte_length",
    "bytearray_args",
    "bytes_args",
    "check_arity",
    "check_shape",
    "complex_value",
    "data_size",
    "dtype_args",
    "encode_args",
    "expected_dtype",
    "frombuffer_check",
    "iterable_arg",
    "object_items",
    "ordereddict_args",
    "preview",
    "reconstruct_args",
    "scalar_dtype",
    "scalar_size",
    "structured_rows",
    "type_name",
    "unbuilt",
    "zero_width",
]

#: ``(version, shape, dtype, is_fortran)`` of a checked array state.
Checked = tuple[int, tuple[int, ...], np.dtype[Any], bool]
#: The finished dtype a dtype reference stands for (refused otherwise).
Resolve = Callable[[object], np.dtype[Any]]

LATIN1 = ("latin1", "latin-1")

#: How many arguments the constructors of a fixed signature take (by role):
#: (fewest, most). The others take any number and check them themselves.
ARITY: dict[str, tuple[int, int]] = {
    "reconstruct": (3, 3),
    "scalar": (1, 2),
    "frombuffer": (4, 4),
    "dtype": (1, 3),
    "encode": (1, 2),
    "complex": (0, 2),
}


class Refused(Exception):
    """A check failed: the message, and the limit it names (if any)."""

    def __init__(
        self,
        message: str,
        *,
        limit: str | None = None,
        value: int | None = None,
        maximum: int | None = None,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum


def _refuse(message: str) -> NoReturn:
    raise Refused(message)


class Ref:
    """A stand-in for an object the scanner does not build (a constructor, a
    builder, a finished NumPy value ...), named like the decoder's object.

    >>> ref = Ref("_Constructor", "<safenpz constructor for numpy.ndarray>")
    >>> type_name(ref), preview((ref,))
    ('_Constructor', '(<safenpz constructor for numpy.ndarray>,)')
    """

    __slots__ = ("name", "owner", "text")

    def __init__(
        self, name: str, text: str | None = None, owner: object = None
    ) -> None:
        self.name = name
        self.text = f"<{name}>" if text is None else text
        self.owner = owner  # what the scanner knows of the object, if anything

    def __repr__(self) -> str:
        return self.text


class Blob:
    """A text or bytes value the scanner knows by its type and length only
    (``latin1`` is None for bytes, else the length of its latin-1 encoding,
    or -1 when it has a character beyond latin-1).

    >>> byte_length(Blob("str", 9, 3), "array data")
    3
    """

    __slots__ = ("latin1", "name", "size")

    def __init__(self, name: str, size: int, latin1: int | None = None) -> None:
        self.name = name
        self.size = size
        self.latin1 = latin1

    def __repr__(self) -> str:
        return f"<{self.name} of {self.size} bytes>"


def type_name(value: object) -> str:
    """The type name the decoder would see for `value` (stand-ins included).

    >>> type_name(3), type_name(Blob("bytes", 5)), type_name(Ref("Done"))
    ('int', 'bytes', 'Done')
    """
    if isinstance(value, Ref | Blob):
        return value.name
    return type(value).__name__


def preview(value: object) -> str:
    """A short, escaped description of an untrusted value, in bounded time:
    :func:`safenpz._preview.preview`, the one preview of every message.

    >>> preview(10**100), preview(list(range(100)))
    ('<int of 333 bits>', '[0, 1, 2, 3, 4, 5, 6, 7, ...] (100 items)')
    """
    return _preview(value, limit=60)


# --------------------------------------------------------------------------
# small values: text, bytes, shapes


def as_text(value: object) -> object:
    """Python 2 ``str`` arrives as bytes under ``encoding="bytes"``: ASCII
    bytes become ``str``, anything else is returned unchanged.

    >>> as_text(b"|"), as_text(b"\\xff"), as_text(3)
    ('|', b'\\xff', 3)
    """
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return value
    return value


def _not_bytes(what: str, value: object) -> NoReturn:
    _refuse(f"{what} must be bytes, not {type_name(value)}")


def as_bytes(raw: object, what: str) -> bytes:
    """`raw` as bytes: bytes, a bytearray, or a Python 2 ``str`` decoded as
    latin-1 (whose code points are the original bytes)."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return raw.encode("latin-1")
        except UnicodeEncodeError:
            _refuse(f"{what} is text that is not latin-1")
    _not_bytes(what, raw)


def byte_length(raw: object, what: str) -> int:
    """``len(as_bytes(raw, what))``, also for a :class:`Blob`."""
    if not isinstance(raw, Blob):
        return len(as_bytes(raw, what))
    if raw.name in ("bytes", "bytearray"):
        return raw.size
    if raw.name != "str":
        _not_bytes(what, raw)
    if raw.latin1 is None or raw.latin1 < 0:
        _refuse(f"{what} is text that is not latin-1")
    return raw.latin1


def check_shape(shape: object) -> tuple[int, ...]:
    """An array shape: a tuple of at most 64 non-negative ints whose product
    NumPy can address (huge dimensions are compared, never multiplied)."""
    if not isinstance(shape, tuple) or len(shape) > 64:
        _refuse(f"array shape must be a tuple of at most 64 ints, got {preview(shape)}")
    for dim in shape:
        if type(dim) is not int or dim < 0:
            _refuse(f"array shape must hold non-negative ints, got {preview(shape)}")
    problem = shape_problem(shape)
    if problem is not None:
        _refuse(
            f"an array of shape {preview(shape)} needs more elements than NumPy "
            f"can address ({problem})"
        )
    return shape


def expected_dtype(value: object) -> Refused:
    """The refusal of a value given where a dtype is needed."""
    return Refused(f"expected a dtype, got {type_name(value)}")


def unbuilt(kind: str) -> Refused:
    """The refusal of a builder (`kind`: ``"array"``, ``"dtype"``) used before
    ``BUILD`` finished it."""
    return Refused(f"a {kind} was used before the pickle finished building it")


# --------------------------------------------------------------------------
# the constructors' arguments


def check_arity(role: str, qualname: str, count: int) -> None:
    """`count` arguments are what the constructor of `role` takes (a role
    missing from :data:`ARITY` takes any number)."""
    if role not in ARITY:
        return
    low, high = ARITY[role]
    if not low <= count <= high:
        takes = f"{low}" if low == high else f"{low} to {high}"
        _refuse(f"{qualname}() takes {takes} arguments, got {count}")


def reconstruct_args(is_ndarray: bool, shape: object, code: object) -> None:
    """``_reconstruct(numpy.ndarray, (0,), b'b')``, nothing else."""
    if not is_ndarray:
        _refuse("_reconstruct may only build numpy.ndarray (no subclasses)")
    if shape != (0,) or as_bytes(code, "_reconstruct dtype code") != b"b":
        _refuse(f"unexpected _reconstruct arguments {preview(shape)}, {preview(code)}")


_FLAGS = "numpy.dtype flags must be bools or the ints 0 and 1"


def dtype_args(obj: object, align: object = False, copy: object = True) -> str:
    """``numpy.dtype(code, align, copy)``: the short type code (checked
    further by ``BUILD``); the flags bools or the ints 0 and 1 (NumPy < 1.19
    pickled ``dtype('O8', 0, 1)``)."""
    obj = as_text(obj)
    if type(obj) is not str or len(obj) > 16:
        _refuse(f"numpy.dtype argument must be a short type code, got {preview(obj)}")
    if type(align) not in (bool, int) or type(copy) not in (bool, int):
        _refuse(_FLAGS)
    if align not in (0, 1) or copy not in (0, 1):
        _refuse(_FLAGS)
    return obj


def scalar_dtype(dt: np.dtype[Any]) -> None:
    """``scalar(dtype, data)``: a dtype that holds no objects (checked before
    the data)."""
    if dt.hasobject:
        _refuse("object-dtype NumPy scalars are not supported")


def scalar_size(dt: np.dtype[Any], got: int) -> None:
    """``scalar(dtype, data)``: exactly ``itemsize`` bytes of data."""
    if got != dt.itemsize:
        _refuse(f"a {dt} scalar needs {dt.itemsize} bytes, got {got}")


def frombuffer_check(
    dt: np.dtype[Any], shape: tuple[int, ...], order: object, size: int
) -> int:
    """``_frombuffer(buf, dtype, shape, order)`` with the buffer of `size`
    bytes, the dtype and the shape checked: returns the element count."""
    if dt.hasobject or order not in ("C", "F"):
        _refuse("bad _frombuffer arguments")
    if dt.itemsize == 0:
        _refuse(f"_frombuffer of the zero-width dtype {dt}")
    count = math.prod(shape)
    if size != count * dt.itemsize:
        _refuse(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {size}"
        )
    return count


def encode_args(text: object, encoding: object = "utf-8") -> None:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 spells bytes (the
    text must then be latin-1: :func:`as_bytes`)."""
    if type_name(text) != "str" or encoding not in LATIN1:
        _refuse("_codecs.encode is only allowed as (str, 'latin1')")


def bytes_args(args: tuple[object, ...]) -> None:
    """``bytes()`` or ``bytes(str, 'latin1')`` (the text must be latin-1)."""
    if args == () or (
        len(args) == 2 and args[1] in LATIN1 and type_name(args[0]) == "str"
    ):
        return
    _refuse("bytes() is only allowed with no arguments or (str, 'latin1')")


def bytearray_args(args: tuple[object, ...]) -> None:
    """``bytearray()``, ``bytearray(bytes)`` or ``bytearray(str, 'latin1')``."""
    if not args or (len(args) == 1 and type_name(args[0]) == "bytes"):
        return
    if len(args) == 2 and args[1] in LATIN1 and type_name(args[0]) == "str":
        return
    _refuse("bad bytearray() arguments")


def iterable_arg(args: tuple[object, ...], what: str) -> None:
    """``set()``/``frozenset()`` of nothing, or of one list or tuple."""
    if not args or (len(args) == 1 and type_name(args[0]) in ("list", "tuple")):
        return
    _refuse(f"{what}() takes a list or tuple")


def complex_value(real: object = 0.0, imag: object = 0.0) -> complex:
    """``complex(real, imag)`` of two numbers (ints that fit a float)."""
    if not (isinstance(real, int | float) and isinstance(imag, int | float)):
        _refuse("complex() takes two numbers")
    try:
        return complex(real, imag)
    except OverflowError:
        _refuse("complex() of an int too large for a float")


def ordereddict_args(args: tuple[object, ...]) -> None:
    """``OrderedDict()`` only: protocol 2+ fills it with ``SETITEMS``."""
    if args:
        _refuse("OrderedDict() is only allowed without arguments")


# --------------------------------------------------------------------------
# the ndarray BUILD state


def array_head(state: object, resolve: Resolve) -> tuple[Checked, object]:
    """Check the state ``(version, shape, dtype, is_fortran, data)`` (or the
    same without ``version``) but its data; return the first four items,
    checked, and the data."""
    if isinstance(state, tuple) and len(state) == 4:  # version 0: no version
        state = (0, *state)
    if not (isinstance(state, tuple) and len(state) == 5):
        _refuse(f"bad ndarray state of type {type_name(state)}")
    version, shape, dtype_b, fortran, raw = state
    if type(version) is not int or version not in (0, 1):
        _refuse(f"unsupported ndarray pickle version {preview(version)}")
    shape = check_shape(shape)
    dt = resolve(dtype_b)
    if type(fortran) not in (bool, int):  # NumPy reads the flag as a C int
        _refuse("ndarray fortran flag must be a bool")
    return (version, shape, dt, bool(fortran)), raw


def object_items(
    checked: Checked,
    max_items: int,
    raw: object,
    length: int | None,
    rows: Callable[[int], bool],
) -> None:
    """The data of an object array: a list (of `length` items) of exactly
    ``prod(shape)`` items, at most `max_items`; for a structured dtype,
    ``rows(k)`` must say each item is a tuple of one item per field."""
    _, shape, dt, _ = checked
    count = math.prod(shape)
    if count > max_items:
        msg = (
            f"object array of {count} elements exceeds "
            f"max_items={max_items}; pass a larger max_items to load it"
        )
        raise Refused(
            msg,
            limit="max_items",
            value=count,
            maximum=max_items,
        )
    if type_name(raw) != "list" or length != count:
        _refuse(
            f"object array of shape {shape} needs a list of {count} items, "
            f"got {type_name(raw)}" + (f" of {length}" if length is not None else "")
        )
    if dt.names is not None and not rows(len(dt.names)):
        _refuse(f"a structured array needs a tuple of {len(dt.names)} per item")


def structured_rows(dt: np.dtype[Any], rows: Iterable[tuple[Any, ...]]) -> None:
    """The items of a structured object array fit its fields: NumPy itself
    converts each row's values for the fields that hold no objects, without
    a warning (the values of object fields are not looked at: pass
    anything). A field that holds objects inside a sub-array or a nested
    structure is refused."""
    assert dt.names is not None
    fields = [dt.fields[name][0] for name in dt.names]  # type: ignore[index]
    plain = [f.hasobject and f != np.dtype(object) for f in fields]
    if any(plain):
        _refuse(f"a structured array whose objects are nested in a field ({dt})")
    objects = [f.hasobject for f in fields]
    probe = np.empty(1, dtype=dt)
    with warnings.catch_warnings():
        # a value NumPy takes only with a warning (an int out of a field's
        # bounds: deprecated in NumPy 1.24, an error in 2) is refused
        warnings.simplefilter("error")
        for row in rows:
            values = tuple(
                None if is_obj else v for is_obj, v in zip(objects, row, strict=True)
            )
            try:
                probe[0] = values
            except Exception as err:  # NumPy's own complaint, whatever it is
                _refuse(
                    f"a structured array's item {preview(row)} does not fit its "
                    f"fields ({preview(err)})"
                )


def zero_width(checked: Checked, max_items: int) -> None:
    """An array of a zero-width dtype holds no data: its element count is
    bounded by `max_items` instead (checked before its data)."""
    _, shape, dt, _ = checked
    count = math.prod(shape)
    if dt.itemsize == 0 and count > max_items:
        msg = (
            f"array of {count} zero-width elements exceeds "
            f"max_items={max_items}; pass a larger max_items to load it"
        )
        raise Refused(
            msg,
            limit="max_items",
            value=count,
            maximum=max_items,
        )


def data_size(checked: Checked, got: int) -> None:
    """The data of an array that holds no objects: exactly ``count *
    itemsize`` bytes (`got`: how many there are)."""
    _, shape, dt, _ = checked
    count = math.prod(shape)
    if got != count * dt.itemsize:
        _refuse(
            f"array of shape {shape} and dtype {dt} needs "
            f"{count * dt.itemsize} bytes, the pickle holds {got}"
        )
