"""safenpz.torch: ragged rows through a default DataLoader (skipped without
torch; ``make test-torch`` installs the CPU wheel)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from safenpz import RaggedArray

torch = pytest.importorskip("torch")
DataLoader = torch.utils.data.DataLoader

from safenpz.torch import BucketBatchSampler, PadCollate, RaggedDataset  # noqa: E402

ROWS = [[1, 2, 3], [], [4], [5, 6, 7, 8, 9], [10, 11]]
LABELS = [0, 1, 1, 0, 1]


def keras_pad(rows: list[list[int]], **kwargs: Any) -> np.ndarray:
    return RaggedArray.from_lists(rows).pad(**kwargs)


def test_dataset_is_a_torch_dataset_view() -> None:
    r = RaggedArray.from_lists(ROWS)
    ds = RaggedDataset(r, LABELS)
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == 5
    row, label = ds[3]
    assert row.tolist() == [5, 6, 7, 8, 9]
    assert int(label) == 0
    assert ds[-1][0].tolist() == [10, 11]
    r.values[0] = 99  # a view: the tensor shares the values
    assert ds[0][0].tolist() == [99, 2, 3]
    assert RaggedDataset(r)[1].tolist() == []
    with pytest.raises(IndexError, match="index 5 is out of range for 5 rows"):
        ds[5]


def test_read_only_values_are_copied_once() -> None:
    values = np.arange(4)
    values.flags.writeable = False
    ds = RaggedDataset(RaggedArray(values, [0, 1, 4]))
    assert ds[1].tolist() == [1, 2, 3]


def test_dataset_errors() -> None:
    with pytest.raises(TypeError, match="rows must be a RaggedArray, not list"):
        RaggedDataset(ROWS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels has 2 entries but rows has 5"):
        RaggedDataset(RaggedArray.from_lists(ROWS), [0, 1])


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_default_dataloader_pads_each_batch_to_its_longest_row(
    padding: Literal["post", "pre"],
) -> None:
    ds = RaggedDataset(RaggedArray.from_lists(ROWS), np.array(LABELS))
    loader = DataLoader(ds, batch_size=2, collate_fn=PadCollate(padding=padding))
    batches = list(loader)
    assert [tuple(x.shape) for x, _, _ in batches] == [(2, 3), (2, 5), (1, 2)]
    for (x, lengths, y), start in zip(batches, (0, 2, 4), strict=True):
        rows = ROWS[start : start + 2]
        expected = keras_pad(rows, padding=padding, dtype="int64")
        assert x.tolist() == expected.tolist()
        assert lengths.tolist() == [len(r) for r in rows]
        assert y.tolist() == LABELS[start : start + 2]
        assert x.dtype == torch.int64


def test_collate_maxlen_truncating_value_dtype() -> None:
    collate = PadCollate(maxlen=2, truncating="post", value=-1, dtype=torch.float32)
    ds = RaggedDataset(RaggedArray.from_lists(ROWS))
    x, lengths = collate([ds[i] for i in range(5)])
    expected = keras_pad(ROWS, maxlen=2, truncating="post", padding="post", value=-1)
    assert x.tolist() == expected.astype(np.float32).tolist()
    assert lengths.tolist() == [2, 0, 1, 2, 2]
    assert x.dtype == torch.float32
    x, _ = PadCollate(maxlen=2)([ds[3]])  # truncating="pre" keeps the end
    assert x.tolist() == [[8, 9]]
    x, lengths = PadCollate()([])
    assert tuple(x.shape) == (0, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"padding": "middle"}, "padding must be 'pre' or 'post'"),
        ({"truncating": "x"}, "truncating must be 'pre' or 'post'"),
        ({"maxlen": -1}, "maxlen must be None or >= 0"),
    ],
)
def test_collate_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PadCollate(**kwargs)


def test_bucket_sampler_batches_rows_of_similar_length() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 500, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=16, bucket_batches=20, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))  # every row exactly once
    padded = sum(len(b) * lengths[b].max() for b in batches)
    plain = sum(
        len(b) * lengths[b].max() for b in np.array_split(rng.permutation(1000), 63)
    )
    assert padded < 1.1 * lengths.sum()  # close to no padding at all
    assert plain > 1.7 * lengths.sum()  # random batches pad a lot
    assert list(sampler) != batches  # a new order each epoch
    again = BucketBatchSampler(lengths, batch_size=16, bucket_batches=20, seed=3)
    assert list(again) == batches  # reproducible from the seed


def test_bucket_sampler_options() -> None:
    s = BucketBatchSampler([5, 1, 4, 2, 3], batch_size=2, shuffle=False)
    assert list(s) == [[1, 3], [4, 2], [0]]
    assert len(s) == 3
    s = BucketBatchSampler([5, 1, 4, 2, 3], batch_size=2, shuffle=False, drop_last=True)
    assert list(s) == [[1, 3], [4, 2]]
    assert len(s) == 2
    s = BucketBatchSampler(np.arange(7), batch_size=2, bucket_batches=1, drop_last=True)
    assert len(list(s)) == len(s) == 3
    with pytest.raises(ValueError, match="batch_size and bucket_batches must be >= 1"):
        BucketBatchSampler([1], batch_size=0)
    with pytest.raises(ValueError, match="lengths must be 1-D"):
        BucketBatchSampler([[1]], batch_size=1)


def test_sampler_in_a_dataloader_with_workers(tmp_path: Path) -> None:
    """Everything is picklable, so worker processes get their own copies."""
    r = RaggedArray.from_lists(ROWS * 4)
    ds = RaggedDataset(r, LABELS * 4)
    sampler = BucketBatchSampler(r.lengths(), batch_size=4, seed=0)
    pickle.loads(pickle.dumps((ds, sampler, PadCollate())))
    loader = DataLoader(
        ds,
        batch_sampler=sampler,
        collate_fn=PadCollate(),
        num_workers=1 if sys.platform == "linux" else 0,
    )
    seen = 0
    for x, lengths, y in loader:
        assert x.shape[1] == int(lengths.max())
        seen += len(y)
    assert seen == 20


def test_imdb_ragged_through_a_dataloader(
    keras_data: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from safenpz.datasets import imdb

    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    (x, y), _ = imdb.load_data(path=str(keras_data.imdb()), output="ragged")
    loader = DataLoader(RaggedDataset(x, y), batch_size=8, collate_fn=PadCollate())
    xb, lengths, yb = next(iter(loader))
    assert xb.shape == (8, int(x.lengths()[:8].max()))
    assert lengths.tolist() == x.lengths()[:8].tolist()
    assert yb.tolist() == y[:8].tolist()
