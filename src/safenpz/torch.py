"""PyTorch data loading for ragged rows: a Dataset, a padding collate, a sampler.

A RaggedArray (e.g. ``imdb.load_data(output="ragged")``'s reviews) does not go
through a default ``DataLoader``: its rows have different lengths, so
``default_collate`` cannot stack them. This module supplies the three pieces
that make it work, importing torch only when it is imported itself (torch is
an optional extra: install the CPU or CUDA wheel you want first)::

    from torch.utils.data import DataLoader
    from safenpz.datasets import imdb
    from safenpz.torch import BucketBatchSampler, PadCollate, RaggedDataset

    (x_train, y_train), _ = imdb.load_data(num_words=10000, output="ragged")
    ds = RaggedDataset(x_train, y_train)                   # (row, label) pairs
    loader = DataLoader(ds, batch_size=32, shuffle=True, collate_fn=PadCollate())
    for x, lengths, y in loader: ...                       # x: (32, longest row)

    # rows of similar length in each batch: little padding
    sampler = BucketBatchSampler(x_train.lengths(), batch_size=32, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=PadCollate())

* :class:`RaggedDataset` is a view: row ``i`` is a tensor sharing memory with
  the RaggedArray's values (copied once when they are read-only).
* :class:`PadCollate` pads each batch to *its* longest row (or `maxlen`),
  ``padding="post"`` by default (the PyTorch convention; ``"pre"`` is Keras's),
  and returns ``(x, lengths, y)``: with ``lengths`` a model can pack or mask.
* :class:`BucketBatchSampler` shuffles, then sorts each window of
  ``batch_size * bucket_batches`` rows by length and cuts it into batches,
  whose order is shuffled again ("sortish" bucketing).

All three are plain picklable objects, so ``DataLoader(num_workers=...)``
works.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from ._ragged import RaggedArray

try:
    import torch
    from torch.utils.data import Dataset, Sampler
except ImportError as err:  # pragma: no cover - exercised without torch only
    msg = (
        "safenpz.torch needs PyTorch: install the CPU or CUDA wheel you want "
        "(see https://pytorch.org), or pip install 'safenpz[torch]'"
    )
    raise ImportError(msg) from err

__all__ = ["BucketBatchSampler", "PadCollate", "RaggedDataset"]


class RaggedDataset(Dataset):  # type: ignore[misc]  # torch is untyped to mypy here
    """A ``torch.utils.data.Dataset`` view over a RaggedArray (and labels).

    Parameters
    ----------
    rows : RaggedArray
        Item ``i`` is row ``i`` as a 1-D tensor. The tensor shares memory
        with ``rows.values`` (which are copied once, at construction, when
        they are read-only or not contiguous: torch shares only writable,
        contiguous memory).
    labels : array_like, optional
        One label per row; item ``i`` is then ``(row, label)``, with the label
        as a 0-d tensor (or a tensor of the label's shape).

    Raises
    ------
    TypeError
        `rows` is not a RaggedArray.
    ValueError
        `labels` has a different length than `rows`.
    """

    def __init__(self, rows: RaggedArray, labels: Any = None) -> None:
        if not isinstance(rows, RaggedArray):
            msg = (
                f"rows must be a RaggedArray, not {type(rows).__name__}; use "
                "RaggedArray.from_lists(...) or load_data(output='ragged')"
            )
            raise TypeError(msg)
        values = rows.values
        if not (values.flags.writeable and values.flags.c_contiguous):
            values = values.copy()
        self._values = torch.from_numpy(values)
        self._offsets = rows.offsets.tolist()  # Python ints: fast indexing
        self._labels = None
        if labels is not None:
            labels = np.asarray(labels)
            if len(labels) != len(rows):
                msg = (
                    f"labels has {len(labels)} entries but rows has {len(rows)}; "
                    "give one label per row"
                )
                raise ValueError(msg)
            if not (labels.flags.writeable and labels.flags.c_contiguous):
                labels = labels.copy()
            self._labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            msg = f"index {index} is out of range for {n} rows"
            raise IndexError(msg)
        i %= n
        row = self._values[self._offsets[i] : self._offsets[i + 1]]
        if self._labels is None:
            return row
        return row, self._labels[i]


class PadCollate:
    """A ``collate_fn`` that pads each batch to its longest row.

    Parameters
    ----------
    padding : {"post", "pre"}
        Where the padding goes (``"post"``: after the row, PyTorch's usual
        choice; ``"pre"``: before it, as ``keras.utils.pad_sequences``).
    value : int or float
        The padding value.
    maxlen : int, optional
        Cut rows longer than this (the batch width is then at most `maxlen`).
    truncating : {"pre", "post"}
        Which end of a long row is cut (as Keras: ``"pre"`` keeps the end).
    dtype : torch.dtype, optional
        dtype of the padded batch; default: the rows' dtype.

    Returns
    -------
    callable
        Called by the DataLoader with a list of items: rows give
        ``(x, lengths)``; ``(row, label)`` pairs give ``(x, lengths, y)``.
        ``x`` is ``(batch, width)``, ``lengths`` the int64 lengths after
        truncation, ``y`` the stacked labels.
    """

    def __init__(
        self,
        *,
        padding: Literal["post", "pre"] = "post",
        value: float = 0,
        maxlen: int | None = None,
        truncating: Literal["pre", "post"] = "pre",
        dtype: Any = None,
    ) -> None:
        for name, given in (("padding", padding), ("truncating", truncating)):
            if given not in ("pre", "post"):
                msg = f"{name} must be 'pre' or 'post', not {given!r}"
                raise ValueError(msg)
        if maxlen is not None and maxlen < 0:
            msg = f"maxlen must be None or >= 0, not {maxlen}"
            raise ValueError(msg)
        self.padding = padding
        self.value = value
        self.maxlen = maxlen
        self.truncating = truncating
        self.dtype = dtype

    def __call__(self, batch: Sequence[Any]) -> tuple[Any, ...]:
        pairs = bool(batch) and isinstance(batch[0], tuple | list)
        rows = [item[0] for item in batch] if pairs else list(batch)
        if self.maxlen is not None:
            keep = self.maxlen
            rows = [
                r
                if len(r) <= keep
                else (r[len(r) - keep :] if self.truncating == "pre" else r[:keep])
                for r in rows
            ]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        width = int(lengths.max()) if len(rows) else 0
        dtype = self.dtype
        if dtype is None:
            dtype = rows[0].dtype if rows else torch.int64
        x = torch.full((len(rows), width), self.value, dtype=dtype)
        for i, r in enumerate(rows):
            n = len(r)
            if n == 0:
                continue
            if self.padding == "post":
                x[i, :n] = r
            else:
                x[i, width - n :] = r
        if not pairs:
            return x, lengths
        labels = [item[1] for item in batch]
        y = torch.stack([torch.as_tensor(label) for label in labels])
        return x, lengths, y


class BucketBatchSampler(Sampler):  # type: ignore[misc]  # torch is untyped to mypy here
    """Batches of rows of similar length, in random order ("sortish").

    Parameters
    ----------
    lengths : array_like of int
        The row lengths (``RaggedArray.lengths()``).
    batch_size : int
        Rows per batch.
    bucket_batches : int
        Sort windows of ``batch_size * bucket_batches`` shuffled rows by
        length; larger windows pad less but are less random. 1 gives plain
        random batches.
    shuffle : bool
        Shuffle rows and batch order each epoch; False gives the rows in
        length order within each window, batches in order.
    drop_last : bool
        Drop each window's last batch when it is smaller than `batch_size`.
    seed : int, optional
        Seed of the sampler's own generator (epochs still differ).

    Examples
    --------
    >>> from safenpz.torch import BucketBatchSampler
    >>> list(BucketBatchSampler([5, 1, 4, 2], batch_size=2, shuffle=False))
    [[1, 3], [2, 0]]
    """

    def __init__(
        self,
        lengths: Any,
        batch_size: int,
        *,
        bucket_batches: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1:
            msg = f"lengths must be 1-D, got shape {self.lengths.shape}"
            raise ValueError(msg)
        if batch_size < 1 or bucket_batches < 1:
            msg = (
                "batch_size and bucket_batches must be >= 1, got "
                f"{batch_size} and {bucket_batches}"
            )
            raise ValueError(msg)
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        window = self.batch_size * self.bucket_batches
        batches: list[list[int]] = []
        for start in range(0, n, window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            for b in range(0, len(chunk), self.batch_size):
                batch = chunk[b : b + self.batch_size]
                if self.drop_last and len(batch) < self.batch_size:
                    continue
                batches.append(batch.tolist())
        if self.shuffle:
            batches = [batches[i] for i in self.rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        window = self.batch_size * self.bucket_batches
        full, rest = divmod(n, window)
        per_window = self.bucket_batches
        if self.drop_last:
            return full * per_window + rest // self.batch_size
        return full * per_window + -(-rest // self.batch_size)
