"""Tests for safenpz.RaggedArray: layout rules, operations, Keras and Arrow parity."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safenpz import FormatError, RaggedArray, SafenpzError
from strategies import (
    INT64_MAX,
    float_rows,
    int_rows,
    ragged_arrays,
    row_indices,
    row_masks,
    small_int_rows,
)

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def rag(rows: list[list[Any]], dtype: Any = None) -> RaggedArray:
    return RaggedArray.from_lists(rows, dtype=dtype)


def assert_valid_layout(r: RaggedArray) -> None:
    off = r.offsets
    assert off.dtype == np.int64
    assert off.ndim == 1
    assert len(off) == len(r) + 1
    assert off[0] == 0
    assert off[-1] == len(r.values)
    assert (np.diff(off) >= 0).all()
    assert r.values.ndim == 1


def same_python_objects(got: Any, want: Any) -> None:
    """Assert equal values *and* equal Python types, recursively."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            same_python_objects(g, w)
    elif isinstance(want, float) and want != want:
        assert got != got
    else:
        assert got == want


def assert_same_object_array(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype == object
    assert got.shape == want.shape
    for g, w in zip(got.ravel().tolist(), want.ravel().tolist(), strict=True):
        same_python_objects(g, w)


# --------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("values", "offsets", "match"),
    [
        (np.zeros((2, 2)), [0, 4], r"values must be 1-D, got shape \(2, 2\)"),
        (
            np.array([[1], [2]], dtype=object).reshape(-1),
            [0, 2],
            r"values must be plain data, not dtype object",
        ),
        (
            np.zeros(2, dtype=[("a", "i4")]),
            [0, 2],
            r"values must be plain data, not dtype \[\('a', '<i4'\)\]",
        ),
        (np.arange(3), [[0, 3]], r"offsets must be 1-D, got shape \(1, 2\)"),
        (np.arange(0), [], r"offsets must have at least one element"),
        (np.arange(3), [0.0, 3.0], r"offsets must be integers, got dtype float64"),
        (np.arange(3), [False, True], r"offsets must be integers, got dtype bool"),
        (
            np.arange(3),
            np.array([0, 2**63, 3], dtype=np.uint64),
            r"offsets must fit in int64: offsets\[1\]=9223372036854775808",
        ),
        (np.arange(3), [1, 3], r"offsets must start at 0: offsets\[0\]=1"),
        (np.arange(3), [-1, 3], r"offsets must start at 0: offsets\[0\]=-1"),
        (
            np.arange(3),
            [0, 1, 4],
            r"offsets must end at len\(values\)=3: offsets\[2\]=4",
        ),
        (np.arange(3), [0], r"offsets must end at len\(values\)=3: offsets\[0\]=0"),
        (
            np.arange(12),
            [0, 1, 2, 3, 4, 10, 7, 12],
            r"offsets must not decrease: offsets\[5\]=10 > offsets\[6\]=7",
        ),
        (
            np.arange(2),
            [0, -1, 2],
            r"offsets must not decrease: offsets\[0\]=0 > offsets\[1\]=-1",
        ),
    ],
    ids=[
        "values-2d",
        "values-object",
        "values-structured",
        "offsets-2d",
        "offsets-empty",
        "offsets-float",
        "offsets-bool",
        "offsets-uint64-overflow",
        "offsets-start-1",
        "offsets-start-negative",
        "offsets-end-too-big",
        "offsets-end-no-rows",
        "offsets-decrease",
        "offsets-negative-middle",
    ],
)
def test_layout_errors(values: Any, offsets: Any, match: str) -> None:
    with pytest.raises(FormatError, match=match) as info:
        RaggedArray(values, offsets)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, SafenpzError)


def test_validate_false_skips_only_the_monotonic_check() -> None:
    r = RaggedArray(np.arange(3), [0, 2, 1, 3], validate=False)
    assert len(r) == 3
    with pytest.raises(FormatError, match=r"offsets must start at 0"):
        RaggedArray(np.arange(3), [1, 3], validate=False)
    with pytest.raises(FormatError, match=r"offsets must end at len\(values\)=3"):
        RaggedArray(np.arange(3), [0, 2], validate=False)


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int32, np.uint32, np.uint64], ids=lambda d: d.__name__
)
def test_offsets_become_int64(dtype: Any) -> None:
    r = RaggedArray(np.arange(3), np.array([0, 1, 3], dtype=dtype))
    assert r.offsets.dtype == np.int64
    assert r.offsets.tolist() == [0, 1, 3]


def test_offsets_are_read_only_but_callers_array_is_not() -> None:
    offsets = np.array([0, 1, 3], dtype=np.int64)
    values = np.arange(3)
    r = RaggedArray(values, offsets)
    assert not r.offsets.flags.writeable
    assert offsets.flags.writeable
    assert np.shares_memory(r.offsets, offsets)
    assert r.values is values
    with pytest.raises(ValueError, match="read-only"):
        r.offsets[0] = 1


def test_values_are_not_copied_and_any_plain_dtype_is_accepted() -> None:
    for values in (
        np.arange(4, dtype=np.uint16),
        np.array([1.5, 2.5, 3.5, 4.5], dtype=np.float16),
        np.array([True, False, True, True]),
        np.array(["a", "bb", "c", "d"]),
        np.arange(4).astype("datetime64[D]"),
    ):
        r = RaggedArray(values, [0, 1, 4])
        assert r.values is values
        assert r.dtype == values.dtype


@given(rows=int_rows())
@PROPERTY
def test_from_lists_roundtrip(rows: list[list[int]]) -> None:
    r = RaggedArray.from_lists(rows)
    assert_valid_layout(r)
    assert r.dtype == np.int64
    out = r.to_lists()
    same_python_objects(out, rows)
    assert r.lengths().tolist() == [len(row) for row in rows]
    assert len(r) == len(rows)


@given(rows=float_rows())
@PROPERTY
def test_from_lists_roundtrip_floats(rows: list[list[float]]) -> None:
    r = RaggedArray.from_lists(rows)
    assert_valid_layout(r)
    assert r.dtype == (np.float64 if any(rows) else np.int64)
    same_python_objects(r.to_lists(), rows)


@given(rows=int_rows(max_rows=6))
@PROPERTY
def test_from_lists_accepts_other_row_containers(rows: list[list[int]]) -> None:
    want = RaggedArray.from_lists(rows)
    as_tuples = RaggedArray.from_lists(tuple(tuple(row) for row in rows))
    as_arrays = RaggedArray.from_lists([np.array(row, dtype=np.int64) for row in rows])
    as_objects = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        as_objects[i] = row
    from_objects = RaggedArray.from_lists(as_objects)
    from_generator = RaggedArray.from_lists(row for row in rows)
    for got in (as_tuples, as_arrays, from_objects, from_generator):
        assert_valid_layout(got)
        assert got.equals(want), (got, want)


# ------------------------------------------------------------ dtype inference


@pytest.mark.parametrize(
    ("rows", "dtype"),
    [
        ([[1, 2], [3]], np.int64),
        ([[True], [False, True]], np.bool_),
        ([[True, 2]], np.int64),
        ([[1, 2.5]], np.float64),
        ([[True, 2.5]], np.float64),
        ([[2**63]], np.uint64),
        ([[1j, 2]], np.complex128),
        ([], np.int64),
        ([[], []], np.int64),
        ([[np.int32(1)], [np.int8(2)]], np.int64),
        ([[np.uint8(1), 2]], np.int64),
        ([[np.float32(1.5)]], np.float32),
        ([[np.float32(1.5), 2.5]], np.float64),
        ([np.array([1, 2], dtype=np.int32), np.array([], dtype=np.float64)], np.int32),
        (
            [np.array([1], dtype=np.int16), np.array([2.5], dtype=np.float32)],
            np.float32,
        ),
        ([np.array([], dtype=np.float32)], np.float32),
        (np.zeros((2, 3), dtype=np.float32), np.float32),
        (np.zeros((2, 0), dtype=np.uint8), np.uint8),
        (np.array([[1, 2], [3, 4]], dtype=object), np.int64),
        ([range(3), (4, 5)], np.int64),
        ([["a", "bc"]], np.dtype("<U2")),
    ],
    ids=[
        "ints",
        "bools-only",
        "bool-and-int",
        "int-and-float",
        "bool-and-float",
        "beyond-int64",
        "complex",
        "no-rows",
        "empty-rows",
        "numpy-int-scalars",
        "numpy-uint8-and-int",
        "numpy-float32-scalars",
        "float32-and-float",
        "array-rows-skip-empty-dtype",
        "array-rows-promote",
        "array-rows-all-empty",
        "2d-float32",
        "2d-no-columns",
        "2d-object",
        "range-and-tuple",
        "strings",
    ],
)
def test_from_lists_dtype_inference(rows: Any, dtype: Any) -> None:
    r = RaggedArray.from_lists(rows)
    assert r.dtype == np.dtype(dtype)
    assert_valid_layout(r)


def test_from_lists_2d_array_rows() -> None:
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    r = RaggedArray.from_lists(a)
    assert r.to_lists() == [[0, 1, 2], [3, 4, 5]]
    assert not np.shares_memory(r.values, a)
    assert RaggedArray.from_lists(a, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    "dtype", ["int32", "uint8", "float32", "float64", "bool", "complex64"]
)
def test_from_lists_explicit_dtype(dtype: str) -> None:
    rows = [[1, 2], [], [3]]
    for given_rows in (rows, [np.array(row) for row in rows]):
        r = RaggedArray.from_lists(given_rows, dtype=dtype)
        assert r.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(r.values, np.asarray([1, 2, 3], dtype=dtype))
    assert RaggedArray.from_lists([], dtype=dtype).dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "rows",
    [[[2**64]], [[-1, 2**63]], [[2**63], [-(2**63) - 1]]],
    ids=["beyond-uint64", "negative-and-beyond-int64", "beyond-both"],
)
def test_from_lists_rejects_ints_beyond_64_bits(rows: list[list[int]]) -> None:
    with pytest.raises(ValueError, match=r"fits neither int64 nor uint64"):
        RaggedArray.from_lists(rows)


def test_from_lists_rejects_int_beyond_float64_among_floats() -> None:
    with pytest.raises(ValueError, match=r"overflows float64"):
        RaggedArray.from_lists([[1.5, 10**400]])


def test_from_lists_explicit_dtype_follows_numpy_conversion() -> None:
    assert RaggedArray.from_lists([[1.7, -1.2]], dtype="int64").to_lists() == [[1, -1]]
    assert RaggedArray.from_lists([["ab", "c"]], dtype="U1").to_lists() == [["a", "c"]]
    # NumPy 2 raises; NumPy 1.26 warns (an error under filterwarnings=error).
    with pytest.raises((OverflowError, DeprecationWarning), match="300"):
        RaggedArray.from_lists([[300]], dtype="uint8")


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[1], 2], r"row 1 is a int"),
        (["ab", [1]], r"row 0 is a str"),
        ([[1], b"ab"], r"row 1 is a bytes"),
        ([{1, 2}], r"row 0 is a set"),
        ([[1, None]], r"the elements are of type NoneType, int"),
        ([[[1, 2]], [[3, 4]]], r"the elements are of type list"),
        ([[1, [2, 3]]], r"the elements are of type int, list"),
        ([[object()]], r"the elements are of type object"),
        ([np.zeros((2, 2))], r"row 0 is an array of shape \(2, 2\)"),
        ([np.zeros(2), np.array(3)], r"row 1 is an array of shape \(\)"),
        (np.arange(3), r"got an array of shape \(3,\)"),
        (np.zeros((2, 2, 2)), r"got an array of shape \(2, 2, 2\)"),
    ],
    ids=[
        "int-row",
        "str-row",
        "bytes-row",
        "set-row",
        "none-element",
        "nested",
        "mixed-nested",
        "object-element",
        "2d-array-row",
        "0d-array-row",
        "1d-numeric-array",
        "3d-array",
    ],
)
def test_from_lists_rejects(rows: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        RaggedArray.from_lists(rows)


@pytest.mark.parametrize("dtype", [object, "O", [("a", "i4")]], ids=str)
def test_from_lists_rejects_object_dtype(dtype: Any) -> None:
    for rows in ([[1]], []):
        with pytest.raises(TypeError, match=r"from_lists\(\): .* not dtype"):
            RaggedArray.from_lists(rows, dtype=dtype)


# ----------------------------------------------------------------- accessors


def test_properties_and_repr() -> None:
    r = rag([[1], [2, 3], [], [4, 5, 6, 7, 8, 9, 10]])
    assert r.starts.tolist() == [0, 1, 3, 3]
    assert r.stops.tolist() == [1, 3, 3, 10]
    assert r.lengths().dtype == np.int64
    assert r.lengths().tolist() == [1, 2, 0, 7]
    assert r.dtype == np.int64
    assert r.nbytes == 10 * 8 + 5 * 8
    assert len(r) == 4
    assert [row.tolist() for row in r] == r.to_lists()
    assert repr(r) == (
        "<RaggedArray [[1], [2, 3], [], ...] rows=4 values=10 dtype=int64>"
    )
    assert repr(rag([[1, 2, 3, 4, 5, 6, 7]])) == (
        "<RaggedArray [[1, 2, 3, 4, 5, 6, ...]] rows=1 values=7 dtype=int64>"
    )
    assert repr(rag([])) == "<RaggedArray [] rows=0 values=0 dtype=int64>"


def test_equals_and_identity() -> None:
    a = rag([[1.0, float("nan")], []])
    assert a.equals(rag([[1.0, float("nan")], []]))
    assert not a.equals(rag([[1.0, float("nan")]]))
    assert not a.equals(rag([[1.0], [float("nan")]]))
    assert not rag([[1]]).equals(rag([[1]], dtype="int32"))
    assert not rag([[1]]).equals([[1]])
    assert a == a
    assert a != rag([[1.0, float("nan")], []])
    assert hash(a) == hash(a)


def test_getitem_int() -> None:
    r = rag([[1], [2, 3], []])
    assert r[1].tolist() == [2, 3]
    assert np.shares_memory(r[1], r.values)
    assert r[-1].tolist() == []
    assert r[np.int64(-3)].tolist() == [1]
    assert r[np.uint8(0)].tolist() == [1]
    assert r[np.array(1)].tolist() == [2, 3]
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"row index {bad} is out of range for 3"):
            r[bad]
    with pytest.raises(TypeError, match="not a bool"):
        r[True]


@pytest.mark.parametrize(
    "index",
    [
        slice(None),
        slice(1, 3),
        slice(2, 1),
        slice(-2, None),
        slice(None, None, 2),
        slice(None, None, -1),
        slice(4, 0, -2),
        slice(10, 20),
    ],
    ids=str,
)
def test_getitem_slice(index: slice) -> None:
    rows = [[1], [2, 3], [], [4, 5, 6], [7]]
    got = rag(rows)[index]
    assert isinstance(got, RaggedArray)
    assert_valid_layout(got)
    assert got.to_lists() == rows[index]


def test_contiguous_slice_is_a_view() -> None:
    r = rag([[1], [2, 3], [4]])
    tail = r[1:]
    assert np.shares_memory(tail.values, r.values)
    assert tail.offsets.tolist() == [0, 2, 3]


def test_getitem_arrays() -> None:
    r = rag([[1], [2, 3], []])
    assert r[[2, 0]].to_lists() == [[], [1]]
    assert r[np.array([True, False, True])].to_lists() == [[1], []]
    assert r[[True, False, True]].to_lists() == [[1], []]
    assert r[[]].to_lists() == []


@given(data=st.data(), rows=int_rows())
@PROPERTY
def test_take_matches_list_indexing(data: st.DataObject, rows: list[list[int]]) -> None:
    r = RaggedArray.from_lists(rows)
    idx = data.draw(row_indices(len(rows)))
    got = r.take(idx)
    assert_valid_layout(got)
    assert got.to_lists() == [rows[i] for i in idx.tolist()]
    assert got.dtype == r.dtype


@given(data=st.data(), rows=int_rows())
@PROPERTY
def test_filter_matches_list_comprehension(
    data: st.DataObject, rows: list[list[int]]
) -> None:
    r = RaggedArray.from_lists(rows)
    mask = data.draw(row_masks(len(rows)))
    got = r.filter(mask)
    assert_valid_layout(got)
    assert got.to_lists() == [row for row, keep in zip(rows, mask, strict=True) if keep]
    assert r.take(mask).equals(got)


def test_take_and_filter_errors() -> None:
    r = rag([[1], [2, 3]])
    with pytest.raises(IndexError, match="row index 2 is out of range for 2 rows"):
        r.take([0, 2])
    with pytest.raises(IndexError, match="row index -3 is out of range for 2 rows"):
        r.take([-3, 1])
    with pytest.raises(IndexError, match="row index 0 is out of range for 0 rows"):
        rag([]).take([0])
    with pytest.raises(TypeError, match=r"integers or a boolean mask, got .* float64"):
        r.take([0.0])
    with pytest.raises(ValueError, match=r"must be 1-D, got shape \(1, 1\)"):
        r.take([[0]])
    with pytest.raises(ValueError, match=r"one entry per row: got shape \(3,\)"):
        r.filter([True, False, True])
    with pytest.raises(TypeError, match="must be boolean, got dtype int64"):
        r.filter([1, 0])
    big = np.array([2**64 - 1], dtype=np.uint64)
    with pytest.raises(IndexError, match="row index 18446744073709551615"):
        r.take(big)
    assert r.take(np.array([1], dtype=np.uint8)).to_lists() == [[2, 3]]


@given(rows=int_rows(), data=st.data())
@PROPERTY
def test_split_and_concatenate(rows: list[list[int]], data: st.DataObject) -> None:
    r = RaggedArray.from_lists(rows)
    at = data.draw(st.integers(-len(rows) - 2, len(rows) + 2))
    head, tail = r.split(at)
    assert head.to_lists() == rows[:at]
    assert tail.to_lists() == rows[at:]
    joined = RaggedArray.concatenate([head, tail])
    assert_valid_layout(joined)
    assert joined.equals(r)


def test_concatenate_promotes_and_rejects() -> None:
    got = RaggedArray.concatenate([rag([[1]], "int32"), rag([], "int8"), rag([[2.5]])])
    assert got.dtype == np.float64
    assert got.to_lists() == [[1.0], [2.5]]
    assert RaggedArray.concatenate(iter([rag([[1]])])).to_lists() == [[1]]
    with pytest.raises(ValueError, match="need at least one RaggedArray"):
        RaggedArray.concatenate([])
    with pytest.raises(TypeError, match="item 1 is a list, not a RaggedArray"):
        RaggedArray.concatenate([rag([[1]]), [[2]]])  # type: ignore[list-item]


# ------------------------------------------------------------------- values


def test_map_values() -> None:
    r = rag([[0, 1], [], [2]])
    assert r.map_values(lambda v: v * 2).to_lists() == [[0, 2], [], [4]]
    table = np.array([10.0, 20.0, 30.0])
    mapped = r.map_values(table)
    assert mapped.dtype == np.float64
    assert mapped.to_lists() == [[10.0, 20.0], [], [30.0]]
    assert np.shares_memory(mapped.offsets, r.offsets)
    assert rag([[True]]).map_values([5, 6]).to_lists() == [[6]]
    assert rag([]).map_values([]).to_lists() == []


def test_map_values_errors() -> None:
    r = rag([[0, 1], [], [2]])
    with pytest.raises(ValueError, match=r"returned shape \(2,\), expected \(3,\)"):
        r.map_values(lambda v: v[:2])
    with pytest.raises(ValueError, match=r"lookup table must be 1-D"):
        r.map_values(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="needs integer values, not float64"):
        rag([[1.0]]).map_values([1, 2])
    with pytest.raises(IndexError, match=r"value 2 is not an index .* length 2"):
        r.map_values([1, 2])
    with pytest.raises(IndexError, match="value -1 is not an index"):
        rag([[-1]]).map_values([1, 2])
    with pytest.raises(TypeError, match=r"map_values\(\): .* not dtype object"):
        r.map_values(lambda v: v.astype(object))
    with pytest.raises(TypeError, match=r"map_values\(\): .* not dtype object"):
        r.map_values(np.array([None, 1, 2]))


def test_with_values_and_astype() -> None:
    r = rag([[1, 2], [3]])
    new = r.with_values(np.array([7, 8, 9], dtype=np.uint8))
    assert new.dtype == np.uint8
    assert new.to_lists() == [[7, 8], [9]]
    with pytest.raises(ValueError, match=r"got shape \(2,\), expected \(3,\)"):
        r.with_values([1, 2])
    with pytest.raises(TypeError, match=r"with_values\(\): .* not dtype object"):
        r.with_values(np.array([1, 2, 3], dtype=object))
    with pytest.raises(TypeError, match=r"astype\(\): .* not dtype object"):
        r.astype(object)
    cast = r.astype(np.float32)
    assert cast.dtype == np.float32
    assert not np.shares_memory(cast.values, r.values)
    assert cast.to_lists() == [[1.0, 2.0], [3.0]]


@given(rows=int_rows(min_value=-(2**62), max_value=2**62), value=st.integers(0, 9))
@PROPERTY
def test_prepend_matches_lists(rows: list[list[int]], value: int) -> None:
    got = RaggedArray.from_lists(rows).prepend(value)
    assert_valid_layout(got)
    assert got.to_lists() == [[value, *row] for row in rows]
    assert got.dtype == np.int64


@pytest.mark.parametrize(
    ("dtype", "value", "want"),
    [
        ("uint8", 255, 255),
        ("float32", 0.5, 0.5),
        ("float64", float("nan"), float("nan")),
        ("int64", 2.0, 2),
        ("int64", np.int8(-3), -3),
        ("complex128", 1 + 2j, 1 + 2j),
        ("float64", 1 + 0j, 1.0),
        ("bool", True, True),
    ],
    ids=[
        "uint8-max",
        "float32",
        "nan",
        "whole-float",
        "numpy-int",
        "complex",
        "real-complex",
        "bool",
    ],
)
def test_prepend_keeps_dtype(dtype: str, value: Any, want: Any) -> None:
    got = rag([[], [0]], dtype).prepend(value)
    assert got.dtype == np.dtype(dtype)
    same_python_objects(got.to_lists(), [[want], [want, got.values[2].item()]])


@pytest.mark.parametrize(
    ("dtype", "value", "error", "match"),
    [
        ("uint8", 300, ValueError, "300 cannot be stored as uint8"),
        ("uint8", -1, ValueError, "-1 cannot be stored as uint8"),
        ("int64", 1.5, ValueError, "1.5 cannot be stored as int64"),
        ("int64", 2**64, ValueError, "cannot be stored as int64"),
        ("float64", 1 + 2j, ValueError, r"\(1\+2j\) cannot be stored as float64"),
        ("int64", "x", ValueError, "'x' cannot be stored as int64"),
        (
            "int64",
            [1, 2],
            TypeError,
            r"expected a scalar, got an array of shape \(2,\)",
        ),
    ],
    ids=["overflow", "negative-unsigned", "fraction", "huge", "complex", "str", "list"],
)
def test_prepend_rejects(dtype: str, value: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rag([[1]], dtype).prepend(value)


# ------------------------------------------------------------- object arrays


OBJECT_CASES = {
    "no-rows": [],
    "one-empty-row": [[]],
    "all-empty": [[], [], []],
    "equal-length": [[1, 2], [3, 4], [5, 6]],
    "one-row": [[1, 2, 3]],
    "ragged": [[1], [2, 3], []],
    "ragged-two": [[1, 2], [3]],
    "floats-equal": [[1.5], [2.5]],
    "bools-ragged": [[True], [False, True]],
    "big-uint": [[2**64 - 1], [1]],
}


@pytest.mark.parametrize("rows", OBJECT_CASES.values(), ids=OBJECT_CASES.keys())
def test_to_object_array_matches_numpy(rows: list[list[Any]]) -> None:
    want = np.array(rows, dtype=object)
    got = rag(rows).to_object_array()
    assert_same_object_array(got, want)
    one_d = rag(rows).to_object_array(keep_1d=True)
    assert one_d.shape == (len(rows),)
    assert one_d.dtype == object
    for g, w in zip(one_d.tolist(), rows, strict=True):
        same_python_objects(g, w)


@pytest.mark.parametrize(
    "dtype",
    ["int8", "uint64", "float16", "float32", "complex64", "bool", "U3"],
)
def test_to_object_array_element_types(dtype: str) -> None:
    values = np.arange(4).astype(dtype)
    for offsets in ([0, 2, 4], [0, 1, 4]):
        r = RaggedArray(values, offsets)
        assert_same_object_array(
            r.to_object_array(), np.array(r.to_lists(), dtype=object)
        )


@given(rows=int_rows(max_len=3))
@PROPERTY
def test_to_object_array_property(rows: list[list[int]]) -> None:
    got = RaggedArray.from_lists(rows).to_object_array()
    assert_same_object_array(got, np.array(rows, dtype=object))


# ------------------------------------------------------------ Keras padding


@pytest.fixture(scope="module")
def keras_pad() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    return keras.utils.pad_sequences


def outcome(func: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        result = func(*args, **kwargs)
    except Exception as err:  # any error: both sides must raise the same one
        return ("raised", type(err), str(err))
    return ("returned", result)


def assert_same_outcome(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    if want[0] == "raised" or got[0] == "raised":
        assert got == want
        return
    g, w = got[1], want[1]
    assert g.dtype == w.dtype
    assert g.shape == w.shape
    if w.dtype == object:
        assert_same_object_array(g, w)
    else:
        np.testing.assert_array_equal(g, w)


PAD_DTYPES = ["int32", "int64", "int8", "uint8", "float32", "float16", "bool"]
PAD_DTYPES_ALL = [*PAD_DTYPES, None, object, "object", "U2", "complex64"]


@pytest.mark.keras
@given(
    rows=small_int_rows(),
    maxlen=st.none() | st.integers(0, 8),
    dtype=st.sampled_from(PAD_DTYPES_ALL),
    padding=st.sampled_from(["pre", "post"]),
    truncating=st.sampled_from(["pre", "post"]),
    value=st.sampled_from([0.0, -1, 1.5, 7, 300, "x", float("nan")]),
)
@PROPERTY
def test_pad_matches_keras(
    keras_pad: Any,
    rows: list[list[int]],
    maxlen: int | None,
    dtype: Any,
    padding: str,
    truncating: str,
    value: Any,
) -> None:
    want = outcome(keras_pad, rows, maxlen, dtype, padding, truncating, value)
    got = outcome(rag(rows).pad, maxlen, dtype, padding, truncating, value)
    assert_same_outcome(got, want)


@pytest.mark.keras
@given(
    rows=st.one_of(int_rows(max_rows=6, max_len=5), float_rows()),
    maxlen=st.none() | st.integers(0, 6),
    dtype=st.sampled_from(PAD_DTYPES_ALL),
    padding=st.sampled_from(["pre", "post", "middle"]),
    truncating=st.sampled_from(["pre", "post", "middle"]),
)
@PROPERTY
def test_pad_matches_keras_extreme_values_and_bad_options(
    keras_pad: Any,
    rows: list[list[Any]],
    maxlen: int | None,
    dtype: Any,
    padding: str,
    truncating: str,
) -> None:
    want = outcome(keras_pad, rows, maxlen, dtype, padding, truncating)
    got = outcome(rag(rows).pad, maxlen, dtype, padding, truncating)
    assert_same_outcome(got, want)


PAD_EDGE_CASES: dict[str, tuple[list[list[Any]], dict[str, Any]]] = {
    "no-rows": ([], {}),
    "no-rows-maxlen": ([], {"maxlen": 3}),
    "all-empty": ([[], []], {}),
    "all-empty-bad-padding": ([[], []], {"padding": "middle", "maxlen": 2}),
    "all-empty-bad-truncating": ([[]], {"truncating": "middle"}),
    "bad-truncating": ([[1], [2, 3]], {"truncating": "middle"}),
    "bad-padding": ([[1], [2, 3]], {"padding": "middle"}),
    "bad-both": ([[], [2, 3]], {"padding": "x", "truncating": "y"}),
    "maxlen-0-pre": ([[], [1, 2]], {"maxlen": 0}),
    "maxlen-0-post": ([[], [1, 2]], {"maxlen": 0, "truncating": "post"}),
    "maxlen-0-post-bad-padding": (
        [[1]],
        {"maxlen": 0, "truncating": "post", "padding": "z"},
    ),
    "maxlen-negative": ([[1]], {"maxlen": -1}),
    "maxlen-numpy": ([[1, 2, 3]], {"maxlen": np.int64(2)}),
    "truncate-pre": ([[1, 2, 3, 4]], {"maxlen": 2}),
    "truncate-post": ([[1, 2, 3, 4]], {"maxlen": 2, "truncating": "post"}),
    "str-value-int-dtype": ([[1]], {"value": "x"}),
    "str-value-object": ([[1], [2, 3]], {"value": "x", "dtype": object}),
    "str-value-str-dtype": ([[1], [22, 3]], {"value": "pad", "dtype": "str"}),
    "str-value-dtype-string-object": ([[1]], {"value": "x", "dtype": "object"}),
    "float-value-int-dtype": ([[1], []], {"value": 2.7}),
    "value-out-of-range": ([[1]], {"value": 300, "dtype": "uint8"}),
    "row-out-of-range-uint8": ([[1], [300]], {"dtype": "uint8"}),
    "row-out-of-range-first": ([[300], [1]], {"dtype": "uint8", "padding": "bad"}),
    "row-out-of-range-then-bad-padding": (
        [[1], [300]],
        {"dtype": "uint8", "padding": "bad"},
    ),
    "truncated-away-out-of-range": ([[300, 1]], {"dtype": "uint8", "maxlen": 1}),
    "nan-to-int": ([[float("nan")]], {}),
    "inf-to-int": ([[1.0], [float("inf")]], {}),
    "big-float-to-int32": ([[3e9]], {}),
    "float-to-float16-overflow": ([[1e10]], {"dtype": "float16"}),
    "int-double-rounding-float32": ([[2**60 + 2**36 + 1]], {"dtype": "float32"}),
    "uint64-to-float": ([[2**64 - 1]], {"dtype": "float64"}),
    "uint64-to-int64": ([[2**64 - 1]], {"dtype": "int64"}),
    "complex-to-int": ([[1 + 2j]], {}),
    "complex-to-complex": ([[1 + 2j], []], {"dtype": "complex128"}),
    "dtype-none": ([[1], [2, 3]], {"dtype": None}),
    "dtype-none-int-value": ([[1.5], [2, 3]], {"dtype": None, "value": 0}),
    "bools": ([[True, False], [True]], {"dtype": "int32"}),
    "dtype-object": ([[1], [2, 3]], {"dtype": object, "value": None}),
    "dtype-object-floats": ([[1.0], [2.5, 3.0]], {"dtype": object}),
    "maxlen-0-pre-short-rows": ([[1], [], [2]], {"maxlen": 0}),
    "maxlen-0-pre-overflow-before-long-row": (
        [[1], [300], [1, 2]],
        {"maxlen": 0, "dtype": "uint8"},
    ),
    "maxlen-0-pre-overflow-after-long-row": (
        [[1], [1, 2], [300]],
        {"maxlen": 0, "dtype": "uint8"},
    ),
    "maxlen-0-pre-overflow-short-rows": ([[1], [300]], {"maxlen": 0, "dtype": "uint8"}),
    "dtype-bool": ([[0, 2], [-1]], {"dtype": "bool"}),
}


@pytest.mark.keras
@pytest.mark.parametrize(
    ("rows", "kwargs"), PAD_EDGE_CASES.values(), ids=PAD_EDGE_CASES.keys()
)
def test_pad_edge_cases_match_keras(
    keras_pad: Any, rows: list[list[Any]], kwargs: dict[str, Any]
) -> None:
    want = outcome(keras_pad, rows, **kwargs)
    got = outcome(rag(rows).pad, **kwargs)
    assert_same_outcome(got, want)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"padding": "middle"}, 'Padding type "middle" not understood'),
        ({"truncating": "middle"}, 'Truncating type "middle" not understood'),
        ({"value": "x"}, "`dtype` int32 is not compatible with `value`'s type"),
    ],
    ids=["padding", "truncating", "str-value"],
)
def test_pad_errors_without_keras(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rag([[1], [2, 3]]).pad(**kwargs)


def test_pad_without_keras() -> None:
    r = rag([[1], [2, 3], [], [4, 5, 6]])
    np.testing.assert_array_equal(
        r.pad(maxlen=2, padding="post", truncating="post", value=-1),
        np.array([[1, -1], [2, 3], [-1, -1], [4, 5]], dtype=np.int32),
    )
    assert r.pad().shape == (4, 3)
    assert r.pad(dtype="float32").dtype == np.float32


# ------------------------------------------------------------------- Arrow


@pytest.fixture(scope="module")
def pa() -> Any:
    return pytest.importorskip("pyarrow")


@given(rows=int_rows())
@PROPERTY
def test_arrow_roundtrip(pa: Any, rows: list[list[int]]) -> None:
    r = RaggedArray.from_lists(rows)
    for large in (None, False, True):
        arr = r.to_arrow(large=large)
        want_type = pa.large_list(pa.int64()) if large else pa.list_(pa.int64())
        assert arr.type == want_type
        assert arr.to_pylist() == rows
        back = RaggedArray.from_arrow(arr)
        assert back.equals(r)


def test_arrow_is_zero_copy(pa: Any) -> None:
    r = rag([[1, 2], [], [3]])
    arr = r.to_arrow(large=True)
    assert arr.values.buffers()[1].address == r.values.ctypes.data
    assert arr.offsets.buffers()[1].address == r.offsets.ctypes.data
    back = RaggedArray.from_arrow(arr)
    assert back.values.ctypes.data == r.values.ctypes.data
    assert not back.values.flags.writeable


@pytest.mark.parametrize(
    "dtype", ["int8", "uint32", "float16", "float32", "float64", "bool"]
)
def test_arrow_dtypes(pa: Any, dtype: str) -> None:
    r = RaggedArray(np.arange(5).astype(dtype), [0, 2, 2, 5])
    back = RaggedArray.from_arrow(r.to_arrow())
    assert back.dtype == np.dtype(dtype)
    assert back.equals(r)


def test_from_arrow_slices_and_chunks(pa: Any) -> None:
    arr = pa.array([[1, 2], [3], [], [4, 5, 6]], type=pa.large_list(pa.int32()))
    sliced = RaggedArray.from_arrow(arr.slice(1, 3))
    assert sliced.dtype == np.int32
    assert sliced.to_lists() == [[3], [], [4, 5, 6]]
    chunked = pa.chunked_array([arr.slice(0, 1), arr.slice(3, 1)])
    assert RaggedArray.from_arrow(chunked).to_lists() == [[1, 2], [4, 5, 6]]
    empty = pa.chunked_array([], type=pa.list_(pa.float64()))
    got = RaggedArray.from_arrow(empty)
    assert len(got) == 0
    assert got.dtype == np.float64
    assert (
        RaggedArray.from_arrow(pa.array([], type=pa.list_(pa.int8()))).to_lists() == []
    )


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda pa: pa.array([[1], None]), ValueError, "1 null rows"),
        (lambda pa: pa.array([[1, None]]), ValueError, "contain 1 nulls"),
        (lambda pa: pa.array([1, 2]), TypeError, "needs a list or large_list array"),
        (lambda pa: pa.array([["a"]]), TypeError, "values of type string"),
        (lambda pa: pa.array([[[1]]]), TypeError, "values of type list<item: int64>"),
        (lambda pa: [[1]], TypeError, "needs a pyarrow array, got list"),
    ],
    ids=["null-row", "null-value", "not-list", "strings", "nested", "python-list"],
)
def test_from_arrow_rejects(pa: Any, make: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RaggedArray.from_arrow(make(pa))


def test_to_arrow_unsupported_dtype(pa: Any) -> None:
    with pytest.raises(TypeError, match="cannot convert values of dtype complex128"):
        rag([[1j]]).to_arrow()


def test_arrow_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'safenpz\[arrow\]'"):
        rag([[1]]).to_arrow()
    with pytest.raises(ImportError, match=r"from_arrow\(\) needs pyarrow"):
        RaggedArray.from_arrow(object())


# ------------------------------------------------------------------ misc


@given(r=ragged_arrays())
@PROPERTY
def test_iteration_yields_views(r: RaggedArray) -> None:
    rows = list(r)
    assert len(rows) == len(r)
    for i, row in enumerate(rows):
        assert row.tolist() == r[i].tolist()
        assert row.size == 0 or np.shares_memory(row, r.values)


def test_from_lists_of_int64_max() -> None:
    r = rag([[INT64_MAX, -INT64_MAX - 1]])
    assert r.dtype == np.int64
    assert r.to_lists() == [[INT64_MAX, -INT64_MAX - 1]]


# -- PyTorch bridge ------------------------------------------------------------


def test_to_torch_jagged_shares_values() -> None:
    torch = pytest.importorskip("torch")
    r = RaggedArray.from_lists([[1, 2], [], [3, 4, 5]])
    nt = r.to_torch()
    assert nt.layout == torch.jagged
    assert [t.tolist() for t in nt.unbind()] == [[1, 2], [], [3, 4, 5]]
    assert nt.values().data_ptr() == r.values.ctypes.data  # no copy


def test_to_torch_read_only_values_are_copied() -> None:
    pytest.importorskip("torch")
    values = np.arange(4, dtype=np.float32)
    values.flags.writeable = False
    nt = RaggedArray(values, [0, 1, 4]).to_torch()
    assert [t.tolist() for t in nt.unbind()] == [[0.0], [1.0, 2.0, 3.0]]


def test_to_torch_padded_equals_pad() -> None:
    pytest.importorskip("torch")
    r = RaggedArray.from_lists([[1, 2, 3], [4]])
    got = r.to_torch(layout="padded", maxlen=2, padding="post")
    np.testing.assert_array_equal(got.numpy(), r.pad(maxlen=2, padding="post"))


def test_to_torch_bad_arguments() -> None:
    r = RaggedArray.from_lists([[1]])
    with pytest.raises(ValueError, match="layout must be"):
        r.to_torch(layout="dense")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="need layout='padded'"):
        r.to_torch(maxlen=3)


def test_to_torch_without_torch_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"safenpz\[torch\]"):
        RaggedArray.from_lists([[1]]).to_torch()
