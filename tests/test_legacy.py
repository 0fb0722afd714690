"""The legacy writer (tests/legacy.py) against the real thing, and every layout
it writes through safenpz.

* Python 3 layouts: byte for byte what ``pickle.dumps`` writes (bool flags), and
  exactly that with the flags as ints (NumPy < 1.19).
* Python 2 layout: regenerates the original Keras ``reuters.npz`` (and a Python 2
  joblib fixture) from its own decoded data, byte for byte. Only the zip entries'
  modification times are taken from the original (they are the times of
  Keras's temporary files); everything else is written by tests/legacy.py.
* Every layout loads through ``safenpz.load`` identically to
  ``np.load(allow_pickle=True, encoding="latin1")`` (that object arrays of int
  lists take the fast path is checked in tests/internal/test_decode.py).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identical import assert_identical, np_load_all, safenpz_load_all
from legacy import (
    IMDB_MEMBERS,
    LAYOUTS,
    PY2,
    PY3_LAYOUTS,
    REUTERS_MEMBERS,
    Layout,
    dumps,
    npy_bytes,
    npz_bytes,
)
from strategies import LEGACY_SETTINGS, legacy_arrays

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
# the spelling of the running NumPy (numpy.core in 1.x, numpy._core in 2.x)
CORE = pickle.loads(pickle.dumps(np.zeros(1), 2)).__reduce__()[0].__module__
CORE = CORE.rsplit(".", 1)[0]


def _obj(items: list[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr if shape is None else arr.reshape(shape)


def _realdata(*parts: str) -> Path:
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared real files)")
    return path


# --------------------------------------------------------------------------
# the writer against the real thing


@LEGACY_SETTINGS
@given(legacy_arrays(), st.integers(0, 5))
def test_python3_layouts_are_pickle_dumps(arr: np.ndarray, protocol: int) -> None:
    want = pickle.dumps(arr, protocol=protocol)
    assert dumps(arr, Layout(3, protocol, int_flags=False, core=CORE)) == want


@pytest.mark.parametrize("protocol", range(6))
def test_int_flags_are_the_only_difference(protocol: int) -> None:
    arr = _obj([[1, 2], np.arange(3.0), {"a": np.array([1], ">i2")}, True, 2**70])
    want = pickle.dumps(arr, protocol=protocol)
    got = dumps(arr, Layout(3, protocol, int_flags=True, core=CORE))
    bools, ints = {
        0: (b"I00\nI01\n", b"I0\nI1\n"),
        1: (b"I00\nI01\n", b"K\x00K\x01"),
    }.get(protocol, (b"\x89\x88", b"K\x00K\x01"))
    assert want.count(bools) == 3  # one per dtype: object, float64, >i2
    if protocol < 4:
        assert got == want.replace(bools, ints)
        return
    # one frame (the whole stream), whose length grew by the longer flags
    assert got[:3] == want[:3] == b"\x80" + bytes([protocol]) + b"\x95"
    assert got[11:] == want[11:].replace(bools, ints)
    assert int.from_bytes(got[3:11], "little") == len(got) - 11


def test_python2_layout_facts() -> None:
    """The byte facts of SPEC.md, on a small array."""
    rows = [[1, 300], [], [70000, 2**40], list(range(1001)), [5]]
    rows += [[i] for i in range(260)]
    data = dumps(_obj(rows), PY2)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    names = [name for name, _ in ops]
    assert ops[0] == ("PROTO", 2)
    assert ops[1] == ("GLOBAL", "numpy.core.multiarray _reconstruct")
    assert ops[2] == ("BINPUT", 1)  # memo ids from 1
    assert ("SHORT_BINSTRING", "b") in ops
    assert ("SHORT_BINSTRING", "O8") in ops
    assert "STACK_GLOBAL" not in names
    assert "BINUNICODE" not in names
    # (0,) and 'b' have no PUT (a reference count of 1), the ndarray has
    assert ops[3:11] == [
        ("GLOBAL", "numpy ndarray"),
        ("BINPUT", 2),
        ("BININT1", 0),
        ("TUPLE1", None),
        ("SHORT_BINSTRING", "b"),
        ("TUPLE3", None),
        ("REDUCE", None),
        ("BINPUT", 3),
    ]
    dtype = ops.index(("GLOBAL", "numpy dtype"))
    assert ops[dtype + 1 : dtype + 8] == [
        ("BINPUT", 4),
        ("SHORT_BINSTRING", "O8"),
        ("BININT1", 0),
        ("BININT1", 1),  # int flags
        ("TUPLE3", None),
        ("REDUCE", None),
        ("BINPUT", 5),
    ]
    assert ("INT", 2**40) in ops  # text INT beyond 32 bits
    assert ("LONG_BINPUT", 256) in ops
    assert ("BINPUT", 255) in ops
    # [5] and the 1001st item of range(1001): item APPEND, no MARK
    assert names.count("APPEND") == 1 + 1 + 260
    assert ops[-1] == ("STOP", None)


def test_imdb_npz_in_the_python2_style() -> None:
    rows = [[1, 14, 22], [1, 194]]
    members = [
        (name, _obj(rows) if name.startswith("x") else np.array([1, 0]))
        for name in IMDB_MEMBERS
    ]
    data = npz_bytes(members, PY2)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [
            "x_test.npy",
            "x_train.npy",
            "y_train.npy",
            "y_test.npy",
        ]
        for info in infos:
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.flag_bits & 0x08 == 0  # no data descriptor
            assert info.external_attr == 0o100600 << 16
            raw = zf.read(info)
            header_len = int.from_bytes(raw[8:10], "little")
            assert raw[:8] == b"\x93NUMPY\x01\x00"
            assert (10 + header_len) % 16 == 0
            assert b"'descr'" in raw[: 10 + header_len]
    got = safenpz_load_all(data)
    assert_identical(got, np_load_all(data))
    assert got["x_train"].tolist() == rows


def test_regenerates_keras_reuters() -> None:
    """The original Keras file, from its own decoded data, byte for byte."""
    path = _realdata("keras", "reuters.npz")
    original = path.read_bytes()
    with np.load(path, allow_pickle=True) as f:
        data = {name: f[name] for name in f.files}
    with zipfile.ZipFile(path) as zf:  # taken from the original: the times
        times = [zf.getinfo(f"{name}.npy").date_time for name in REUTERS_MEMBERS]
    members = [(name, data[name]) for name in REUTERS_MEMBERS]
    assert npz_bytes(members, PY2, date_times=times) == original


def test_regenerates_a_python2_joblib_fixture() -> None:
    """[1, 'abc', {'a': 1, 'b': 2}] pickled by Python 2.7 (refcount-based memo)."""
    path = _realdata("joblib__joblib", "joblib_0.9.2_pickle_py27_np16.pkl_03.npy")
    raw = path.read_bytes()
    start = 10 + int.from_bytes(raw[8:10], "little")
    arr = np.load(path, allow_pickle=True, encoding="latin1")
    assert dumps(arr, PY2) == raw[start:]


# --------------------------------------------------------------------------
# every layout through safenpz


@LEGACY_SETTINGS
@given(legacy_arrays(python2=True), st.sampled_from(LAYOUTS))
def test_every_layout_loads_as_np_load(arr: np.ndarray, layout: Layout) -> None:
    data = npy_bytes(arr, layout)
    expected = np_load_all(data)
    assert_identical(safenpz_load_all(data), expected)


@LEGACY_SETTINGS
@given(legacy_arrays(), st.sampled_from(PY3_LAYOUTS))
def test_python3_layouts_with_ordered_dicts(arr: np.ndarray, layout: Layout) -> None:
    data = npy_bytes(arr, layout)
    assert_identical(safenpz_load_all(data), np_load_all(data))


def test_protocol0_takes_the_general_path() -> None:
    arr = _obj([[1, 2**40], []])
    for layout in (Layout(3, 0, True), Layout(3, 0, False)):
        data = npy_bytes(arr, layout)
        assert_identical(safenpz_load_all(data), np_load_all(data))
