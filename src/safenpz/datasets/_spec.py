"""What the Keras dataset files are: names, published hashes, members.

:data:`KNOWN_HASHES` holds the hashes Keras 3.15.1 checks its downloads
against; :class:`DatasetSpec` says which members a dataset file must hold and
in which order Keras reads them.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal, TypeAlias

__all__ = ["KNOWN_HASHES", "Compat", "DatasetSpec"]

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


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a Keras dataset file holds.

    Attributes
    ----------
    name : str
        ``"imdb"`` or ``"reuters"``; also the prefix of the cached names.
    remote : str
        File name at the download origin (``"imdb.npz"``).
    parts : tuple of (str, str)
        ``(x member, y member)`` per part, in Keras's order.
    """

    name: str
    remote: str
    parts: tuple[tuple[str, str], ...]

    @property
    def members(self) -> tuple[str, ...]:
        """Every member the file must hold."""
        return tuple(m for part in self.parts for m in part)
