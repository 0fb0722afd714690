"""Hypothesis strategies shared by the safenpz tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "float_rows",
    "int_rows",
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
