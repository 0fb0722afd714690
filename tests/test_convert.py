"""safenpz.convert: legacy pickled files to pickle-free .npz and Parquet."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safenpz
from safenpz import UnsafeFileError
from safenpz._demo import hostile_npy_bytes


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


def test_parquet_splits_of_different_lengths_go_to_one_file_each(
    tmp_path: Path,
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    x = np.empty(2, dtype=object)
    x[:] = [[1], [2, 3]]
    xt = np.empty(3, dtype=object)
    xt[:] = [[4], [], [5]]
    src = tmp_path / "imdb.npz"
    np.savez(src, x_train=x, y_train=np.arange(2), x_test=xt, y_test=np.arange(3))
    written = safenpz.convert(src, tmp_path / "out.parquet")
    assert sorted(p.name for p in written) == ["test.parquet", "train.parquet"]
    test = pq.read_table(tmp_path / "out.parquet" / "test.parquet")
    assert test.column("x_test").to_pylist() == [[4], [], [5]]


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

    monkeypatch.setattr(np, "savez_compressed", boom)
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
