"""Errors carry where they happened as attributes (``Where``), and their text
renders that location in one format: ``<source>: member '<m>': <message>``."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import safenpz
from safenpz import FormatError, LimitError, UnstorableError


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _rendered(err: safenpz.SafenpzError) -> str:
    return err.where.render(err.message)


def test_a_zip_member_over_max_member_bytes() -> None:
    data = _npz({"x.npy": _npy(np.zeros(1000))})  # 8,128 bytes inflated
    with (
        safenpz.load(data, max_member_bytes=4096) as f,
        pytest.raises(LimitError) as info,
    ):
        f["x"]
    err = info.value
    assert (err.source, err.member) == ("<bytes>", "x.npy")
    assert (err.limit, err.value, err.maximum) == ("max_member_bytes", 8128, 4096)
    assert str(err) == _rendered(err)
    assert str(err).startswith("<bytes>: member 'x.npy': declared size: 8,128 ")
    assert "pass a larger max_member_bytes=" in err.message


def test_a_bad_npy_header_in_an_archive() -> None:
    bad = b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}   \n"
    data = _npz({"ok.npy": _npy(np.arange(3)), "w.npy": bad})
    with safenpz.load(data) as f, pytest.raises(FormatError) as info:
        f["w"]
    err = info.value
    assert (err.source, err.member, err.opcode, err.offset) == (
        "<bytes>",
        "w.npy",
        None,
        None,
    )
    assert str(err).startswith("<bytes>: member 'w.npy': the .npy header must be")


def test_a_bad_npy_header_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(b"\x93NUMPY\x09\x00" + b"\x00" * 20)
    with pytest.raises(FormatError) as info:
        safenpz.load(path)
    err = info.value
    assert (err.source, err.member) == (str(path), None)
    assert str(err) == f"{path}: unsupported .npy format version 9.0"


def test_a_header_over_max_header_size() -> None:
    data = _npy(np.arange(3))
    with pytest.raises(LimitError) as info:
        safenpz.load(data, max_header_size=16)
    err = info.value
    assert (err.source, err.member) == ("<bytes>", None)
    assert (err.limit, err.maximum) == ("max_header_size", 16)
    assert isinstance(err.value, int)
    assert err.value > 16


def test_a_limit_exceeded_in_an_npz() -> None:
    rows = np.empty(10, dtype=object)
    rows[:] = [[i] for i in range(10)]
    data = _npz({"x.npy": _npy(rows), "y.npy": _npy(np.arange(2))})
    with safenpz.load(data, max_items=5) as f:
        with pytest.raises(LimitError) as info:
            f["x"]
        assert f["y"].tolist() == [0, 1]  # the other members still load
    err = info.value
    assert (err.source, err.member) == ("<bytes>", "x.npy")
    assert (err.limit, err.value, err.maximum) == ("max_items", 10, 5)
    assert str(err).startswith("<bytes>: member 'x.npy': object array: 10 exceeds")


def test_the_total_of_an_archive_has_no_member() -> None:
    data = _npz({"a.npy": _npy(np.zeros(100)), "b.npy": _npy(np.zeros(100))})
    with safenpz.load(data, max_total_bytes=1000) as f:
        f["a"]
        with pytest.raises(LimitError) as info:
            f["b"]
    err = info.value
    assert (err.source, err.member, err.limit) == ("<bytes>", None, "max_total_bytes")
    assert err.maximum == 1000


def test_a_member_name_is_escaped_in_the_text_but_not_in_the_attribute() -> None:
    name = "evil\x1b[2J.npy"
    data = _npz({name: b"\x93NUMPY\x01\x00\x04\x00{}\n\n"})
    with safenpz.load(data) as f, pytest.raises(FormatError) as info:
        f[name]
    err = info.value
    assert err.member == name
    assert "\x1b" not in str(err)
    assert "member 'evil\\x1b[2J.npy': " in str(err)


def test_save_names_the_array_it_cannot_store() -> None:
    with pytest.raises(UnstorableError) as info:
        safenpz.save(io.BytesIO(), good=np.arange(2), bad=[1, object()])
    err = info.value
    assert (err.source, err.member) == (None, "bad")
    assert str(err).startswith("member 'bad': cannot store it pickle-free: ")


def test_the_location_survives_pickling() -> None:
    data = _npz({"x.npy": _npy(np.zeros(1000))})
    with (
        safenpz.load(data, max_member_bytes=4096) as f,
        pytest.raises(LimitError) as info,
    ):
        f["x"]
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is LimitError
    assert (back.where, back.limit, back.value, back.maximum) == (
        info.value.where,
        "max_member_bytes",
        8128,
        4096,
    )
    assert str(back) == str(info.value)
