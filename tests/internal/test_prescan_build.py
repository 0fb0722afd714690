"""The compiled pre-check is built where the suite runs, and safenpz works
without it (a pure-Python install: no compiler at install time)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

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
