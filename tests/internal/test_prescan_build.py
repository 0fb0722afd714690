"""The compiled pre-check is built where the suite runs, and safenpz works
without it (a pure-Python install: no compiler at install time)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from safenpz import FormatError
from safenpz._limits import DEFAULT_LIMITS, Limits
from safenpz._pickle import _prescan
from safenpz._pickle._decode import safe_loads


@pytest.mark.skipif(
    os.environ.get("SAFENPZ_NO_EXTENSION") == "1",
    reason="a pure-Python install, on purpose",
)
def test_the_extension_is_built() -> None:
    # setup.py marks the extension optional: a failed build would otherwise
    # go unnoticed (every pre-check test skips without it)
    assert _prescan.AVAILABLE, (
        "safenpz._pickle._verdict is not built: run `make` again and read the "
        "compiler's output (set SAFENPZ_NO_EXTENSION=1 to test without it)"
    )


def test_without_the_extension_the_scan_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_prescan, "_verdict", None)
    arr = np.empty(3, dtype=object)
    arr[:] = ["a", {"b": 1}, [2.5]]
    data = pickle.dumps(arr, protocol=4)
    assert not _prescan.proven(data, DEFAULT_LIMITS, "latin1")
    got = safe_loads(data)
    assert got.dtype == object
    assert got.tolist() == arr.tolist()


def test_limits_beyond_the_c_range_are_taken_as_the_largest() -> None:
    # Limits takes any positive int; the C check takes a Py_ssize_t
    data = pickle.dumps(["a", {"b": 1}], protocol=4)
    huge = Limits(max_depth=2**70, max_items=2**70)
    assert _prescan.proven(data, huge, "latin1") == _prescan.AVAILABLE
    assert safe_loads(data, limits=huge) == ["a", {"b": 1}]


class _Yes:
    """A stand-in extension that proves everything (a broken pre-check)."""

    @staticmethod
    def check(data: bytes, max_depth: int, max_items: int, encoding: int) -> int:
        return 1


def test_the_cross_check_catches_a_wrong_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    # the suite's safety net: a proof the scan refuses fails loudly
    monkeypatch.setattr(_prescan, "_verdict", _Yes)
    monkeypatch.setattr(_prescan, "CROSS_CHECK", True)
    hostile = b"cos\nsystem\n(S'true'\ntR."
    with pytest.raises(AssertionError, match="the pre-check proved a stream the scan"):
        _prescan.proven(hostile, DEFAULT_LIMITS, "latin1")


def test_a_proven_stream_that_fails_to_decode_is_a_safenpz_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # were a proof ever wrong about a malformed stream, the unpickler's own
    # complaint still comes out as a FormatError, not a bare exception
    monkeypatch.setattr(_prescan, "_verdict", _Yes)
    monkeypatch.setattr(_prescan, "CROSS_CHECK", False)
    with pytest.raises(FormatError, match="the pickle is malformed"):
        safe_loads(b"\x80\x04]q\x00(K\x01")  # truncated: no APPENDS, no STOP
