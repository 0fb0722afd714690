"""Converted Keras-style Parquet opens as train/test splits in one call.

Each data tool that users reach for reads ``safenpz convert imdb.npz DST/``
(``DST/train.parquet`` + ``DST/test.parquet``, columns ``x`` and ``y``) as one
dataset of two splits, with the same rows as ``safenpz.load``. A tool that is
not installed is skipped (``make test`` installs DuckDB, Polars and Dask;
Hugging Face ``datasets`` is optional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import safenpz

pytest.importorskip("pyarrow")

N_TRAIN, N_TEST = 7, 5  # different lengths; equal lengths are in test_convert


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("tools")
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x = np.empty(n, dtype=object)
        x[:] = [
            rng.integers(1, 90_000, size=rng.integers(0, 9)).tolist() for _ in range(n)
        ]
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = rng.integers(0, 2, size=n)
    src = tmp / "imdb.npz"
    np.savez_compressed(src, **arrays)  # pickled object arrays, as Keras's file
    dst = tmp / "imdb"
    safenpz.convert(src, f"{dst}/")
    expected = {
        split: {
            "x": arrays[f"x_{split}"].tolist(),
            "y": arrays[f"y_{split}"].tolist(),
        }
        for split in ("train", "test")
    }
    return dst, expected


def test_huggingface_datasets(
    converted: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no hub access and no cache outside tmp_path (read when datasets is imported)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    dst, expected = converted
    ds = datasets.load_dataset(
        "parquet", data_dir=str(dst), cache_dir=str(tmp_path / "hf-cache")
    )
    assert sorted(ds) == ["test", "train"]
    for split, columns in expected.items():
        assert ds[split]["x"] == columns["x"]
        assert ds[split]["y"] == columns["y"]


def test_duckdb(converted: tuple[Path, dict[str, Any]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    dst, expected = converted
    rel = duckdb.sql(
        "SELECT parse_filename(filename, true) AS split, x, y, file_row_number "
        f"FROM read_parquet('{dst}/*.parquet', filename = true, "
        "file_row_number = true) ORDER BY split, file_row_number"
    )
    rows = rel.fetchall()
    for split, columns in expected.items():
        got = [(x, y) for s, x, y, _ in rows if s == split]
        assert got == list(zip(columns["x"], columns["y"], strict=True))


def test_polars(converted: tuple[Path, dict[str, Any]]) -> None:
    pl = pytest.importorskip("polars")
    dst, expected = converted
    df = pl.read_parquet(dst / "*.parquet", include_file_paths="path")
    for split, columns in expected.items():
        part = df.filter(pl.col("path").str.ends_with(f"{split}.parquet"))
        assert part["x"].to_list() == columns["x"]
        assert part["y"].to_list() == columns["y"]


# dask 2026.8 calls reset_index(inplace=...), which pandas 3.1 deprecates
@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The inplace keyword:FutureWarning")
def test_dask(converted: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    dst, expected = converted
    ddf = dd.read_parquet(str(dst))
    assert list(ddf.columns) == ["x", "y"]
    assert ddf.npartitions == 2  # one per split file
    frames = {}
    for i in range(ddf.npartitions):
        part = ddf.get_partition(i).compute()
        frames[len(part)] = part
    for columns in expected.values():
        part = frames[len(columns["y"])]
        assert [list(v) for v in part["x"]] == columns["x"]
        assert part["y"].tolist() == columns["y"]
