"""Tests for safenpz.load: the safe ``.npy`` / ``.npz`` reader.

* every hostile pickle of :mod:`hostile`, wrapped as an object-dtype ``.npy``
  (bytes, path, file object) and as an ``.npz`` member (stored, deflated);
* files NumPy itself writes (object and numeric, every dtype family, every
  header version, ``savez``/``savez_compressed``) load exactly like
  ``np.load(..., allow_pickle=True)``;
* header and zip hygiene, truncation at every byte, zip bombs under measured
  memory, the input kinds, ``mmap_mode``;
* Hypothesis: arbitrary and mutated inputs raise only ``SafenpzError``.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fileobjs import ReadSeekOnly
from hostile import (
    BAD_HEADERS,
    HOSTILE,
    MALFORMED,
    Hostile,
    Malformed,
    RawMember,
    binstr,
    deflate,
    npy_bytes,
    npy_header,
    npz_bytes,
    obj_array,
    py2_array,
    py2_dtype,
    py2_int_list,
    py2_object_array,
    raw_zip,
    shared_row_array,
)
from identical import assert_identical
from safenpz import (
    FormatError,
    LimitError,
    NpzFile,
    RaggedArray,
    SafenpzError,
    UnsafeFileError,
    load,
)
from strategies import byte_edits, int_rows, mutate

FUZZ = settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)


def npy_of(arr: Any, **kwargs: Any) -> bytes:
    """What ``np.save`` writes for `arr`."""
    buf = io.BytesIO()
    np.save(buf, arr, **kwargs)
    return buf.getvalue()


def np_load(data: bytes, **kwargs: Any) -> Any:
    """NumPy's own reading of `data` (the reference)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.load(io.BytesIO(data), allow_pickle=True, **kwargs)


def read_all(file: Any, **kwargs: Any) -> dict[str, Any]:
    """Load an archive and decode every array, closing it."""
    with load(file, **kwargs) as f:
        assert isinstance(f, NpzFile)
        return {name: f[name] for name in f.files}


# --------------------------------------------------------------------------
# hostile pickles inside .npy and .npz


WRAPPERS = ["npy-bytes", "npy-path", "npy-fileobj", "npz-stored", "npz-deflated"]


def wrapped(
    kind: str, body: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Callable[[], Any], str]:
    """A loader of `body` wrapped as `kind`, and the member text its errors
    must name. Files are written in `tmp_path` and named relative to it (the
    test runs there): messages show a file's name whole only up to 80
    characters, and a temporary path can be longer (pytest-xdist's are)."""
    data = npy_bytes(body)
    if kind == "npy-bytes":
        return (lambda: load(data)), "<bytes>"
    monkeypatch.chdir(tmp_path)
    path = Path("payload.npy")
    if kind in ("npy-path", "npy-fileobj"):
        path.write_bytes(data)
        if kind == "npy-path":
            return (lambda: load(path)), str(path)

        def from_file() -> Any:
            with open(path, "rb") as fp:
                return load(fp)

        return from_file, str(path)
    method = zipfile.ZIP_STORED if kind == "npz-stored" else zipfile.ZIP_DEFLATED
    path = Path("payload.npz")
    path.write_bytes(npz_bytes({"x.npy": data, "y.npy": npy_of(np.arange(3))}, method))

    def from_npz() -> Any:
        with load(str(path)) as f:
            assert f.files == ["x", "y"]
            return f["x"]

    return from_npz, "'x.npy'"


@pytest.mark.parametrize("kind", WRAPPERS, ids=WRAPPERS)
@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_hostile_pickle_in_a_file(
    case: Hostile,
    kind: str,
    sentinel: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = case.build(str(sentinel))
    want = case.expect(body)
    run, member = wrapped(kind, body, tmp_path, monkeypatch)
    with pytest.raises(want.error, match=want.pattern(member)):
        run()
    assert not sentinel.exists()


@pytest.mark.parametrize("kind", WRAPPERS, ids=WRAPPERS)
@pytest.mark.parametrize("case", MALFORMED, ids=[m.id for m in MALFORMED])
def test_malformed_pickle_in_a_file(
    case: Malformed,
    kind: str,
    tmp_path: Path,
    measure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    want = case.expect(case.data)
    run, member = wrapped(kind, case.data, tmp_path, monkeypatch)
    with (
        measure(memory=False) as m,
        pytest.raises(want.error, match=want.pattern(member)),
    ):
        run()
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target


CLAIMS = [m for m in MALFORMED if "claims" in m.id or m.id.startswith("memo-")]


@pytest.mark.parametrize("kind", ["npy-bytes", "npz-deflated"])
@pytest.mark.parametrize("case", CLAIMS, ids=[m.id for m in CLAIMS])
def test_claimed_sizes_in_a_file_allocate_nothing(
    case: Malformed,
    kind: str,
    tmp_path: Path,
    measure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, _member = wrapped(kind, case.data, tmp_path, monkeypatch)
    with measure() as m, pytest.raises(case.expect(case.data).error):
        run()
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 4 * 2**20


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (pickle.dumps([[1, 2]], protocol=4), {}, "the pickle holds a list"),
        (pickle.dumps({"a": 1}, protocol=2), {}, "the pickle holds a dict"),
        (pickle.dumps(obj_array([[1], [2]]), 4), {"shape": (3,)}, r"shape \(2,\)"),
        (pickle.dumps(obj_array([[1], [2]]), 2), {"shape": (1, 2)}, r"shape \(2,\)"),
        (pickle.dumps(obj_array(["a", "b"]), 3), {"shape": (1,)}, r"shape \(2,\)"),
        (pickle.dumps(np.arange(2), protocol=4), {"shape": (2,)}, "int64"),
        (pickle.dumps(np.float64(1.5), protocol=4), {}, "float64"),
    ],
    ids=[
        "top-level-list",
        "top-level-dict",
        "rows-vs-header-shape",
        "1d-pickle-in-2d-header",
        "strings-vs-header-shape",
        "numeric-array-in-object-header",
        "numpy-scalar",
    ],
)
def test_pickle_must_be_the_array_the_header_describes(
    body: bytes, header: dict[str, Any], match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        load(npy_bytes(body, **header))


def test_bytes_after_the_pickle_are_refused() -> None:
    data = npy_of(obj_array([[1, 2], [3]]), allow_pickle=True) + b"\x00"
    with pytest.raises(FormatError, match="trailing"):
        load(data)


def test_structured_object_descr_loads_as_np_load() -> None:
    arr = np.array([(1, [2, "x"]), (3, None)], dtype=[("a", "<i8"), ("b", "O")])
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    data = buf.getvalue()
    assert_identical(load(data), np.load(io.BytesIO(data), allow_pickle=True))


def test_structured_object_descr_must_match_the_pickled_dtype() -> None:
    body = pickle.dumps(np.zeros(1, dtype=[("a", "O")]), protocol=4)
    data = npy_bytes(body, descr=[("b", "|O")])
    with pytest.raises(FormatError, match="header promises"):
        load(data)


def test_hostile_header_expression_is_never_evaluated(sentinel: Path) -> None:
    text = f"__import__('os').system('touch {sentinel}')"
    with pytest.raises(FormatError, match="header"):
        load(npy_header(text=text) + b"\x00" * 8)
    assert not sentinel.exists()


# --------------------------------------------------------------------------
# what NumPy writes loads exactly as np.load(allow_pickle=True) reads it


OBJECT_ARRAYS = {
    "int-lists": obj_array([[1, 2], [3], [], [4, 5, 6]]),
    "int-lists-equal-length": obj_array([[1, 2], [3, 4]]),
    "int-lists-big-values": obj_array([[2**63 - 1, -(2**63)], [2**63], [-(2**70)]]),
    "tuples": obj_array([(1, 2), (), ("a", None)]),
    "dicts": obj_array([{"a": 1, 2: [3]}, {}]),
    "str-bytes-none": obj_array(["héllo", b"\x00\xff", None, ""]),
    "floats-complex-bools": obj_array([1.5, float("nan"), -0.0, 1 + 2j, True, False]),
    "sets": obj_array([{1, 2}, frozenset({"a"}), set()]),
    "nested-arrays": obj_array(
        [
            np.arange(3, dtype=np.int32),
            np.zeros((2, 2), dtype="f4"),
            np.array(["ab", "c"]),
            np.array(["2020-01-01"], dtype="M8[D]"),
            np.zeros(2, dtype=[("a", "<i2"), ("b", "S2")]),
            np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        ]
    ),
    "numpy-scalars": obj_array(
        [np.int64(3), np.float32(1.5), np.bool_(False), np.str_("s"), np.uint8(7)]
    ),
    "datetimes": obj_array([np.datetime64("2020-01-01"), np.timedelta64(3, "h")]),
    "2d-scalars": np.array([[1, "a"], [None, 2.5]], dtype=object),
    "0-d": obj_array([{"k": (1, 2)}], ()),
    "empty": np.empty((0,), dtype=object),
    "empty-2d": np.empty((0, 3), dtype=object),
    "nested-lists": obj_array([[[1, [2]], []], [[[[]]]]]),
}


@pytest.mark.parametrize("arr", list(OBJECT_ARRAYS.values()), ids=list(OBJECT_ARRAYS))
def test_object_npy_written_by_numpy(arr: np.ndarray) -> None:
    data = npy_of(arr, allow_pickle=True)
    assert_identical(load(data), np_load(data))


@pytest.mark.parametrize("arr", list(OBJECT_ARRAYS.values()), ids=list(OBJECT_ARRAYS))
def test_object_npy_with_every_protocol(arr: np.ndarray) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        body = pickle.dumps(arr, protocol=protocol)
        data = npy_bytes(body, shape=arr.shape)
        # the reference is what np.load gives: pickle's result, which on
        # NumPy 1.x differs from `arr` (unpickled datetimes carry {} metadata)
        assert_identical(load(data), pickle.loads(body))


def test_fortran_ordered_object_array() -> None:
    arr = np.asfortranarray(np.array([[1, "a", None], [2.5, b"b", (1,)]], object))
    data = npy_of(arr, allow_pickle=True)
    got = load(data)
    assert got[0, 1] == "a"
    assert_identical(got, np_load(data))


@pytest.mark.parametrize(
    "saver", [np.savez, np.savez_compressed], ids=["savez", "savez_compressed"]
)
def test_npz_written_by_numpy(saver: Callable[..., None], tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    arrays = {
        "x_train": OBJECT_ARRAYS["int-lists"],
        "y_train": np.array([0, 1, 1, 0], dtype=np.int64),
        "mixed": OBJECT_ARRAYS["str-bytes-none"],
        "grid": np.arange(12.0).reshape(3, 4),
    }
    saver(path, **arrays)
    got = read_all(path)
    with np.load(path, allow_pickle=True) as ref:
        assert list(got) == ref.files
        for name in ref.files:
            assert_identical(got[name], ref[name])


NUMERIC = {
    "int64": np.arange(-5, 5),
    "every-int": np.arange(6, dtype=">u2"),
    "uint64-max": np.array([2**64 - 1], dtype=np.uint64),
    "float16": np.array([1.5, np.inf, np.nan], dtype=np.float16),
    "float32-be": np.array([1.5, -0.0], dtype=">f4"),
    "longdouble": np.array([1.25], dtype=np.longdouble),
    "complex128": np.array([1 + 2j, np.nan * 1j]),
    "bool": np.array([True, False, True]),
    "unicode": np.array(["", "ab", "héllo🙂"]),
    "bytes": np.array([b"", b"a\x00b"], dtype="S3"),
    "datetime64": np.array(["2020-01-01T12", "NaT"], dtype="M8[h]"),
    "timedelta64": np.array([1, -2], dtype="m8[ms]"),
    "structured": np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "S2")]),
    "nested-structured": np.zeros(2, dtype=[("p", [("x", "u1"), ("y", "u1")])]),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    "0-d": np.array(7.5),
    "empty": np.zeros((0,), dtype=np.float32),
    "empty-2d": np.zeros((3, 0), dtype=np.int8),
    "void": np.array([b"ab"], dtype="V2"),
}


@pytest.mark.parametrize("arr", list(NUMERIC.values()), ids=list(NUMERIC))
def test_numeric_npy_written_by_numpy(arr: np.ndarray, tmp_path: Path) -> None:
    data = npy_of(arr, allow_pickle=False)
    assert_identical(load(data), np_load(data))
    path = tmp_path / "a.npy"
    path.write_bytes(data)
    assert_identical(load(path), arr)
    assert_identical(load(path, mmap_mode=None), arr)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
@pytest.mark.parametrize(
    "arr",
    [np.arange(5.0), OBJECT_ARRAYS["int-lists"], OBJECT_ARRAYS["dicts"]],
    ids=["numeric", "int-lists", "dicts"],
)
def test_header_versions(arr: np.ndarray, version: tuple[int, int]) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    data = buf.getvalue()
    assert data[6:8] == bytes(version)
    assert_identical(load(data), np_load(data))


def test_v3_header_with_utf8_field_names() -> None:
    arr = np.zeros(2, dtype=[("größe", "<i4"), ("名前", "<f8")])
    with pytest.warns(UserWarning, match="format 3.0"):
        data = npy_of(arr)
    assert data[6:8] == b"\x03\x00"
    assert_identical(load(data), arr)


# --------------------------------------------------------------------------
# the fast path for object arrays of int lists (what Keras files hold)


def _rows_array(rows: list[list[int]]) -> np.ndarray:
    return obj_array(list(rows))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5], ids=["p2", "p3", "p4", "p5"])
def test_int_rows_every_protocol_and_ragged(protocol: int) -> None:
    shared = [7, 8]
    rows = [[1, 2, 3], [], shared, [-1, 255, 256, 65535, 2**31, -(2**63)], shared]
    rows += [list(range(i % 13)) for i in range(2000)]
    arr = _rows_array(rows)
    data = npy_bytes(pickle.dumps(arr, protocol=protocol), shape=arr.shape)
    got = load(data)
    assert_identical(got, np_load(data))
    rag = load(data, ragged=True)
    assert isinstance(rag, RaggedArray)
    assert rag.to_lists() == rows


def test_int_rows_with_python2_encoding() -> None:
    rows = [[1, 2], [3], [], [2**40, -5]]
    data = npy_bytes(py2_object_array([py2_int_list(r) for r in rows]), shape=(4,))
    for encoding in ("latin1", "bytes", "ASCII"):
        assert_identical(load(data, encoding=encoding), _rows_array(rows))


def test_ragged_flag_keeps_non_numeric_rows() -> None:
    arr = obj_array([["a"], [None]])
    got = load(npy_of(arr, allow_pickle=True), ragged=True)
    assert_identical(got, arr)


def test_ragged_flag_keeps_rows_of_strings() -> None:
    """Only numeric rows become a RaggedArray."""
    arr = obj_array([["a"], ["bc", "d"]])
    assert_identical(load(npy_of(arr, allow_pickle=True), ragged=True), arr)


def test_ragged_flag_on_2d_object_array_returns_the_array() -> None:
    arr = np.array([[1, 2], [3, 4]], dtype=object)
    assert_identical(load(npy_of(arr, allow_pickle=True), ragged=True), arr)


@settings(max_examples=150, deadline=2000)
@given(int_rows(), st.sampled_from([2, 3, 4, 5]))
def test_int_rows_property(rows: list[list[int]], protocol: int) -> None:
    arr = _rows_array(rows)
    data = npy_bytes(pickle.dumps(arr, protocol=protocol), shape=arr.shape)
    got = load(data)
    assert_identical(got, arr)
    assert load(data, ragged=True).to_lists() == rows


# --------------------------------------------------------------------------
# Python 2 era files


def _py2_keras_npz() -> tuple[bytes, list[list[int]]]:
    rows = [[1, 14, 22, 16, 43], [1, 194, 1153], [1, 2**31, 88586]]
    x = npy_bytes(py2_object_array([py2_int_list(r) for r in rows]), shape=(3,))
    labels = np.array([1, 0, 1], dtype=np.int64)
    i8 = py2_dtype(b"i8", b"<", -1, 0)
    mixed = py2_object_array(
        [
            py2_array([3], i8, binstr(labels.tobytes())),
            binstr(b"caf\xe9"),
            py2_int_list([1, 2]),
        ]
    )
    members = {
        "x_train.npy": x,
        "y_train.npy": npy_of(labels),
        "mixed.npy": npy_bytes(mixed, shape=(3,)),
    }
    return npz_bytes(members, zipfile.ZIP_DEFLATED), rows


def test_python2_npz_loads_with_latin1(tmp_path: Path) -> None:
    data, rows = _py2_keras_npz()
    path = tmp_path / "imdb.npz"
    path.write_bytes(data)
    got = read_all(path, encoding="latin1")
    with np.load(path, allow_pickle=True, encoding="latin1") as ref:
        assert list(got) == ref.files
        for name in ref.files:
            assert_identical(got[name], ref[name])
    assert got["x_train"].tolist() == rows
    assert got["mixed"][1] == "café"


# --------------------------------------------------------------------------
# header hygiene


def test_wrong_magic() -> None:
    good = npy_of(np.arange(3))
    for data in (b"\x93NUMPX" + good[6:], b"GIF89a" + b"\x00" * 50, b"\x93NUM"):
        with pytest.raises(FormatError):
            load(data)


@pytest.mark.parametrize(
    "arr",
    [np.arange(5, dtype=np.int16), OBJECT_ARRAYS["int-lists"], OBJECT_ARRAYS["dicts"]],
    ids=["numeric", "int-lists", "dicts"],
)
def test_truncated_at_every_byte(arr: np.ndarray) -> None:
    data = npy_of(arr, allow_pickle=True)
    for n in range(len(data)):
        with pytest.raises(FormatError):
            load(data[:n])
        with pytest.raises(FormatError):
            load(io.BytesIO(data[:n]))


def test_truncated_npz_at_every_byte() -> None:
    data = npz_bytes({"a.npy": npy_of(np.arange(3)), "b.npy": npy_of(np.arange(2.0))})
    for n in range(len(data)):
        with pytest.raises(FormatError):
            read_all(data[:n])


def test_truncated_file_on_disk(tmp_path: Path) -> None:
    data = npy_of(np.arange(100, dtype=np.int64))
    path = tmp_path / "t.npy"
    for n in (0, 5, 9, 60, len(data) - 8, len(data) - 1):
        path.write_bytes(data[:n])
        with pytest.raises(FormatError):
            load(path)


@pytest.mark.parametrize("text", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_bad_header_dicts(text: str) -> None:
    data = npy_header(text=text) + b"\x00" * 8
    with pytest.raises(FormatError, match="header"):
        load(data)


def test_header_with_invalid_utf8_in_v3() -> None:
    text = "{'descr': '<i8', 'fortran_order': False, 'shape': (1,)}"
    data = bytearray(npy_header(text=text, version=(3, 0)) + b"\x00" * 8)
    data[13] = 0xFF  # inside the dict text
    with pytest.raises(FormatError, match="header"):
        load(bytes(data))


@pytest.mark.parametrize(
    "version", [(0, 9), (1, 1), (4, 0), (255, 0)], ids=["0.9", "1.1", "4.0", "255.0"]
)
def test_unknown_header_versions(version: tuple[int, int]) -> None:
    data = bytearray(npy_of(np.arange(3)))
    data[6:8] = bytes(version)
    with pytest.raises(FormatError, match="version"):
        load(bytes(data))


def test_header_length_beyond_the_file() -> None:
    data = b"\x93NUMPY\x01\x00\xff\x20{'descr'"
    with pytest.raises(FormatError, match="truncated"):
        load(data)


def test_header_larger_than_max_header_size(measure) -> None:
    fields = [(f"field_{i:04d}_" + "x" * 20, "<i4") for i in range(400)]
    arr = np.zeros(2, dtype=fields)
    data = npy_of(arr)
    assert data.index(b"\n") > 10_000
    with measure() as m, pytest.raises(LimitError, match="max_header_size"):
        load(data)
    assert m.peak_bytes < 2**20
    assert_identical(load(data, max_header_size=100_000), arr)


def test_v2_header_claiming_4gib(measure) -> None:
    data = b"\x93NUMPY\x02\x00" + b"\xff\xff\xff\xff" + b"{"
    with measure() as m, pytest.raises(LimitError, match="max_header_size"):
        load(data)
    assert m.peak_bytes < 2**20


@pytest.mark.parametrize(
    ("extra", "match"),
    [(-1, "truncated"), (1, "unexpected bytes")],
    ids=["short", "long"],
)
def test_numeric_data_size_must_match_the_shape(extra: int, match: str) -> None:
    data = npy_of(np.arange(10, dtype=np.int32))
    data = data[:-1] if extra < 0 else data + b"\x00"
    with pytest.raises(FormatError, match=match):
        load(data)
    with pytest.raises(FormatError, match=match):
        load(io.BytesIO(data))


def test_shape_claiming_terabytes_allocates_nothing(tmp_path: Path, measure) -> None:
    data = npy_header(descr="<f8", shape=(2**20, 2**20)) + b"\x00" * 64
    path = tmp_path / "big.npy"
    path.write_bytes(data)
    with measure() as m:
        # the claim is checked against the bytes really present, before any
        # allocation (max_member_bytes guards inflation, not numeric data)
        with pytest.raises(FormatError, match="truncated"):
            load(data)
        with pytest.raises(FormatError, match="truncated"):
            load(path)
        with pytest.raises(FormatError, match="truncated"):
            load(path, max_member_bytes=2**60)
        with pytest.raises(FormatError, match="truncated"):
            load(data, max_member_bytes=2**60)
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 2**20


def test_object_header_claiming_a_huge_count() -> None:
    data = npy_bytes(pickle.dumps(obj_array([[1]]), 4), shape=(10**12,))
    with pytest.raises(LimitError, match="max_items"):
        load(data)


# --------------------------------------------------------------------------
# zip hygiene


X = npy_of(np.arange(10))


def _duplicate_zip() -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("x.npy", X)
            zf.writestr("x.npy", npy_of(np.arange(3)))
    return buf.getvalue()


@pytest.mark.parametrize(
    "name", ["../evil.npy", "/abs.npy", "a/../../b.npy", "\\evil.npy", "C:evil.npy"]
)
def test_unsafe_member_names(name: str) -> None:
    with pytest.raises(FormatError, match="unsafe member name"):
        read_all(raw_zip([RawMember(name, X)]))


def test_duplicate_member_names() -> None:
    with pytest.raises(FormatError, match=r"duplicate member name 'x\.npy'"):
        read_all(_duplicate_zip())


def test_trailing_garbage_after_the_end_record() -> None:
    with pytest.raises(FormatError, match="trailing"):
        read_all(npz_bytes({"x.npy": X}) + b"garbage")


def test_trailing_fake_end_record_does_not_hide_the_archive() -> None:
    """Garbage that ends with an end-of-central-directory record of its own
    must not make the real archive look empty (zipfile then takes everything
    before it for "prepended data")."""
    data = npz_bytes({"x.npy": X}) + b"PK\x05\x06" + b"\x00" * 18
    with pytest.raises(FormatError):
        read_all(data)


@pytest.mark.parametrize(
    "prefix", [b"junk", b"PK\x03\x04junk"], ids=["junk", "fake-local-header"]
)
def test_prepended_bytes(prefix: bytes) -> None:
    with pytest.raises(FormatError):
        read_all(prefix + npz_bytes({"x.npy": X}))


@pytest.mark.parametrize("offset", [0, 10], ids=["same-header", "inside-first"])
def test_overlapping_members(offset: int) -> None:
    data = raw_zip([RawMember("a.npy", X), RawMember("b.npy", X, header_offset=offset)])
    with pytest.raises(FormatError, match="overlap"):
        read_all(data)


def test_encrypted_member() -> None:
    with pytest.raises(FormatError, match="encrypted"):
        read_all(raw_zip([RawMember("x.npy", X, flags=0x1)]))


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"]
)
def test_unsupported_compression(method: int) -> None:
    with pytest.raises(FormatError, match=f"compression method {method}"):
        read_all(npz_bytes({"x.npy": X}, method))


def test_unknown_compression_method_number() -> None:
    with pytest.raises(FormatError, match="compression method 99"):
        read_all(raw_zip([RawMember("x.npy", X, method=99)]))


def test_non_npy_member_is_listed_but_not_decoded() -> None:
    data = npz_bytes({"readme.txt": b"hello", "x.npy": X})
    with load(data) as f:
        assert f.files == ["readme.txt", "x"]
        assert_identical(f["x"], np.arange(10))
        with pytest.raises(FormatError, match=r"not a \.npy"):
            f["readme.txt"]


def test_wrong_crc() -> None:
    with pytest.raises(FormatError, match="CRC"):
        read_all(raw_zip([RawMember("x.npy", X, crc=zlib.crc32(X) ^ 1)]))


def test_member_truncated_mid_stream() -> None:
    plain = npy_of(np.arange(5000))
    packed = deflate(plain)
    member = RawMember("x.npy", packed[: len(packed) // 2], method=8, plain=plain)
    with pytest.raises(FormatError):
        read_all(raw_zip([member]))


def test_corrupt_deflate_stream() -> None:
    packed = bytearray(deflate(X))
    packed[0] |= 0x06  # BTYPE = 11: a reserved (invalid) deflate block type
    with pytest.raises(FormatError, match=r"'x\.npy'"):
        read_all(raw_zip([RawMember("x.npy", bytes(packed), method=8, plain=X)]))


def test_member_shorter_than_declared() -> None:
    member = RawMember("x.npy", deflate(X), method=8, plain=X, usize=len(X) + 100)
    with pytest.raises(FormatError, match="truncated"):
        read_all(raw_zip([member]))


def test_member_inflating_beyond_its_declared_size_bad_crc() -> None:
    big = npy_of(np.zeros(100_000, np.uint8))
    member = RawMember("x.npy", deflate(big), method=8, plain=big, usize=len(X))
    with pytest.raises(FormatError):
        read_all(raw_zip([member]))


def test_member_inflating_beyond_its_declared_size_matching_crc() -> None:
    """The declared size and CRC describe a valid .npy, but the deflate stream
    goes on for megabytes: the member is not what its header says."""
    head = npy_of(np.zeros(1000, np.uint8))
    payload = head + bytes(5_000_000)
    member = RawMember(
        "x.npy",
        deflate(payload),
        method=8,
        plain=payload,
        usize=len(head),
        crc=zlib.crc32(head),
    )
    with pytest.raises(FormatError):
        read_all(raw_zip([member]))


def test_empty_archive() -> None:
    with load(npz_bytes({})) as f:
        assert f.files == []
        assert len(f) == 0


# --------------------------------------------------------------------------
# zip bombs and limits


def test_member_claiming_10gb_is_refused_fast(measure) -> None:
    member = RawMember(
        "x.npy", deflate(X), method=8, plain=X, usize=10 * 2**30, zip64=True
    )
    data = raw_zip([member])
    assert len(data) < 1024
    with (
        measure() as m,
        load(data) as f,
        pytest.raises(LimitError, match="max_member_bytes"),
    ):
        f["x"]
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 4 * 2**20


@pytest.fixture(scope="module")
def deflate_bomb() -> bytes:
    """~100 MB of zeros (a valid uint8 .npy) deflated to ~100 KB."""
    n = 100_000_000
    head = npy_header(descr="|u1", shape=(n,))
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [comp.compress(head)]
    crc = zlib.crc32(head)
    chunk = bytes(1 << 20)
    left = n
    while left:
        piece = chunk[: min(left, len(chunk))]
        parts.append(comp.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(comp.flush())
    packed = b"".join(parts)
    assert len(packed) < 200_000
    member = RawMember("x.npy", packed, method=8, crc=crc, usize=len(head) + n)
    return raw_zip([member])


def test_deflate_bomb_hits_max_ratio(deflate_bomb: bytes, measure) -> None:
    with (
        measure() as m,
        load(deflate_bomb) as f,
        pytest.raises(LimitError, match="max_ratio"),
    ):
        f["x"]
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 48 * 2**20


def test_deflate_bomb_hits_max_member_bytes(deflate_bomb: bytes, measure) -> None:
    with (
        measure() as m,
        load(deflate_bomb, max_member_bytes=10_000_000) as f,
        pytest.raises(LimitError, match="max_member_bytes"),
    ):
        f["x"]
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 48 * 2**20


def test_member_lying_about_its_size_is_bounded_by_what_inflates(measure) -> None:
    """Declared 4 GiB - 2 (the most a plain header can say), inflates to 30 MB:
    memory follows the real data, never the declared size."""
    plain = npy_header(descr="|u1", shape=(30_000_000,)) + bytes(30_000_000)
    member = RawMember("x.npy", deflate(plain), method=8, plain=plain, usize=2**32 - 2)
    data = raw_zip([member])
    with measure() as m:
        with load(data) as f, pytest.raises(LimitError, match="max_ratio"):
            f["x"]
        with load(data, max_ratio=1e9) as f, pytest.raises(FormatError, match="trunc"):
            f["x"]
    assert m.peak_bytes < 64 * 2**20


def test_high_ratio_member_loads_when_max_ratio_is_raised() -> None:
    arr = np.zeros(20_000_000, dtype=np.uint8)
    data = npz_bytes({"x.npy": npy_of(arr)}, zipfile.ZIP_DEFLATED)
    with load(data) as f, pytest.raises(LimitError, match="max_ratio"):
        f["x"]
    with load(data, max_ratio=10_000.0) as f:
        assert_identical(f["x"], arr)


def test_shared_rows_cannot_amplify_memory_with_ragged(measure) -> None:
    """20,000 references to one 500-int list take 40 KB in the file but
    10 million values once each row is materialised: ``ragged=True`` must
    count them against ``max_items`` instead of building them."""
    data = npy_bytes(shared_row_array(500, 20_000), shape=(20_000,))
    assert len(data) < 50_000
    shared = load(data, max_items=1_000_000)  # rows share one list, as np.load's do
    assert shared[0] is shared[-1]
    with measure() as m, pytest.raises(LimitError, match="max_items"):
        load(data, ragged=True, max_items=1_000_000)
    assert m.peak_bytes < 32 * 2**20


def test_max_total_bytes_across_members() -> None:
    members = {f"{k}.npy": npy_of(np.arange(100)) for k in "abc"}
    size = len(members["a.npy"])
    data = npz_bytes(members, zipfile.ZIP_DEFLATED)
    with load(data, max_total_bytes=2 * size + size // 2) as f:
        f["a"]
        f["b"]
        f["a"]  # reading a member again does not count twice
        with pytest.raises(LimitError, match="max_total_bytes"):
            f["c"]
    assert len(read_all(data, max_total_bytes=3 * size)) == 3


def test_non_seekable_stream_is_capped_by_max_total_bytes() -> None:
    data = npz_bytes({"x.npy": X})
    with pytest.raises(LimitError, match="max_total_bytes"):
        load(NonSeekable(data), max_total_bytes=len(data) - 1)  # type: ignore[arg-type]


def test_max_items_and_max_depth_reach_the_decoder() -> None:
    data = npy_of(obj_array([[[[[1]]]], [2]]), allow_pickle=True)
    with pytest.raises(LimitError, match="max_depth"):
        load(data, max_depth=3)
    with pytest.raises(LimitError, match="max_items"):
        load(npy_of(OBJECT_ARRAYS["dicts"], allow_pickle=True), max_items=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_header_size": 0},
        {"max_member_bytes": -1},
        {"max_ratio": 1.0},
        {"max_depth": 1.5},
        {"encoding": "utf-8"},
        {"mmap_mode": "w+"},
    ],
    ids=["header-0", "member-negative", "ratio-1", "depth-float", "encoding", "mmap"],
)
def test_bad_options_are_value_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))) as info:
        load(X, **kwargs)
    assert not isinstance(info.value, SafenpzError)


# --------------------------------------------------------------------------
# input kinds


class NonSeekable(io.RawIOBase):
    """A read-only, non-seekable binary stream (like a socket or a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        return self._buf.readinto(b)


ARR = np.arange(12, dtype=np.float32).reshape(3, 4)
OBJ = OBJECT_ARRAYS["int-lists"]


@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        io.BytesIO,
        NonSeekable,
        ReadSeekOnly,
        lambda d: io.BufferedReader(NonSeekable(d)),
    ],
    ids=[
        "bytes",
        "bytearray",
        "memoryview",
        "BytesIO",
        "non-seekable",
        "read-seek-only",
        "buffered-non-seekable",
    ],
)
@pytest.mark.parametrize(
    "arr", [ARR, OBJ, OBJECT_ARRAYS["dicts"]], ids=["numeric", "int-lists", "dicts"]
)
def test_in_memory_inputs(make: Callable[[bytes], Any], arr: np.ndarray) -> None:
    data = npy_of(arr, allow_pickle=True)
    assert_identical(load(make(data)), arr)
    archive = npz_bytes({"a.npy": data, "b.npy": X}, zipfile.ZIP_DEFLATED)
    got = read_all(make(archive))
    assert_identical(got["a"], arr)


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "pathlib"])
def test_path_inputs(tmp_path: Path, as_str: bool) -> None:
    npy = tmp_path / "a.npy"
    npy.write_bytes(npy_of(OBJ, allow_pickle=True))
    npz = tmp_path / "a.npz"
    np.savez(npz, a=ARR, b=OBJ)
    assert_identical(load(str(npy) if as_str else npy), OBJ)
    got = read_all(str(npz) if as_str else npz)
    assert_identical(got["a"], ARR)
    assert_identical(got["b"], OBJ)


def test_file_object_is_left_open(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, a=ARR)
    with open(path, "rb") as fp:
        with load(fp) as f:
            assert_identical(f["a"], ARR)
        assert not fp.closed
    with open(path, "rb") as fp:
        f = load(fp)
        f.close()
        assert not fp.closed


def test_npz_closes_the_file_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, a=ARR)
    f = load(path)
    fp = f._fileobj
    assert fp is not None
    assert not fp.closed
    with f:
        assert "a" in f
    assert fp.closed


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_file_object_not_at_the_start(tmp_path: Path, kind: str) -> None:
    payload = (
        npy_of(OBJ, allow_pickle=True) if kind == "npy" else npz_bytes({"a.npy": X})
    )
    path = tmp_path / "blob"
    path.write_bytes(b"HEADER--" + payload)
    with open(path, "rb") as fp:
        fp.seek(8)
        if kind == "npy":
            assert_identical(load(fp), OBJ)
        else:
            assert_identical(read_all(fp)["a"], np.arange(10))


def test_text_mode_file_is_a_type_error(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    path.write_bytes(npy_of(ARR))
    with open(path, encoding="utf-8") as fp, pytest.raises(TypeError, match="binary"):
        load(fp)  # type: ignore[arg-type]


def test_bad_input_types_and_paths(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        load(12345)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npy")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


def test_mmap_mode_on_a_numeric_npy(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.asfortranarray(ARR))
    for mode in ("r", "c"):
        m = load(path, mmap_mode=mode)
        assert isinstance(m, np.memmap)
        assert m.mode == mode
        assert m.flags.f_contiguous
        assert_identical(np.array(m), np.asfortranarray(ARR))
        del m


def test_mmap_mode_on_an_object_array(tmp_path: Path) -> None:
    path = tmp_path / "o.npy"
    np.save(path, OBJ, allow_pickle=True)
    with pytest.raises(ValueError, match="memory-mapped") as info:
        load(path, mmap_mode="r")
    assert not isinstance(info.value, SafenpzError)


def test_bare_pickle_file(tmp_path: Path) -> None:
    data = {"a": [1, 2], "b": np.arange(3)}
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    assert_identical(load(path), data)
    path.write_bytes(pickle.dumps(data, protocol=4)[:-1])
    with pytest.raises(FormatError):
        load(path)


def test_bare_hostile_pickle_file(tmp_path: Path, sentinel: Path) -> None:
    evil = next(c for c in HOSTILE if c.id == "reduce-os.system-p4")
    path = tmp_path / "evil.pkl"
    path.write_bytes(evil.build(str(sentinel)))
    with pytest.raises(UnsafeFileError, match=r"posix\.system"):
        load(path)
    assert not sentinel.exists()


def test_npzfile_mapping_interface() -> None:
    data = npz_bytes({"a.npy": X, "b.npy": npy_of(OBJ, allow_pickle=True)})
    with load(data) as f:
        assert f.files == ["a", "b"]
        assert list(f) == ["a", "b"]
        assert len(f) == 2
        assert "a" in f
        assert "c" not in f
        assert_identical(f["a.npy"], f["a"])
        with pytest.raises(KeyError, match="'c'"):
            f["c"]
        assert "a" in repr(f)


# --------------------------------------------------------------------------
# properties: nothing but SafenpzError, ever


def _drain(result: Any) -> None:
    if isinstance(result, NpzFile):
        with result:
            for name in result.files:
                with contextlib.suppress(SafenpzError):
                    result[name]


def _load_only_safenpz_errors(data: bytes, **kwargs: Any) -> Any:
    try:
        result = load(data, **kwargs)
    except SafenpzError:
        return None
    _drain(result)
    return result


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    _load_only_safenpz_errors(data)


@FUZZ
@given(
    st.sampled_from([(1,), (2,), (3, 1), ()]),
    st.binary(max_size=400),
)
def test_arbitrary_bytes_after_an_object_header(
    shape: tuple[int, ...], body: bytes
) -> None:
    _load_only_safenpz_errors(npy_bytes(b"\x80\x02" + body, shape=shape))
    _load_only_safenpz_errors(npy_bytes(body, shape=shape))


EDITS = byte_edits(100_000)

NPY_SEEDS = [
    npy_of(obj_array([[1, 2], [3], []]), allow_pickle=True),
    npy_bytes(pickle.dumps(obj_array([[1, 2], [300, 70000]]), 2), shape=(2,)),
    npy_bytes(pickle.dumps(obj_array([[1, 2], [3]]), 5), shape=(2,)),
    npy_of(OBJECT_ARRAYS["str-bytes-none"], allow_pickle=True),
    npy_of(OBJECT_ARRAYS["nested-arrays"], allow_pickle=True),
    npy_of(NUMERIC["structured"]),
    npy_of(np.arange(6, dtype=np.int16).reshape(2, 3)),
]
NPZ_SEEDS = [
    npz_bytes({"a.npy": NPY_SEEDS[0], "b.npy": NPY_SEEDS[5]}),
    npz_bytes({"a.npy": NPY_SEEDS[0], "b.npy": NPY_SEEDS[6]}, zipfile.ZIP_DEFLATED),
]


@FUZZ
@given(st.sampled_from(NPY_SEEDS + NPZ_SEEDS), EDITS)
def test_mutated_files(seed: bytes, edits: list[tuple[str, int, int]]) -> None:
    _load_only_safenpz_errors(mutate(seed, edits))


def test_members_can_be_read_from_several_threads(tmp_path: Path) -> None:
    """The members of one NpzFile share a file position; reads are serialised."""
    import concurrent.futures

    arrays: dict[str, Any] = {
        f"a{i}": np.arange(i * 1000, (i + 1) * 1000 + i) for i in range(8)
    }
    path = tmp_path / "many.npz"
    np.savez_compressed(path, **arrays)
    with load(path) as f, concurrent.futures.ThreadPoolExecutor(4) as pool:
        names = list(arrays) * 8
        results = list(pool.map(lambda n: (n, f[n]), names))
    for name, got in results:
        np.testing.assert_array_equal(got, arrays[name])


@pytest.mark.parametrize(
    "obj",
    [5, 2.5, "text", None, [1, 2], (1,), {"a": 1}, 2**70],
    ids=["int", "float", "str", "none", "list", "tuple", "dict", "long"],
)
@pytest.mark.parametrize("protocol", [0, 1, 2, 5], ids=lambda p: f"p{p}")
def test_bare_pickle_files_of_any_protocol(
    obj: object, protocol: int, tmp_path: Path
) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    assert load(path) == obj


def test_numeric_npy_larger_than_max_member_bytes_loads_and_maps(
    tmp_path: Path,
) -> None:
    """A numeric .npy is bounded by its real size; the inflation limit does not
    stop a large file from loading or being memory-mapped (as with NumPy)."""
    arr = np.arange(1000, dtype=np.float64)
    path = tmp_path / "big.npy"
    np.save(path, arr)
    np.testing.assert_array_equal(load(path, max_member_bytes=100), arr)
    mapped = load(path, mmap_mode="r", max_member_bytes=100)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, arr)
    del mapped
