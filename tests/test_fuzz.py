"""Fixed-budget fuzzing (issue 8): byte mutations of valid files make
``load``, ``scan_pickle`` and the scanner raise only SafenpzError subclasses,
and the scanner never says *loadable* or *safe* about a file that load finds
unsafe. The budget is a fixed number of examples, derandomized, so CI time
stays fixed."""

from __future__ import annotations

import contextlib
import io
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from safenpz import (
    NpzFile,
    SafenpzError,
    UnsafeFileError,
    load,
    save,
    scan_bytes,
    scan_pickle,
)
from strategies import Edit, byte_edits, mutate


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _saved() -> bytes:
    buf = io.BytesIO()
    save(buf, x=np.array([[1, 2], [3]], dtype=object), y=np.arange(3))
    return buf.getvalue()


ROWS = np.array([[1, 2, 300], [70000], []], dtype=object)
SEEDS = {
    "npy-object": _npy(ROWS),
    "npy-numeric": _npy(np.arange(6).reshape(2, 3)),
    "npz-object": _npz(x=ROWS, y=np.arange(3)),
    "safenpz-saved": _saved(),
    "pickle-p2": pickle.dumps({"a": [1, (2.5, b"x")], "b": {1, 2}}, protocol=2),
    "pickle-p5": pickle.dumps([np.arange(3), "s"], protocol=5),
}
BUDGET = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _load_all(data: bytes) -> None:
    obj = load(data, max_member_bytes=1 << 24, max_total_bytes=1 << 25)
    if isinstance(obj, NpzFile):
        with obj:
            for key in list(obj.files):
                obj[key]


@pytest.mark.parametrize("seed", list(SEEDS))
@BUDGET
@given(edits=byte_edits(max_pos=4096))
def test_load_and_scan_raise_only_safenpz_errors(seed: str, edits: list[Edit]) -> None:
    data = mutate(SEEDS[seed], edits)
    unsafe = False
    try:
        _load_all(data)
    except UnsafeFileError:
        unsafe = True
    except SafenpzError:
        pass
    report = scan_bytes(data)  # never raises
    if unsafe:  # the scanner never clears what load refuses as unsafe
        assert report.verdict == "unsafe"


@pytest.mark.parametrize("seed", [k for k in SEEDS if k.startswith("pickle")])
@BUDGET
@given(edits=byte_edits(max_pos=512))
def test_scan_pickle_raises_only_safenpz_errors(seed: str, edits: list[Edit]) -> None:
    data = mutate(SEEDS[seed], edits)
    with contextlib.suppress(SafenpzError):
        scan_pickle(data)
    scan_pickle(data, strict=False)
