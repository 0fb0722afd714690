"""Hypothesis strategies shared by the safenpz tests."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "float_rows",
    "int_row_arrays",
    "int_rows",
    "legacy_arrays",
    "legacy_values",
    "ragged_arrays",
    "row_indices",
    "row_masks",
    "small_int_rows",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


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
    from safenpz._ragged import RaggedArray

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
    if items and draw(st.booleans()):
        items.append(items[draw(st.integers(0, len(items) - 1))])
    if len(items) == 1 and draw(st.booleans()):
        return _object_array(items, ())
    if len(items) % 2 == 0 and items and draw(st.booleans()):
        arr = _object_array(items, (2, len(items) // 2))
        return np.asfortranarray(arr) if draw(st.booleans()) else arr
    return _object_array(items)


@st.composite
def int_row_arrays(draw: st.DrawFn) -> Any:
    """Object arrays of int lists (the Keras layout): 1-D, 2-D in C or Fortran
    order (a pandas ``DataFrame.values``), 0-d; batches of 1000 and their
    one-item rule, shared rows, ints of every width inside int64."""
    row = st.one_of(
        st.lists(legacy_ints.filter(lambda v: INT64_MIN <= v <= INT64_MAX), max_size=6),
        st.builds(lambda n: list(range(n)), st.sampled_from([999, 1000, 1001, 2001])),
        st.just([]),
        st.just([2**40]),
    )
    rows = draw(st.lists(row, max_size=8))
    if rows and draw(st.booleans()):
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
