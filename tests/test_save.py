"""Tests for safenpz.save: the pickle-free layout, atomic writes, and the
manifest as untrusted input."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from hostile import HOSTILE, npy_bytes, obj_array
from identical import assert_identical
from safenpz import (
    FormatError,
    RaggedArray,
    SafenpzError,
    UnsafeFileError,
    load,
    save,
)
from strategies import float_rows, int_rows

#: the manifest member's name: part of the pickle-free format
MANIFEST = "__safenpz__"


def saved(compress: bool = False, **arrays: Any) -> bytes:
    """``save`` into memory."""
    buf = io.BytesIO()
    save(buf, compress=compress, **arrays)
    return buf.getvalue()


def load_all(data: Any, **kwargs: Any) -> dict[str, Any]:
    with load(data, **kwargs) as f:
        return {name: f[name] for name in f.files}


def plain_numpy(data: bytes) -> dict[str, np.ndarray]:
    """What ``np.load(allow_pickle=False)`` sees."""
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def assert_same_ragged(got: Any, want: RaggedArray) -> None:
    assert isinstance(got, RaggedArray)
    assert got.dtype == want.dtype
    assert_identical(got.values, want.values)
    assert_identical(got.offsets, want.offsets)


# --------------------------------------------------------------------------
# round trips


NUMERIC = {
    "int64": np.arange(-3, 3),
    "uint8-2d": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "float32-fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2)),
    "complex": np.array([1 + 2j, np.nan]),
    "bool": np.array([True, False]),
    "unicode": np.array(["a", "héllo"]),
    "bytes": np.array([b"x", b""], dtype="S2"),
    "datetime": np.array(["2020-01-01"], dtype="M8[D]"),
    "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
    "0-d": np.array(2.5),
    "empty": np.zeros((0, 3)),
}


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
@pytest.mark.parametrize("arr", list(NUMERIC.values()), ids=list(NUMERIC))
def test_numeric_arrays_are_stored_as_they_are(arr: np.ndarray, compress: bool) -> None:
    data = saved(compress, x=arr)
    assert list(plain_numpy(data)) == ["x"]  # no manifest for numeric-only files
    assert_identical(plain_numpy(data)["x"], arr)
    assert_identical(load_all(data)["x"], arr)


RAGGED = {
    "int64": RaggedArray.from_lists([[1, 2], [], [3]]),
    "int8": RaggedArray.from_lists([[1, -2], [3]], dtype=np.int8),
    "uint16": RaggedArray.from_lists([[65535], [0, 1]], dtype=np.uint16),
    "float32": RaggedArray.from_lists([[1.5], [np.nan, -0.0]], dtype=np.float32),
    "no-rows": RaggedArray(np.zeros(0, np.int32), np.zeros(1, np.int64)),
    "empty-rows": RaggedArray(np.zeros(0, np.int64), np.zeros(4, np.int64)),
}


@pytest.mark.parametrize("ragged", list(RAGGED.values()), ids=list(RAGGED))
def test_ragged_arrays(ragged: RaggedArray) -> None:
    data = saved(x=ragged)
    raw = plain_numpy(data)
    assert sorted(raw) == [MANIFEST, "x.offsets", "x.values"]
    assert_identical(raw["x.values"], ragged.values)
    assert raw["x.offsets"].dtype == np.int64
    assert_same_ragged(load_all(data)["x"], ragged)
    assert_same_ragged(load_all(data, ragged=True)["x"], ragged)


OBJECTS = {
    "int-lists": obj_array([[1, 2, 3], [], [4], [2**63 - 1, -(2**63)]]),
    "int-lists-equal-length": obj_array([[1, 2], [3, 4]]),
    "float-lists": obj_array([[1.5, float("nan")], [-0.0], []]),
    "bool-lists": obj_array([[True], [False, True]]),
    "int32-arrays": obj_array([np.arange(3, dtype=np.int32), np.zeros(0, np.int32)]),
    "float-arrays": obj_array([np.arange(3.0), np.array([np.inf])]),
    "2d-int-scalars": np.array([[1, 2], [3, 4]], dtype=object),
    "2d-str-scalars": np.array([["a", "bc"], ["", "é"]], dtype=object),
    "float-scalars": np.array([1.5, -2.0], dtype=object),
    "bool-scalars": np.array([True, False], dtype=object),
    "3d-int-scalars": np.arange(8).astype(object).reshape(2, 2, 2),
    "empty-object": np.empty((0,), dtype=object),
    "empty-object-2d": np.empty((2, 0), dtype=object),
    "all-rows-empty": obj_array([[], [], []]),
}


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
@pytest.mark.parametrize("arr", list(OBJECTS.values()), ids=list(OBJECTS))
def test_object_arrays_come_back_exactly(arr: np.ndarray, compress: bool) -> None:
    data = saved(compress, x=arr, y=np.arange(3))
    raw = plain_numpy(data)  # no pickle anywhere
    assert all(v.dtype != object for v in raw.values())
    got = load_all(data)
    assert list(got) == ["x", "y"]
    assert_identical(got["x"], arr)
    assert_identical(got["y"], np.arange(3))


def test_object_lists_as_ragged() -> None:
    arr = OBJECTS["int-lists"]
    got = load_all(saved(x=arr), ragged=True)["x"]
    assert isinstance(got, RaggedArray)
    assert got.to_lists() == arr.tolist()


@pytest.mark.parametrize(
    "arr",
    [
        obj_array([[1, 2.5], [3]]),
        obj_array([(1, 2), (3,)]),
        obj_array([np.arange(3, dtype=np.int32), np.arange(2.0)]),
        obj_array([[1j], [2]]),
        obj_array([np.arange(2, dtype=np.int8), [300]]),
    ],
    ids=[
        "int-and-float-items",
        "tuple-rows",
        "rows-of-two-dtypes",
        "complex-and-int-items",
        "array-and-list-rows",
    ],
)
def test_no_silent_change_of_row_or_item_types(arr: np.ndarray) -> None:
    """What cannot come back exactly must be refused at save time."""
    try:
        data = saved(x=arr)
    except TypeError:
        return
    assert_identical(load_all(data)["x"], arr)


NESTED = {
    "dicts": obj_array([{"a": 1}]),
    "nones": obj_array([None, None]),
    "nested-lists": obj_array([[[1]], [[2]]]),
    "string-rows": obj_array([["a"], ["b"]]),
    "2d-array-rows": obj_array([np.zeros((2, 2)), np.zeros((1, 2))]),
    "mixed-scalars": np.array([1, 2.5], dtype=object),
    "python-list": [[1, 2], [3]],
    "python-dict": {"a": 1},
}


@pytest.mark.parametrize("value", list(NESTED.values()), ids=list(NESTED))
def test_nested_plain_data_is_stored_as_a_tree(value: Any) -> None:
    """What the row and scalar kinds cannot hold goes to the "tree" kind
    (tests/test_tree.py) and comes back exactly."""
    data = saved(x=value)
    manifest = json.loads(str(plain_numpy(data)[MANIFEST][()]))
    assert manifest["arrays"]["x"]["kind"] == "tree"
    assert_identical(load_all(data)["x"], value)


@pytest.mark.parametrize(
    "value",
    [np.zeros(2, dtype=[("a", "O")]), np.array([object()], dtype=object)],
    ids=["structured-with-object", "arbitrary-object"],
)
def test_unsupported_content_is_a_type_error(value: Any, tmp_path: Path) -> None:
    path = tmp_path / "out.npz"
    with pytest.raises(TypeError, match="pickle-free"):
        save(path, x=value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arrays",
    [
        {"x": RaggedArray.from_lists([[1]]), "x.values": np.arange(2)},
        {"x": obj_array([[1], [2]]), "x.offsets": np.arange(3)},
        {MANIFEST: np.arange(2)},
        {MANIFEST + "x": np.arange(2)},
        {"a/b": np.arange(2)},
        {"a\\b": np.arange(2)},
        {"": np.arange(2)},
    ],
    ids=[
        "ragged-values",
        "object-offsets",
        "manifest",
        "manifest-prefix",
        "slash",
        "backslash",
        "empty",
    ],
)
def test_bad_or_clashing_names(arrays: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        save(tmp_path / "out.npz", **arrays)
    assert list(tmp_path.iterdir()) == []


def test_positional_arrays() -> None:
    buf = io.BytesIO()
    save(buf, np.arange(2), obj_array([[1], []]))
    got = load_all(buf.getvalue())
    assert list(got) == ["arr_0", "arr_1"]
    assert_identical(got["arr_1"], obj_array([[1], []]))
    with pytest.raises(ValueError, match="arr_0"):
        save(io.BytesIO(), np.arange(2), arr_0=np.arange(3))


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "pathlib"])
def test_path_is_used_exactly_and_plain_numpy_opens_it(
    tmp_path: Path, as_str: bool
) -> None:
    path = tmp_path / "clean.data"
    save(str(path) if as_str else path, x=OBJECTS["int-lists"], y=np.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["clean.data"]
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted([MANIFEST, "x.values", "x.offsets", "y"])
        for name in f.files:
            assert f[name].dtype != object
    got = load_all(path)
    assert_identical(got["x"], OBJECTS["int-lists"])
    assert_identical(got["y"], np.arange(4))


def test_compress_writes_deflated_members() -> None:
    data = saved(True, x=OBJECTS["int-lists"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}


# --------------------------------------------------------------------------
# atomic writes


@pytest.mark.parametrize("compress", [False, True], ids=["savez", "savez_compressed"])
def test_failed_write_leaves_the_old_file_and_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    path = tmp_path / "data.npz"
    save(path, x=np.arange(3))
    before = path.read_bytes()

    def broken(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 half an archive")
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        save(path, compress=compress, x=OBJECTS["int-lists"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_interrupted_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path / "new.npz", x=np.arange(3))
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    save(path, x=np.arange(3))
    save(path, y=OBJECTS["int-lists"])
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]
    assert list(load_all(path)) == ["y"]


# --------------------------------------------------------------------------
# the manifest is untrusted input


def npz_with(manifest: Any, **members: Any) -> bytes:
    """An archive with a hand-made manifest (any JSON text or array)."""
    if isinstance(manifest, str):
        manifest = np.array(manifest)
    elif not isinstance(manifest, np.ndarray):
        manifest = np.array(json.dumps(manifest))
    buf = io.BytesIO()
    np.savez(buf, **{MANIFEST: manifest}, **members)
    return buf.getvalue()


def doc(arrays: dict[str, Any], version: Any = 1) -> dict[str, Any]:
    return {"format": "safenpz", "version": version, "arrays": arrays}


RAGGED_PARTS = {"x.values": np.array([1, 2, 3]), "x.offsets": np.array([0, 2, 3])}

BAD_MANIFESTS: dict[str, tuple[Any, dict[str, np.ndarray], str]] = {
    "not-json": ("{'format': 'safenpz'", RAGGED_PARTS, "JSON"),
    "json-list": ("[1, 2]", RAGGED_PARTS, "manifest"),
    "other-format": ({"format": "other", "arrays": {}}, RAGGED_PARTS, "manifest"),
    "arrays-not-dict": (
        {"format": "safenpz", "version": 1, "arrays": []},
        RAGGED_PARTS,
        "manifest",
    ),
    "version-2": (doc({"x": {"kind": "ragged"}}, 2), RAGGED_PARTS, "version"),
    "version-missing": (
        {"format": "safenpz", "arrays": {"x": {"kind": "ragged"}}},
        RAGGED_PARTS,
        "version",
    ),
    "unknown-kind": (doc({"x": {"kind": "pickle"}}), RAGGED_PARTS, "bad entry"),
    "entry-not-dict": (doc({"x": "ragged"}), RAGGED_PARTS, "bad entry"),
    "values-missing": (
        doc({"x": {"kind": "ragged"}}),
        {"x.offsets": np.array([0, 1])},
        "bad entry",
    ),
    "offsets-missing": (
        doc({"x": {"kind": "ragged"}}),
        {"x.values": np.array([1])},
        "bad entry",
    ),
    "bad-row-type": (
        doc({"x": {"kind": "object_lists", "rows": "frozenset"}}),
        RAGGED_PARTS,
        "bad entry",
    ),
    "scalars-member-missing": (
        doc({"z": {"kind": "object_scalars", "shape": [2]}}),
        RAGGED_PARTS,
        "bad entry",
    ),
    "scalars-shape-not-list": (
        doc({"x.values": {"kind": "object_scalars", "shape": 3}}),
        RAGGED_PARTS,
        "bad entry",
    ),
    "manifest-2d": (np.array([["a"]]), RAGGED_PARTS, "0-d unicode"),
    "manifest-int": (np.array(5), RAGGED_PARTS, "0-d unicode"),
    "manifest-bytes": (np.array(b"{}"), RAGGED_PARTS, "0-d unicode"),
    "manifest-too-large": (
        np.array(" " * (2**20 + 1) + "{}"),
        RAGGED_PARTS,
        "1 MiB",
    ),
    "deeply-nested-json": ("[" * 100_000 + "]" * 100_000, RAGGED_PARTS, "manifest"),
}


@pytest.mark.parametrize(
    ("manifest", "members", "match"),
    list(BAD_MANIFESTS.values()),
    ids=list(BAD_MANIFESTS),
)
def test_bad_manifest_is_a_format_error(
    manifest: Any, members: dict[str, np.ndarray], match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        load_all(npz_with(manifest, **members))


BAD_PARTS: dict[str, tuple[dict[str, Any], dict[str, np.ndarray], str]] = {
    "offsets-decrease": (
        {"kind": "ragged"},
        {"x.values": np.arange(4), "x.offsets": np.array([0, 3, 1, 4])},
        "decrease",
    ),
    "offsets-start-not-0": (
        {"kind": "object_lists", "rows": "list"},
        {"x.values": np.arange(4), "x.offsets": np.array([1, 4])},
        "start at 0",
    ),
    "offsets-end-short": (
        {"kind": "ragged"},
        {"x.values": np.arange(4), "x.offsets": np.array([0, 3])},
        "end",
    ),
    "offsets-beyond-values": (
        {"kind": "object_lists", "rows": "ndarray"},
        {"x.values": np.arange(4), "x.offsets": np.array([0, 2**40])},
        "end",
    ),
    "offsets-float": (
        {"kind": "ragged"},
        {"x.values": np.arange(4), "x.offsets": np.array([0.0, 4.0])},
        "offsets",
    ),
    "offsets-uint64-huge": (
        {"kind": "ragged"},
        {"x.values": np.arange(4), "x.offsets": np.array([0, 2**64 - 1], np.uint64)},
        "offsets",
    ),
    "offsets-empty": (
        {"kind": "ragged"},
        {"x.values": np.arange(4), "x.offsets": np.zeros(0, np.int64)},
        "offsets",
    ),
    "values-2d": (
        {"kind": "ragged"},
        {"x.values": np.zeros((2, 2)), "x.offsets": np.array([0, 2])},
        "values",
    ),
    "values-strings": (
        {"kind": "ragged"},
        {"x.values": np.array(["a", "b"]), "x.offsets": np.array([0, 2])},
        "values",
    ),
    "values-structured": (
        {"kind": "ragged"},
        {"x.values": np.zeros(2, "i4,i4"), "x.offsets": np.array([0, 2])},
        "values",
    ),
    "scalars-shape-mismatch": (
        {"kind": "object_scalars", "shape": [3]},
        {"x": np.arange(4)},
        "manifest",
    ),
}


@pytest.mark.parametrize(
    ("entry", "members", "match"), list(BAD_PARTS.values()), ids=list(BAD_PARTS)
)
def test_bad_parts_are_format_errors(
    entry: dict[str, Any], members: dict[str, np.ndarray], match: str
) -> None:
    data = npz_with(doc({"x": entry}), **members)
    with load(data) as f:
        assert f.files == ["x"]
        with pytest.raises(FormatError, match=match):
            f["x"]
    with load(data, ragged=True) as f, pytest.raises(FormatError, match=match):
        f["x"]


def test_hostile_pickle_in_a_ragged_part(tmp_path: Path, sentinel: Path) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p4")
    evil = npy_bytes(case.build(str(sentinel)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        manifest = np.array(json.dumps(doc({"x": {"kind": "ragged"}})))
        zf.writestr(MANIFEST + ".npy", _npy_of(manifest))
        zf.writestr("x.values.npy", evil)
        zf.writestr("x.offsets.npy", _npy_of(np.array([0, 1])))
    with pytest.raises(UnsafeFileError, match=r"posix\.system"):
        load_all(buf.getvalue())
    assert not sentinel.exists()


def test_hostile_pickle_as_the_manifest(sentinel: Path) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-builtins.exec-p2")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(MANIFEST + ".npy", npy_bytes(case.build(str(sentinel)), shape=()))
    with pytest.raises(UnsafeFileError, match=r"exec"):
        load(buf.getvalue())
    assert not sentinel.exists()


def _npy_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_manifest_never_hides_or_renames_other_members() -> None:
    data = npz_with(doc({"x": {"kind": "ragged"}}), **RAGGED_PARTS, z=np.arange(2))
    got = load_all(data)
    assert list(got) == ["x", "z"]
    assert got["x"].to_lists() == [[1, 2], [3]]


# --------------------------------------------------------------------------
# property


@settings(max_examples=150, deadline=2000)
@given(int_rows())
def test_int_lists_round_trip(rows: list[list[int]]) -> None:
    arr = obj_array(list(rows))
    got = load_all(saved(x=arr))["x"]
    assert_identical(got, arr)
    as_ragged = load_all(saved(x=arr), ragged=True)["x"]
    if not rows:  # zero rows: an empty object array is as good as a RaggedArray
        assert len(as_ragged) == 0
        return
    assert isinstance(as_ragged, RaggedArray)
    assert as_ragged.to_lists() == rows


@settings(max_examples=100, deadline=2000)
@given(float_rows())
def test_float_lists_round_trip(rows: list[list[float]]) -> None:
    arr = obj_array(list(rows))
    try:
        data = saved(x=arr)
    except TypeError:  # rows that are all empty hold no float to keep
        assert not any(rows)
        return
    assert_identical(load_all(data)["x"], arr)


@settings(max_examples=100, deadline=2000)
@given(int_rows(max_rows=6))
def test_loading_saved_files_raises_only_safenpz_errors_when_damaged(
    rows: list[list[int]],
) -> None:
    data = bytearray(saved(x=obj_array(list(rows))))
    data[len(data) // 2] ^= 0x55
    with contextlib.suppress(SafenpzError):
        load_all(bytes(data))
