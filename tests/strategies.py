"""Hypothesis strategies shared by the safenpz tests."""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "LEGACY_SETTINGS",
    "float_rows",
    "int_row_arrays",
    "int_rows",
    "legacy_arrays",
    "legacy_values",
    "numeric_arrays",
    "numpy_scalars",
    "plain_data",
    "plain_leaves",
    "ragged_arrays",
    "row_indices",
    "row_masks",
    "small_int_rows",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Settings for property tests over whole legacy files (large examples, slow).
LEGACY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def int_rows(
    *,
    min_value: int = INT64_MIN,
    max_value: int = INT64_MAX,
    max_rows: int = 12,
    max_len: int = 8,
) -> st.SearchStrategy[list[list[int]]]:
    """Lists of lists of Python ints (zero rows and empty rows included)."""
    return st.lists(
        st.lists(
            st.integers(min_value=min_value, max_value=max_value), max_size=max_len
        ),
        max_size=max_rows,
    )


def small_int_rows(
    *, max_rows: int = 8, max_len: int = 6
) -> st.SearchStrategy[list[list[int]]]:
    """Token-id-like rows that sometimes fall outside int8 / uint8."""
    return int_rows(min_value=-300, max_value=300, max_rows=max_rows, max_len=max_len)


def float_rows(
    *, max_rows: int = 8, max_len: int = 6, allow_nan: bool = True
) -> st.SearchStrategy[list[list[float]]]:
    """Lists of lists of Python floats, including NaN and infinities."""
    return st.lists(
        st.lists(
            st.floats(allow_nan=allow_nan, allow_infinity=allow_nan, width=64),
            max_size=max_len,
        ),
        max_size=max_rows,
    )


@st.composite
def ragged_arrays(draw: st.DrawFn, rows: st.SearchStrategy[Any] | None = None) -> Any:
    """A :class:`safenpz.RaggedArray` built from drawn rows."""
    from safenpz import RaggedArray

    drawn = draw(int_rows() if rows is None else rows)
    return RaggedArray.from_lists(drawn)


@st.composite
def row_indices(draw: st.DrawFn, n: int, max_size: int = 20) -> np.ndarray:
    """Valid row indices (negative ones too, repeats allowed) for ``n`` rows."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    values = draw(st.lists(st.integers(-n, n - 1), max_size=max_size))
    return np.array(values, dtype=np.int64)


def row_masks(n: int) -> st.SearchStrategy[np.ndarray]:
    """Boolean masks with one entry per row."""
    return st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda bits: np.array(bits, dtype=np.bool_)
    )


# -- fuzzing valid files by small edits (test_npy, test_unpickle, test_pickle_scan)

Edit = tuple[str, int, int]


def byte_edits(max_pos: int = 100_000) -> st.SearchStrategy[list[Edit]]:
    """One to four flips, insertions or deletions at arbitrary positions."""
    return st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]),
            st.integers(0, max_pos),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=4,
    )


def mutate(seed: bytes, edits: list[Edit]) -> bytes:
    """Apply `edits` (positions taken modulo the length) to `seed`."""
    data = bytearray(seed)
    for what, pos, value in edits:
        pos %= len(data) + 1
        if what == "insert":
            data.insert(pos, value)
        elif pos < len(data):
            if what == "flip":
                data[pos] ^= value or 1
            else:
                del data[pos]
    return bytes(data)


# --------------------------------------------------------------------------
# plain data as legacy files hold it (tests/legacy.py writes every layout)

# ints of every opcode width: BININT1/2/BININT, beyond 32 bits (text INT in
# Python 2, LONG1 or text LONG), beyond 64 bits (LONG1)
legacy_ints = st.one_of(
    st.integers(0, 255),
    st.integers(256, 65535),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-(2**80), 2**80),
)


def _object_array(items: list[Any], shape: tuple[int, ...] | None = None) -> Any:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr if shape is None else arr.reshape(shape)


@st.composite
def _numeric_arrays(draw: st.DrawFn) -> Any:
    """Small numeric arrays: any byte order, C or Fortran order, 0-3 dims."""
    char = draw(st.sampled_from(["i1", "u2", "i4", "i8", "f4", "f8", "c16", "b1"]))
    order = draw(st.sampled_from(["<", ">"])) if char not in ("i1", "b1") else "|"
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    size = int(np.prod(shape))
    raw = draw(st.binary(min_size=size * 16, max_size=size * 16))
    dtype = np.dtype(order + char if order != "|" else char)
    arr = np.frombuffer(raw, np.uint8)[: size * dtype.itemsize].view(dtype)
    if dtype.kind == "b":
        arr = arr.view(np.uint8).astype(bool)
    arr = arr.reshape(shape).copy()
    if draw(st.booleans()):
        arr = np.asfortranarray(arr)
    return arr


def legacy_values(*, python2: bool = False) -> st.SearchStrategy[Any]:
    """Plain data: None, bools, ints of every width, floats, str, bytes,
    lists, tuples, dicts (``OrderedDict`` too unless `python2`), numeric
    arrays, nested."""
    text = st.text(max_size=6) | st.sampled_from(["", "a", "ab", "é", "\u20ac", "\n\\"])
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        legacy_ints,
        st.floats(allow_nan=False, width=64),
        text,
        st.binary(max_size=6),
        _numeric_arrays(),
    )
    keys = st.one_of(text, legacy_ints)

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        options = [
            st.lists(children, max_size=4),
            st.lists(children, max_size=5).map(tuple),
            st.dictionaries(keys, children, max_size=4),
            st.lists(children, max_size=4).map(_object_array),
        ]
        if not python2:
            options.append(st.dictionaries(keys, children, max_size=3).map(OrderedDict))
        return st.one_of(*options)

    return st.recursive(scalars, extend, max_leaves=12)


@st.composite
def legacy_arrays(draw: st.DrawFn, *, python2: bool = False) -> Any:
    """An object array (1-D, sometimes 0-d or 2-D) of plain data, sometimes
    holding the same object twice (memo GETs)."""
    items = draw(st.lists(legacy_values(python2=python2), max_size=6))
    if len(items) > 0 and draw(st.booleans()):
        items.append(items[draw(st.integers(0, len(items) - 1))])
    if len(items) == 1 and draw(st.booleans()):
        return _object_array(items, ())
    if len(items) % 2 == 0 and len(items) > 0 and draw(st.booleans()):
        arr = _object_array(items, (2, len(items) // 2))
        return np.asfortranarray(arr) if draw(st.booleans()) else arr
    return _object_array(items)


@st.composite
def int_row_arrays(draw: st.DrawFn) -> Any:
    """Object arrays of int lists (the Keras layout): 1-D, 2-D in C or Fortran
    order (a pandas ``DataFrame.values``), 0-d; batches of 1000 and their
    one-item rule, shared rows, ints of every width inside int64."""
    row: st.SearchStrategy[list[int]] = st.one_of(
        st.lists(legacy_ints.filter(lambda v: INT64_MIN <= v <= INT64_MAX), max_size=6),
        st.builds(lambda n: list(range(n)), st.sampled_from([999, 1000, 1001, 2001])),
        st.just([]),
        st.just([2**40]),
    )
    rows = draw(st.lists(row, max_size=8))
    if len(rows) > 0 and draw(st.booleans()):
        rows.insert(draw(st.integers(0, len(rows))), rows[0])  # a shared row
    shape = draw(
        st.sampled_from(
            [(len(rows),)]
            + ([(2, len(rows) // 2)] if rows and len(rows) % 2 == 0 else [])
            + ([()] if len(rows) == 1 else [])
        )
    )
    arr = _object_array(rows, shape)
    return np.asfortranarray(arr) if len(shape) == 2 and draw(st.booleans()) else arr


# -- nested plain data (test_tree): everything safenpz.load can return


def _float_bits() -> st.SearchStrategy[float]:
    """Any float64 bit pattern: -0.0, infinities, NaNs with any payload."""
    return st.integers(0, 2**64 - 1).map(
        lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]
    )


def _floats() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(), _float_bits())


_TEXT = st.one_of(
    st.text(max_size=8),
    st.text(max_size=4).map(lambda s: s + "\x00"),  # trailing NUL kept
    st.just("\ud800 lone surrogate"),
)
_BYTES = st.one_of(
    st.binary(max_size=8), st.binary(max_size=4).map(lambda b: b + b"\0")
)


def _array_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    from hypothesis.extra import numpy as hnp

    simple = st.one_of(
        hnp.boolean_dtypes(),
        hnp.integer_dtypes(endianness="?"),
        hnp.unsigned_integer_dtypes(endianness="?"),
        hnp.floating_dtypes(endianness="?"),
        hnp.complex_number_dtypes(endianness="?"),
        hnp.datetime64_dtypes(endianness="?"),
        hnp.timedelta64_dtypes(endianness="?"),
        hnp.byte_string_dtypes(endianness="?", min_len=1, max_len=4),
        hnp.unicode_string_dtypes(endianness="?", min_len=1, max_len=4),
    )
    return st.one_of(simple, hnp.nested_dtypes(subtype_strategy=simple, max_leaves=4))


@st.composite
def numeric_arrays(draw: st.DrawFn) -> np.ndarray:
    """Non-object arrays of any shape (0-d and empty too), C or Fortran order."""
    from hypothesis.extra import numpy as hnp

    dtype = draw(_array_dtypes())
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    arr = draw(hnp.arrays(dtype, shape))
    return np.asfortranarray(arr) if draw(st.booleans()) else arr


@st.composite
def numpy_scalars(draw: st.DrawFn) -> Any:
    """NumPy scalars of every non-object kind (void scalars of structs too)."""
    arr = draw(numeric_arrays())
    if arr.size == 0:
        arr = np.zeros(1, arr.dtype)
    return arr.reshape(-1)[0]


_NUMBER_TYPES = [np.bool_, np.int8, np.uint16, np.int32, np.int64, np.longlong]
_NUMBER_TYPES += [np.uint64, np.ulonglong, np.float16, np.float32, np.float64]
_NUMBER_TYPES += [np.longdouble, np.complex64, np.complex128, np.clongdouble]


def plain_leaves() -> st.SearchStrategy[Any]:
    """Every kind of non-container plain value."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**62).map(lambda x: x**3),  # far beyond int64
        _floats(),
        st.builds(complex, _floats(), _floats()),
        _TEXT,
        _BYTES,
        _BYTES.map(bytearray),
        _TEXT.filter(lambda s: "\ud800" not in s).map(np.str_),
        _BYTES.map(np.bytes_),
        st.sampled_from(_NUMBER_TYPES).flatmap(lambda t: st.integers(0, 1).map(t)),
        numpy_scalars(),
        numeric_arrays(),
        _array_dtypes(),
    )


def _hashable() -> st.SearchStrategy[Any]:
    # no NaN: two NaN objects are never equal, so identical.py cannot match
    # the sets or dict keys holding them (test_tree checks those by hand)
    floats = st.floats(allow_nan=False)
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), floats, _TEXT, _BYTES)
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(tuple),
            st.frozensets(inner, max_size=3),
        ),
        max_leaves=5,
    )


@st.composite
def _object_arrays(draw: st.DrawFn, items: st.SearchStrategy[Any]) -> np.ndarray:
    values = draw(st.lists(items, max_size=6))
    n = len(values)
    shapes: list[tuple[int, ...]] = [(n,)]
    shapes += [(a, n // a) for a in range(2, n) if n % a == 0]
    if n == 1:
        shapes.append(())
    if n == 0:
        shapes.append((0, 3))
    flat = np.empty(n, dtype=object)
    for i, v in enumerate(values):
        flat[i] = v
    arr = flat.reshape(draw(st.sampled_from(shapes)))
    return np.asfortranarray(arr) if draw(st.booleans()) else arr


def plain_data(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Nested plain data: containers and object arrays of :func:`plain_leaves`."""
    return st.recursive(
        plain_leaves(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(_hashable(), inner, max_size=4),
            st.dictionaries(_hashable(), inner, max_size=4).map(
                lambda d: OrderedDict(reversed(list(d.items())))
            ),
            st.sets(_hashable(), max_size=4),
            st.frozensets(_hashable(), max_size=4),
            _object_arrays(inner),
        ),
        max_leaves=max_leaves,
    )
