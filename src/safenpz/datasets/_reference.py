"""Keras's ``load_data`` steps, transcribed literally: the reference semantics.

This is what :mod:`safenpz.datasets.imdb` and ``.reuters`` promise to
reproduce (Keras 3.15.1, and Keras 2.2.4 for ``compat="keras2.2"``), written
as Keras writes it: shuffle with :func:`permutations`, ``w + index_from`` with
the start character in front, drop rows not shorter than ``maxlen``, the
vocabulary rule, split. It is the reading aid for the vectorised pipeline
(:mod:`safenpz.datasets._pipeline`), and it is also what runs for arguments
the pipeline cannot mirror exactly (floats, NumPy scalars or bools that would
end up *inside* the rows, rows that are not lists of ints, ...): the same
result in every case, only slower.

The tests check both against the real Keras 3.15.1 loaders
(``tests/test_keras_parity.py``) and against an independent transcription of
Keras 2.2.4 (``tests/test_datasets.py``), which stays in the tests so that
it is not the code it checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from safenpz._ragged import RaggedArray
from safenpz.datasets._spec import Rules

__all__ = [
    "EMPTY_MAX",
    "Params",
    "keras_steps",
    "maxlen_error",
    "permutations",
]

#: Keras's error when the default vocabulary meets an empty row.
EMPTY_MAX: Final = "max() arg is an empty sequence"


@dataclasses.dataclass(frozen=True)
class Params:
    """The arguments of Keras's ``load_data`` that shape the result."""

    num_words: Any = None
    skip_top: Any = 0
    maxlen: Any = None
    seed: Any = 113
    start_char: Any = 1
    oov_char: Any = 2
    index_from: Any = 3
    test_split: Any = 0.2


def maxlen_error(maxlen: object) -> ValueError:
    return ValueError(
        "After filtering for sequences shorter than maxlen="
        f"{maxlen!s}, no sequence was kept. Increase maxlen."
    )


def permutations(
    sizes: Sequence[int], seed: Any, *, global_rng: bool
) -> list[NDArray[np.intp]]:
    """Row orders exactly as Keras draws them (same RNG calls, same order)."""
    if global_rng:
        # Keras 2.2 seeded and drew from NumPy's global RNG; so do we.
        np.random.seed(seed)  # noqa: NPY002 - Keras 2.2's documented side effect
        shuffle = np.random.shuffle
    else:
        shuffle = np.random.RandomState(seed).shuffle
    perms = []
    for n in sizes:
        indices = np.arange(n)
        shuffle(indices)
        perms.append(indices)
    return perms


def _remove_long_seq(
    maxlen: Any, seq: Iterable[Any], label: Iterable[Any]
) -> tuple[list[Any], list[Any]]:
    new_seq, new_label = [], []
    for x, y in zip(seq, label, strict=False):
        if len(x) < maxlen:
            new_seq.append(x)
            new_label.append(y)
    return new_seq, new_label


def _shift(xs: Iterable[Any], p: Params, *, always_copy: bool) -> Any:
    if p.start_char is not None:
        return [[p.start_char] + [w + p.index_from for w in x] for x in xs]
    if p.index_from:
        return [[w + p.index_from for w in x] for x in xs]
    return [[w for w in x] for x in xs] if always_copy else xs  # noqa: C416


def _vocabulary(xs: list[Any], p: Params) -> list[list[Any]]:
    num_words = p.num_words
    if not num_words:
        num_words = max(max(x) for x in xs)
    skip_top, oov_char = p.skip_top, p.oov_char
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def keras_steps(
    rules: Rules, xs: list[Any], ys: list[Any], p: Params
) -> tuple[tuple[list[Any], Any], tuple[list[Any], Any]]:
    """Keras's own steps on object arrays, by `rules` (see :class:`Rules`)."""
    xs = [
        x.to_object_array(keep_1d=True) if isinstance(x, RaggedArray) else x for x in xs
    ]
    sizes = [len(x) for x in xs]
    perms = permutations(sizes, p.seed, global_rng=rules.global_rng)
    xs = [x[perm] for x, perm in zip(xs, perms, strict=True)]
    ys = [y[perm] for y, perm in zip(ys, perms, strict=True)]
    if rules.filter_each_split:
        return _each_split(rules, xs, ys, p)
    flat: Any = xs[0] if len(xs) == 1 else np.concatenate(xs)
    labels: Any = ys[0] if len(ys) == 1 else np.concatenate(ys)
    flat = _shift(flat, p, always_copy=False)
    if p.maxlen:
        flat, labels = _remove_long_seq(p.maxlen, flat, labels)
        if rules.emptied([len(flat)]):
            raise maxlen_error(p.maxlen)
    rows = _vocabulary(flat, p)
    idx = rules.split_index([len(rows)], sizes, p.test_split)
    return (
        (rows[:idx], np.array(labels[:idx])),
        (rows[idx:], np.array(labels[idx:])),
    )


def _each_split(
    rules: Rules, xs: list[Any], ys: list[Any], p: Params
) -> tuple[tuple[list[Any], Any], tuple[list[Any], Any]]:
    """Keras 3 IMDb: shift and filter train and test separately."""
    x_train, x_test = (_shift(x, p, always_copy=True) for x in xs)
    labels_train, labels_test = ys
    if p.maxlen:
        x_train, labels_train = _remove_long_seq(p.maxlen, x_train, labels_train)
        x_test, labels_test = _remove_long_seq(p.maxlen, x_test, labels_test)
        if rules.emptied([len(x_train), len(x_test)]):
            raise maxlen_error(p.maxlen)
    labels = np.concatenate([labels_train, labels_test])
    rows = _vocabulary(x_train + x_test, p)
    idx = rules.split_index([len(x_train), len(x_test)], [], p.test_split)
    return (rows[:idx], labels[:idx]), (rows[idx:], labels[idx:])
