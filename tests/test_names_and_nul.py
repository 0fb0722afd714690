"""Hardening (issue 8): archive member names resolve as in NumPy, a manifest
never hides a raw member, and ``save`` never drops trailing NUL characters."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hostile import HOSTILE, npy_bytes, npz_bytes
from identical import assert_identical
from safenpz import FormatError, UnsafeFileError, load, save


def npy_of(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def both(data: bytes, key: str) -> tuple[Any, Any]:
    with np.load(io.BytesIO(data)) as f:
        want = f[key]
    with load(data) as g:
        got = g[key]
    return got, want


# --------------------------------------------------------------------------
# NumPy's name rules


@pytest.mark.parametrize(
    "order", [("x", "x.npy"), ("x.npy", "x")], ids=["raw-first", "npy-first"]
)
@pytest.mark.parametrize("key", ["x", "x.npy"])
def test_x_and_x_npy_resolve_as_numpy_does(order: tuple[str, str], key: str) -> None:
    arrays = {"x": np.arange(3), "x.npy": np.arange(5) * 10}
    data = npz_bytes({name: npy_of(arrays[name]) for name in order})
    got, want = both(data, key)
    np.testing.assert_array_equal(got, want)
    with np.load(io.BytesIO(data)) as f, load(data) as g:
        assert g.files == f.files == ["x", "x"]
        assert list(g) == list(f)
        assert len(g) == len(f) == 2
        for k in ("x", "x.npy", "y", "y.npy", "x.npy.npy"):
            assert (k in g) == (k in f), k


def test_member_without_npy_suffix_but_npy_magic_is_decoded_like_numpy() -> None:
    data = npz_bytes({"weights": npy_of(np.arange(4.0))})
    got, want = both(data, "weights")
    np.testing.assert_array_equal(got, want)


def test_member_without_magic_is_a_format_error_naming_it() -> None:
    data = npz_bytes({"x": b"plain text", "x.npy": npy_of(np.arange(2))})
    with np.load(io.BytesIO(data)) as f:
        assert f["x"] == b"plain text"  # NumPy: the raw bytes
    with load(data) as g, pytest.raises(FormatError, match=r"member 'x': not a \.npy"):
        g["x"]


def test_hostile_raw_x_is_not_hidden_by_a_benign_x_npy(sentinel: Path) -> None:
    """np.load(f, allow_pickle=True)["x"] would run the member ``x``: safenpz
    must read that same member, and refuse it."""
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p2")
    evil = npy_bytes(case.build(str(sentinel)))
    data = npz_bytes({"x.npy": npy_of(np.arange(3)), "x": evil})
    with load(data) as g:
        np.testing.assert_array_equal(g["x.npy"], np.arange(3))
        with pytest.raises(UnsafeFileError, match=r"member 'x': global \w+\.system"):
            g["x"]
    assert not sentinel.exists()


def test_missing_key_is_a_key_error_with_escaped_names() -> None:
    data = npz_bytes({"a\x1b[2Jb.npy": npy_of(np.arange(2))})
    with load(data) as g, pytest.raises(KeyError) as info:
        g["nope\x1b"]
    assert "\x1b" not in str(info.value)


def test_reading_many_members_is_linear(measure: Any) -> None:
    """50k members: every read must not scan all names (NumPy takes ~4 s)."""
    one = npy_of(np.arange(1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(50_000):
            zf.writestr(f"m{i}.npy", one)
    with load(buf.getvalue()) as g, measure(memory=False) as m:
        for name in g.files:
            g[name]
    assert m.seconds < 30  # quadratic: several minutes


# --------------------------------------------------------------------------
# the manifest


def npz_with(manifest: Any, **members: Any) -> bytes:
    parts = {f"{k}.npy": npy_of(v) for k, v in members.items()}
    parts["__safenpz__.npy"] = npy_of(np.array(json.dumps(manifest)))
    return npz_bytes(parts)


def doc(arrays: dict[str, Any]) -> dict[str, Any]:
    return {"format": "safenpz", "version": 1, "arrays": arrays}


PARTS = {"x.values": np.array([1, 2, 3]), "x.offsets": np.array([0, 2, 3])}


def test_manifest_entry_hiding_a_raw_member_is_refused() -> None:
    data = npz_with(doc({"x": {"kind": "ragged"}}), **PARTS, x=np.arange(7))
    with pytest.raises(FormatError, match=r"would hide the archive's member 'x\.npy'"):
        load(data)


def test_manifest_archive_with_a_non_npy_member_is_refused() -> None:
    good = npz_with(doc({"x": {"kind": "ragged"}}), **PARTS)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["x"] = npy_of(np.arange(7))
    with pytest.raises(FormatError, match=r"member 'x' is not a \.npy member"):
        load(npz_bytes(members))


@pytest.mark.parametrize(
    "arrays",
    [
        {"x": {"kind": "ragged"}, "x.values": {"kind": "object_scalars", "shape": [3]}},
        {"x.values": {"kind": "object_scalars", "shape": [3]}, "x": {"kind": "ragged"}},
        {"__safenpz__": {"kind": "object_scalars", "shape": []}},
    ],
    ids=["part-also-entry", "entry-also-part", "manifest-as-entry"],
)
def test_manifest_entries_that_claim_members_twice_are_refused(
    arrays: dict[str, Any],
) -> None:
    data = npz_with(doc(arrays), **PARTS, y=np.arange(2))
    with pytest.raises(FormatError, match="manifest"):
        load(data)


def test_deeply_nested_manifest_json_is_a_format_error() -> None:
    text = '{"format": "safenpz", "version": 1, "arrays": ' + "[" * 200_000
    data = npz_bytes({"__safenpz__.npy": npy_of(np.array(text))})
    with pytest.raises(FormatError, match="nested too deeply"):
        load(data)


def test_oversized_manifest_is_refused_before_it_is_inflated() -> None:
    big = npy_of(np.array("x" * (2 << 20)))
    data = npz_bytes({"__safenpz__.npy": big}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match="larger than"):
        load(data)


# --------------------------------------------------------------------------
# save keeps trailing NULs (a 'U'/'S' array would drop them)


@pytest.mark.parametrize(
    "value",
    [
        "abc\x00",
        b"abc\x00\x00",
        ("ok", "tail\x00"),
        {"k\x00": "v\x00"},
        np.array(["ok", "tail\x00"], dtype=object),
        np.array([["a", "b\x00"]], dtype=object),
        np.array(["a\x00b", "c"], dtype=object),
        np.array([b"ab", b"c\x00d"]),
        np.array(["x", "yz"]),
    ],
    ids=[
        "str",
        "bytes",
        "tuple",
        "dict",
        "object-1d",
        "object-2d",
        "object-inner-nul",
        "S-inner-nul",
        "U",
    ],
)
def test_strings_with_nuls_read_back_identical(value: Any) -> None:
    buf = io.BytesIO()
    save(buf, x=value)
    with load(buf.getvalue()) as g:
        assert_identical(g["x"], value)
