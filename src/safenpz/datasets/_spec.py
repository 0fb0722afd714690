"""What the Keras datasets are: files, published hashes, members, and rules.

:data:`KNOWN_HASHES` holds the hashes Keras 3.15.1 checks its downloads
against. A :class:`DatasetSpec` names a dataset's files, the members its
``.npz`` must hold (in Keras's order), and the :class:`Rules` by which each
supported Keras version's ``load_data`` treats it. The differences between
IMDb and Reuters, and between Keras 3.15.1 and Keras 2.2.x, are data here:
the pipeline (:mod:`safenpz.datasets._pipeline`) and the literal reference
(:mod:`safenpz.datasets._reference`) read the same :class:`Rules`, and no
code asks which dataset or version it is running.

=============  ==========  =================  ===========  ============
rules          global_rng  filter_each_split  empty_error  split_at
=============  ==========  =================  ===========  ============
IMDb, Keras 3  no          yes                "either"     "kept_train"
IMDb, 2.2.x    yes         no                 "both"       "source_train"
Reuters, 3     no          no                 "never"      "fraction"
Reuters, 2.2   yes         no                 "never"      "fraction"
=============  ==========  =================  ===========  ============
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "COMPATS",
    "IMDB",
    "KNOWN_HASHES",
    "REUTERS",
    "Compat",
    "DatasetSpec",
    "Rules",
]

#: Published hashes of the files Keras downloads (SPEC, read from Keras 3.15.1).
#: Tests replace entries to serve generated files; the real ones stay the default.
KNOWN_HASHES: Final[dict[str, str]] = {
    "imdb.npz": (
        "sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    ),
    "imdb_word_index.json": "md5:bfafd718b763782e994055a2d397834f",
    "reuters.npz": (
        "sha256:d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    ),
    "reuters_word_index.json": "md5:4d44cc38712099c9e383dc6e5f11a921",
}

Compat: TypeAlias = Literal["keras3", "keras2.2"] | None
#: Every accepted value of ``compat=``.
COMPATS: Final = (None, "keras3", "keras2.2")


@dataclasses.dataclass(frozen=True)
class Rules:
    """How one Keras version's ``load_data`` treats one dataset.

    Attributes
    ----------
    global_rng : bool
        Shuffle with NumPy's global RNG after ``np.random.seed(seed)``
        (Keras 2.2.x, a documented side effect), not with
        ``np.random.RandomState(seed)`` (Keras 3).
    filter_each_split : bool
        Shift, filter by ``maxlen`` and check train and test separately,
        then take the labels from ``np.concatenate`` of the two (Keras 3
        IMDb). Otherwise all rows are shifted and filtered as one sequence,
        and each split's labels are ``np.array`` of their slice (float64
        when a filter left a Python list empty).
    empty_error : {"either", "both", "never"}
        When a ``maxlen`` filter raises Keras's "no sequence was kept"
        error: when it empties either split, only when it empties all rows,
        or never.
    split_at : {"kept_train", "source_train", "fraction"}
        Where train ends in the filtered rows: after the kept training rows,
        after as many rows as the file's training split had (Keras 2.2.x
        IMDb: test rows can move into train), or at
        ``int(len(rows) * (1 - test_split))`` (Reuters).
    """

    global_rng: bool
    filter_each_split: bool
    empty_error: Literal["either", "both", "never"]
    split_at: Literal["kept_train", "source_train", "fraction"]

    def emptied(self, kept: Sequence[int]) -> bool:
        """Whether the rows `kept` per split (after ``maxlen``) are an error."""
        if self.empty_error == "either":
            return not all(kept)
        if self.empty_error == "both":
            return not any(kept)
        return False

    def split_index(
        self, kept: Sequence[int], sizes: Sequence[int], test_split: Any
    ) -> int:
        """Where train ends, given the rows `kept` per split and the file's
        split `sizes`; `test_split` as Keras takes it (any number)."""
        if self.split_at == "kept_train":
            return kept[0]
        if self.split_at == "source_train":
            return sizes[0]
        return int(sum(kept) * (1 - test_split))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a Keras dataset file holds, and how Keras loads it.

    Attributes
    ----------
    name : str
        ``"imdb"`` or ``"reuters"``; also the prefix of the cached names.
    remote : str
        File name at the download origin (``"imdb.npz"``).
    parts : tuple of (str, str)
        ``(x member, y member)`` per part, in Keras's order.
    word_index : str
        File name of the word index at the origin.
    keras3, keras22 : Rules
        Keras 3.15.1's rules and Keras 2.2.x's.
    """

    name: str
    remote: str
    parts: tuple[tuple[str, str], ...]
    word_index: str
    keras3: Rules
    keras22: Rules

    @property
    def members(self) -> tuple[str, ...]:
        """Every member the file must hold."""
        return tuple(m for part in self.parts for m in part)

    def rules(self, compat: Compat) -> Rules:
        """The rules for ``compat=`` (None is Keras 3)."""
        return self.keras22 if compat == "keras2.2" else self.keras3


IMDB: Final = DatasetSpec(
    name="imdb",
    remote="imdb.npz",
    parts=(("x_train", "y_train"), ("x_test", "y_test")),
    word_index="imdb_word_index.json",
    keras3=Rules(
        global_rng=False,
        filter_each_split=True,
        empty_error="either",
        split_at="kept_train",
    ),
    keras22=Rules(
        global_rng=True,
        filter_each_split=False,
        empty_error="both",
        split_at="source_train",
    ),
)

REUTERS: Final = DatasetSpec(
    name="reuters",
    remote="reuters.npz",
    parts=(("x", "y"),),
    word_index="reuters_word_index.json",
    keras3=Rules(
        global_rng=False,
        filter_each_split=False,
        empty_error="never",
        split_at="fraction",
    ),
    keras22=Rules(
        global_rng=True,
        filter_each_split=False,
        empty_error="never",
        split_at="fraction",
    ),
)
