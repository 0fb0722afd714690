"""White-box tests of the decoding paths behind ``load``: the int-rows fast
path agrees with the general decoder (``safe_loads``) on whatever it accepts,
and takes every binary layout of tests/legacy.py (the general decoder, patched
to fail, is never called)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safenpz
import safenpz._decode
from hostile import npy_bytes, obj_array
from identical import assert_identical, np_load_all, safenpz_load_all
from legacy import LAYOUTS, Layout
from legacy import npy_bytes as legacy_npy_bytes
from safenpz import SafenpzError, load
from safenpz._header import parse_header
from safenpz._pickle._decode import safe_loads
from strategies import LEGACY_SETTINGS, byte_edits, int_row_arrays, mutate

FUZZ = settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
EDITS = byte_edits(100_000)


INT_ROW_SEEDS = [
    npy_bytes(pickle.dumps(obj_array([[1, 2, 300], [], [70000, -5]]), p), shape=(3,))
    for p in (2, 3, 4, 5)
]


@FUZZ
@given(st.sampled_from(INT_ROW_SEEDS), EDITS)
def test_fast_path_agrees_with_the_decoder(
    seed: bytes, edits: list[tuple[str, int, int]]
) -> None:
    """Whatever the int-rows fast path accepts, the general decoder decodes to
    the same array (the fast path is an optimisation, never a second opinion)."""
    data = mutate(seed, edits)
    try:
        got = load(data)
    except SafenpzError:
        return
    if not data.startswith(b"\x93NUMPY"):
        return  # an edit turned it into a bare pickle, which has no fast path
    header = parse_header(data)
    if not header.dtype.hasobject:
        return
    reference = safe_loads(memoryview(data)[header.data_offset :])
    assert_identical(got, reference)


# --------------------------------------------------------------------------
# every binary layout of the legacy writer takes the fast path

BINARY = [lay for lay in LAYOUTS if lay.protocol >= 1]


def _boom(*args: Any, **kwargs: Any) -> Any:
    msg = "the general decoder ran"
    raise AssertionError(msg)


@pytest.fixture
def no_general_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the general decoder runs (the fast path must take the stream)."""
    monkeypatch.setattr(safenpz._decode, "safe_loads", _boom)


@LEGACY_SETTINGS
@given(int_row_arrays(), st.sampled_from(BINARY))
def test_int_rows_take_the_fast_path(arr: np.ndarray, layout: Layout) -> None:
    data = legacy_npy_bytes(arr, layout)
    expected = np_load_all(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(safenpz._decode, "safe_loads", _boom)
        got = safenpz_load_all(data)
        ragged = safenpz_load_all(data, ragged=True)
    assert_identical(got, expected)
    if arr.ndim == 1:
        assert isinstance(ragged, safenpz.RaggedArray)
        assert ragged.to_lists() == expected.tolist()
    else:
        assert_identical(ragged, expected)


@pytest.mark.parametrize("layout", BINARY, ids=lambda lay: lay.name)
def test_dataframe_values_take_the_fast_path(
    layout: Layout, no_general_decoder: None
) -> None:
    """A pandas DataFrame.values of int lists: 2-D, Fortran order."""
    rows = [[i] * (i % 4) + [2**40] * (i % 2) for i in range(12)]
    arr = np.asfortranarray(obj_array(rows, (4, 3)))
    assert arr.flags.f_contiguous
    assert not arr.flags.c_contiguous
    data = legacy_npy_bytes(arr, layout)
    got = safenpz_load_all(data)
    assert got.flags.f_contiguous
    assert not got.flags.c_contiguous
    assert got.tolist() == arr.tolist()
