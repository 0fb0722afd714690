"""safenpz.convert: legacy pickled files to pickle-free .npz and Parquet."""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safenpz
from hostile import hostile_npy_bytes
from identical import assert_identical
from safenpz import FormatError, UnsafeFileError
from safenpz.cli import main


def legacy_npz(path: Path, rows: list[list[int]], labels: list[int]) -> Path:
    x = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        x[i] = r
    np.savez_compressed(path, x_train=x, y_train=np.array(labels, dtype=np.int64))
    return path


ROWS = [[1, 2, 3], [], [70000], [4, 5]]


def test_npz_round_trip_is_exact(tmp_path: Path) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    (dst,) = safenpz.convert(src, tmp_path / "new.npz")
    with np.load(dst, allow_pickle=False) as f:  # plain NumPy, no pickle
        assert "x_train.values" in f.files
    with safenpz.load(dst) as f:
        assert f["x_train"].tolist() == ROWS
        assert type(f["x_train"][0]) is list
        np.testing.assert_array_equal(f["y_train"], [0, 1, 0, 1])


def test_parquet_single_table_with_list_int32(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    (dst,) = safenpz.convert(src, tmp_path / "new.parquet")
    table = pq.read_table(dst)
    assert table.schema.field("x_train").type == pa.list_(pa.int32())
    assert table.column("x_train").to_pylist() == ROWS
    assert table.column("y_train").to_pylist() == [0, 1, 0, 1]


def keras_style_npz(path: Path, n_train: int, n_test: int) -> Path:
    x = _object_rows([[i, i + 1][: i % 3] for i in range(n_train)])
    xt = _object_rows([[7] * (i % 4) for i in range(n_test)])
    np.savez(
        path,
        x_train=x,
        y_train=np.arange(n_train) % 2,
        x_test=xt,
        y_test=np.arange(n_test) % 2,
    )
    return path


@pytest.mark.parametrize(
    ("n_train", "n_test"), [(2, 3), (4, 4)], ids=["different", "equal-lengths"]
)
def test_keras_splits_become_one_file_each_with_the_same_columns(
    tmp_path: Path, n_train: int, n_test: int
) -> None:
    """Whatever the lengths, x_train/y_train/x_test/y_test are two splits with
    the columns x and y (the layout data tools read as one dataset)."""
    pq = pytest.importorskip("pyarrow.parquet")
    src = keras_style_npz(tmp_path / "imdb.npz", n_train, n_test)
    written = safenpz.convert(src, f"{tmp_path}/imdb/")
    assert written == [
        tmp_path / "imdb" / "train.parquet",
        tmp_path / "imdb/test.parquet",
    ]
    train, test = (pq.read_table(p) for p in written)
    assert train.schema == test.schema
    assert train.column_names == test.column_names == ["x", "y"]
    with safenpz.load(src) as f:
        assert train.column("x").to_pylist() == f["x_train"].tolist()
        assert test.column("x").to_pylist() == f["x_test"].tolist()
        assert test.column("y").to_pylist() == f["y_test"].tolist()


def test_unsafe_split_names_never_become_paths(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "src.npz"
    arrays: dict[str, Any] = {"x_..": np.arange(1), "x_a": np.arange(2)}
    np.savez(src, **arrays)
    out = tmp_path / "deep" / "out"
    written = safenpz.convert(src, out, format="parquet")
    assert sorted(p.name for p in written) == ["group0.parquet", "group1.parquet"]
    assert all(p.parent == out for p in written)
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    assert pq.read_table(out / "group0.parquet").column_names == ["x"]


def test_splits_into_an_existing_file_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    src = keras_style_npz(tmp_path / "imdb.npz", 2, 3)
    dst = tmp_path / "out.parquet"
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError, match=r"out.parquet' is a file.*train, test"):
        safenpz.convert(src, dst)
    assert dst.read_bytes() == b"old"


def test_big_values_use_int64_lists(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    src = legacy_npz(tmp_path / "old.npz", [[2**40], [1]], [0, 1])
    (dst,) = safenpz.convert(src, tmp_path / "new.parquet")
    table = pq.read_table(dst)
    assert table.schema.field("x_train").type == pa.list_(pa.int64())
    assert table.column("x_train").to_pylist() == [[2**40], [1]]


def test_hostile_source_writes_nothing(tmp_path: Path, sentinel: Path) -> None:
    src = tmp_path / "evil.npy"
    src.write_bytes(hostile_npy_bytes(sentinel))
    for dst in (tmp_path / "out.npz", tmp_path / "out.parquet"):
        with pytest.raises(UnsafeFileError, match="system"):
            safenpz.convert(src, dst)
        assert not dst.exists()
    assert not sentinel.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_failed_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    dst = tmp_path / "new.npz"
    dst.write_bytes(b"previous content")

    def boom(*args: object, **kwargs: object) -> None:
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        safenpz.convert(src, dst)
    assert dst.read_bytes() == b"previous content"
    assert sorted(os.listdir(tmp_path)) == ["new.npz", "old.npz"]


def test_bad_format_argument(tmp_path: Path) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="format must be"):
        safenpz.convert(src, tmp_path / "x", format="csv")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6), min_size=1, max_size=8
    )
)
def test_parquet_round_trip_property(rows: list[list[int]]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = legacy_npz(Path(tmp) / "old.npz", rows, list(range(len(rows))))
        (dst,) = safenpz.convert(src, Path(tmp) / "new.parquet")
        assert pq.read_table(dst).column("x_train").to_pylist() == rows


# --------------------------------------------------------------------------
# Parquet columns, errors and group names


def _object_rows(rows: Sequence[Sequence[float]]) -> np.ndarray:
    x = np.empty(len(rows), dtype=object)
    x[:] = rows
    return x


def test_npy_source_becomes_one_column_named_after_the_file(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "rows.npy"
    np.save(src, _object_rows([[1, 2], [], [3]]), allow_pickle=True)
    (npz,) = safenpz.convert(src, tmp_path / "rows.npz")
    with safenpz.load(npz) as f:
        assert f["rows"].tolist() == [[1, 2], [], [3]]
    (parquet,) = safenpz.convert(src, tmp_path / "rows.pq")
    assert pq.read_table(parquet).column("rows").to_pylist() == [[1, 2], [], [3]]


def test_parquet_float_rows_and_2d_arrays(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    src = tmp_path / "old.npz"
    matrix = np.arange(6, dtype=np.float32).reshape(3, 2)
    fortran = np.asfortranarray(np.arange(9, dtype=np.int16).reshape(3, 3))
    rows = _object_rows([[1.5], [], [2.5, -0.0]])
    np.savez(src, rows=rows, matrix=matrix, fortran=fortran)
    (dst,) = safenpz.convert(src, tmp_path / "new.parquet")
    table = pq.read_table(dst)
    assert table.schema.field("rows").type == pa.list_(pa.float64())
    assert table.column("rows").to_pylist() == [[1.5], [], [2.5, -0.0]]
    assert table.schema.field("matrix").type == pa.list_(pa.float32(), 2)
    assert table.column("matrix").to_pylist() == matrix.tolist()
    assert table.schema.field("fortran").type == pa.list_(pa.int16(), 3)
    assert table.column("fortran").to_pylist() == fortran.tolist()  # row order kept


@pytest.mark.parametrize(
    ("column", "match"),
    [
        (
            np.zeros((2, 2, 2)),
            "member 'bad': the column has 3 dimensions; Parquet needs 1 or 2",
        ),
        (np.zeros((2, 1, 1, 1), "i1"), "member 'bad': the column has 4 dimensions"),
        (
            np.array(["a", {"k": 1}], dtype=object),
            "member 'bad': the column is an object array that is not a list of "
            "numeric rows",
        ),
        (
            np.array([["a"], ["b"]], dtype=object),
            "member 'bad': the column is an object array",
        ),
    ],
    ids=["3-d", "4-d", "object-mixed", "object-2-d"],
)
def test_parquet_refuses_unsupported_columns(
    tmp_path: Path, column: np.ndarray, match: str
) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "old.npz"
    np.savez(src, ok=np.arange(2), bad=column)
    dst = tmp_path / "new.parquet"
    with pytest.raises(TypeError, match=match):
        safenpz.convert(src, dst)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["old.npz"]


def test_unsupported_column_in_a_later_group_writes_no_file(tmp_path: Path) -> None:
    """A conversion that fails must not leave some of its groups behind (the
    first group here is fine; the second holds an object column of str)."""
    pytest.importorskip("pyarrow")
    src = tmp_path / "old.npz"
    np.savez(src, x_train=np.arange(2), names=np.array(["a", "b", "c"], dtype=object))
    dst = tmp_path / "out.parquet"
    with pytest.raises(
        TypeError, match="member 'names': the column is an object array"
    ):
        safenpz.convert(src, dst)
    assert not dst.exists() or sorted(dst.iterdir()) == []


@pytest.mark.usefixtures("no_pyarrow")
@pytest.mark.parametrize(
    ("dst", "fmt"),
    [("new.parquet", None), ("new.pq", None), ("new.bin", "parquet")],
    ids=["parquet-suffix", "pq-suffix", "format-argument"],
)
def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, dst: str, fmt: Literal["parquet"] | None
) -> None:
    """Refused before the source is read: nothing is written."""
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    with pytest.raises(ImportError, match=r"pip install 'safenpz\[parquet\]'"):
        safenpz.convert(src, tmp_path / dst, format=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]


@pytest.mark.usefixtures("no_pyarrow")
def test_npz_output_does_not_need_pyarrow(tmp_path: Path) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    (dst,) = safenpz.convert(src, tmp_path / "new.npz")
    with safenpz.load(dst) as f:
        assert f["x_train"].tolist() == ROWS


GROUPS: dict[str, tuple[dict[str, int], list[str]]] = {
    # member name -> length; expected file names
    "one-name-per-group": ({"x": 2, "y": 3}, ["x.parquet", "y.parquet"]),
    "no-common-suffix": (
        {"x_train": 2, "labels": 2, "z": 3},
        ["x_train+labels.parquet", "z.parquet"],
    ),
    "two-suffixes": (
        {"a_one": 2, "b_two": 2, "c": 5},
        ["a_one+b_two.parquet", "c.parquet"],
    ),
    "four-names": (
        {"a": 2, "b": 2, "c": 2, "d": 2, "e_test": 3, "f_test": 3},
        ["group0.parquet", "test.parquet"],
    ),
}


@pytest.mark.parametrize(("members", "names"), list(GROUPS.values()), ids=list(GROUPS))
def test_parquet_group_file_names(
    tmp_path: Path, members: dict[str, int], names: list[str]
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "src.npz"
    arrays: dict[str, Any] = {k: np.arange(n) for k, n in members.items()}
    np.savez(src, **arrays)
    written = safenpz.convert(src, tmp_path / "out", format="parquet")
    assert sorted(p.name for p in written) == names
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    columns = {c for p in written for c in pq.read_table(p).column_names}
    assert columns == set(members)


def test_groups_sharing_a_suffix_get_distinct_files(tmp_path: Path) -> None:
    """Two groups of different lengths whose members end in the same suffix
    must not be written to the same file (the second would replace the first)."""
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "src.npz"
    np.savez(src, a_data=np.arange(2), b_data=np.arange(3))
    written = safenpz.convert(src, tmp_path / "out.parquet")
    assert len(set(written)) == len(written) == 2
    columns = {
        c: pq.read_table(p).column(c).to_pylist()
        for p in written
        for c in pq.read_table(p).column_names
    }
    assert columns == {"a_data": [0, 1], "b_data": [0, 1, 2]}


# --------------------------------------------------------------------------
# integers beyond int64, output formats, file modes


def test_uint64_beyond_int64_is_never_wrapped(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    big = 2**64 - 1
    src = tmp_path / "old.npz"
    arrays = _object_rows([[2**63, 1], [big]])
    rows_u64 = np.empty(2, dtype=object)
    rows_u64[:] = [np.array([big], np.uint64), np.array([0], np.uint64)]
    np.savez(src, a=arrays, b=rows_u64, c=np.array([big, 0], np.uint64))
    (dst,) = safenpz.convert(src, tmp_path / "new.parquet")
    table = pq.read_table(dst)
    assert table.schema.field("a").type == pa.list_(pa.uint64())
    assert table.column("a").to_pylist() == [[2**63, 1], [big]]
    assert table.column("b").to_pylist() == [[big], [0]]
    assert table.column("c").to_pylist() == [big, 0]
    (npz,) = safenpz.convert(src, tmp_path / "new.npz")
    with safenpz.load(npz) as f:
        assert f["a"].tolist() == [[2**63, 1], [big]]
        assert type(f["a"][0][0]) is int


@pytest.mark.parametrize(
    ("rows", "value"),
    [([[2**64], [1]], 2**64), ([[-1, 2**63]], 2**63), ([[-(2**63) - 1]], -(2**63) - 1)],
    ids=["beyond-uint64", "negative-and-beyond-int64", "below-int64"],
)
def test_integers_no_64_bit_type_holds_are_refused_by_parquet(
    tmp_path: Path, rows: list[list[int]], value: int
) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "old.npz"
    np.savez(src, x=_object_rows(rows))
    dst = tmp_path / "new.parquet"
    with pytest.raises(
        FormatError, match=rf"member 'x': the column holds the integer {value}"
    ):
        safenpz.convert(src, dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]


@pytest.mark.parametrize(
    "rows",
    [[[2**64], [1]], [[-1, 2**63]], [[-(2**63) - 1]]],
    ids=["beyond-uint64", "negative-and-beyond-int64", "below-int64"],
)
def test_integers_no_64_bit_type_holds_are_kept_exactly_in_npz(
    tmp_path: Path, rows: list[list[int]]
) -> None:
    """A pickle-free .npz keeps them as Python ints (the "tree" kind)."""
    src = tmp_path / "old.npz"
    np.savez(src, x=_object_rows(rows))
    (dst,) = safenpz.convert(src, tmp_path / "new.npz")
    with safenpz.load(dst) as f:
        assert_identical(f["x"], _object_rows(rows))


@pytest.mark.parametrize("dst", ["out.txt", "out", "out.NPY"])
def test_unknown_output_suffix_writes_nothing(tmp_path: Path, dst: str) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"cannot tell the output format from .*out"):
        safenpz.convert(src, tmp_path / dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]
    (written,) = safenpz.convert(src, tmp_path / dst, format="npz")
    with safenpz.load(written) as f:
        assert f["x_train"].tolist() == ROWS


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_mode_np_savez_gives(tmp_path: Path, umask: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("POSIX permissions")
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    old = os.umask(umask)
    try:
        np.savez(tmp_path / "numpy.npz", a=np.arange(2))
        safenpz.save(tmp_path / "saved.npz", a=np.arange(2))
        safenpz.convert(src, tmp_path / "converted.npz")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for name in ("numpy.npz", "saved.npz", "converted.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name


def test_write_errors_name_the_destination_not_a_temporary_file(
    tmp_path: Path,
) -> None:
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    (tmp_path / "adir.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"adir\.npz' is a directory") as exc:
        safenpz.convert(src, tmp_path / "adir.npz")
    assert ".part" not in str(exc.value)
    with pytest.raises(FileNotFoundError, match="cannot write") as exc2:
        safenpz.convert(src, tmp_path / "missing" / "x.npz")
    assert ".part" not in str(exc2.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.npz", "old.npz"]


def test_one_table_into_a_directory(tmp_path: Path) -> None:
    """``dst/`` (or an existing directory) always means: files inside it."""
    pq = pytest.importorskip("pyarrow.parquet")
    src = legacy_npz(tmp_path / "old.npz", ROWS, [0, 1, 0, 1])
    (written,) = safenpz.convert(src, f"{tmp_path}/out/")
    assert written == tmp_path / "out" / "old.parquet"
    assert pq.read_table(written).column("x_train").to_pylist() == ROWS
    (tmp_path / "existing").mkdir()
    (again,) = safenpz.convert(src, tmp_path / "existing")
    assert again == tmp_path / "existing" / "old.parquet"
    odd = tmp_path / "a b!.npz"
    odd.write_bytes(src.read_bytes())
    (named,) = safenpz.convert(odd, f"{tmp_path}/odd/")
    assert named == tmp_path / "odd" / "data.parquet"  # not a plain word


# --------------------------------------------------------------------------
# issue 8 review: only safenpz errors escape convert, for any column it reads

_DTYPE_GRID = [
    "i1",
    "<u8",
    ">i4",
    "f2",
    "<f8",
    "g",
    "c8",
    "c16",
    "G",
    "?",
    "S3",
    "U3",
    "S0",
    "U0",
    "M8[s]",
    "M8[Y]",
    "m8[ns]",
    "V4",
    [("a", "<i4"), ("b", "<f8")],
    [("a", "<i4", (2,))],
]


@pytest.mark.parametrize("fmt", ["npz", "parquet"])
@pytest.mark.parametrize("shape", [(3,), (3, 2), ()], ids=["1-d", "2-d", "0-d"])
@pytest.mark.parametrize("dtype", _DTYPE_GRID, ids=str)
def test_convert_raises_only_safenpz_errors(
    tmp_path: Path, dtype: Any, shape: tuple[int, ...], fmt: str
) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    src = tmp_path / "old.npz"
    np.savez(src, a=np.zeros(shape, dtype=dtype))
    dst = tmp_path / f"new.{fmt}"
    error: Exception | None = None
    try:
        safenpz.convert(src, dst)
    except Exception as err:  # any class is inspected below
        error = err
    if error is not None:
        assert isinstance(error, safenpz.UnstorableError), repr(error)
        assert isinstance(error, TypeError)
        assert "'a'" in str(error)
        assert not dst.exists()


@pytest.mark.parametrize(
    ("dtype", "words"),
    [
        ([("a", "<i4"), ("b", "<f8")], "ArrowNotImplementedError"),
        ("c16", "ArrowNotImplementedError"),
        ("M8[Y]", "ArrowNotImplementedError"),
        ("V4", "ArrowNotImplementedError"),
    ],
    ids=["structured", "complex", "datetime-years", "void"],
)
def test_pyarrow_refusals_become_unstorable_error(
    tmp_path: Path, dtype: Any, words: str
) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "old.npy"
    np.save(src, np.zeros(3, dtype=dtype))
    dst = tmp_path / "new.parquet"
    with pytest.raises(
        safenpz.UnstorableError, match=f"member 'old': cannot write the column.*{words}"
    ):
        safenpz.convert(src, dst)
    assert not dst.exists()


def test_u0_column_of_2_to_the_62_rows_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    header = f"{{'descr': '<U0', 'fortran_order': False, 'shape': (0, {2**62}), }}"
    header = header.ljust(117) + "\n"
    src = tmp_path / "old.npy"
    src.write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
    )
    with pytest.raises(safenpz.UnstorableError, match="OverflowError"):
        safenpz.convert(src, tmp_path / "new.parquet")


def test_cli_convert_of_an_unstorable_column_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "old.npy"
    np.save(src, np.zeros(3, dtype=[("a", "<i4")]))
    code = main(["convert", str(src), str(tmp_path / "new.parquet")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        "Error: UnstorableError: member 'old': cannot write the column"
    )
    assert "Traceback" not in err


def test_member_names_that_were_savez_keywords_convert(tmp_path: Path) -> None:
    src = tmp_path / "old.npz"
    with zipfile.ZipFile(src, "w") as zf:
        for i, name in enumerate(["file", "compress", "allow_pickle", "args"]):
            with zf.open(f"{name}.npy", "w") as fp:
                np.lib.format.write_array(fp, np.arange(i + 1))
    dst = tmp_path / "new.npz"
    safenpz.convert(src, dst)
    with np.load(dst, allow_pickle=False) as f:
        assert {k: f[k].tolist() for k in f.files} == {
            "file": [0],
            "compress": [0, 1],
            "allow_pickle": [0, 1, 2],
            "args": [0, 1, 2, 3],
        }


@pytest.mark.parametrize("name", ["a/b", "a\\b", "__safenpz__x", ""])
def test_member_names_a_safenpz_file_cannot_hold(tmp_path: Path, name: str) -> None:
    src = tmp_path / "old.npz"
    with zipfile.ZipFile(src, "w") as zf, zf.open(f"{name}.npy", "w") as fp:
        np.lib.format.write_array(fp, np.arange(3))
    dst = tmp_path / "new.npz"
    with pytest.raises(safenpz.UnstorableError, match="is not allowed") as info:
        safenpz.convert(src, dst)
    assert isinstance(info.value, ValueError)  # what save raised before
    assert not dst.exists()


def test_byte_swapped_columns_convert_to_parquet(tmp_path: Path) -> None:
    """pyarrow refuses non-native byte order; the values fit native order."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "old.npz"
    np.savez(src, a=np.arange(3, dtype=">i4"), b=np.ones((3, 2), dtype=">f8"))
    safenpz.convert(src, tmp_path / "new.parquet")
    table = pq.read_table(tmp_path / "new.parquet")
    assert table.column("a").to_pylist() == [0, 1, 2]
    assert table.schema.field("a").type == pa.int32()
    assert table.column("b").to_pylist() == [[1.0, 1.0]] * 3


def test_pyarrow_write_errors_are_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    def refuse(*args: Any, **kwargs: Any) -> None:
        msg = "no writer for this type"
        raise pa.ArrowNotImplementedError(msg)

    monkeypatch.setattr(pq, "write_table", refuse)
    src = tmp_path / "old.npy"
    np.save(src, np.arange(3))
    dst = tmp_path / "new.parquet"
    with pytest.raises(safenpz.UnstorableError, match="no writer for this type"):
        safenpz.convert(src, dst)
    assert not dst.exists()
