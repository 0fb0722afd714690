"""Word indices: Keras's ``get_word_index`` files, and ids back to words.

:func:`load_word_index` reads ``<dataset>_word_index.json`` (a bare name is
downloaded and md5-checked like Keras does; a path is a local file), with a
size cap and without recursion errors. :func:`decode_ids` inverts it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from safenpz._exceptions import FormatError, Where
from safenpz._jsonio import parse_json, read_capped_file
from safenpz.datasets._source import fetch_remote, is_local, local_file

__all__ = ["decode_ids", "load_word_index"]

#: Largest word index read (Keras's IMDb index is 1.6 MB).
_MAX_WORD_INDEX_BYTES: Final = 256 * 2**20


def load_word_index(
    path: str | os.PathLike[str], remote: str, *, progress: bool | None = None
) -> dict[str, int]:
    """Return the word -> index dict of a dataset (Keras's ``get_word_index``).

    Parameters
    ----------
    path : str or path-like
        A bare name (download cache, md5-checked like Keras) or a local path.
    remote : str
        File name at the origin, e.g. ``"imdb_word_index.json"``.
    progress : bool, optional
        Progress bar while downloading.

    Returns
    -------
    dict of str to int

    Raises
    ------
    DownloadError, HashMismatchError
        The file could not be downloaded or verified.
    FormatError
        The file is not a JSON object.
    """
    file = local_file(path) if is_local(path) else fetch_remote(path, remote, progress)
    where = Where(source=str(file))
    data = read_capped_file(file, _MAX_WORD_INDEX_BYTES)
    try:
        index = parse_json(data, "the word index")
    except FormatError as err:
        msg = f"not a JSON word index: {err}"
        raise FormatError(msg, where=where) from err
    if not isinstance(index, dict):
        msg = f"it holds a JSON {type(index).__name__}, not a word index"
        raise FormatError(msg, where=where)
    return index


def decode_ids(
    ids: Iterable[Any],
    word_index: Mapping[str, int],
    *,
    index_from: int | None,
    start_char: int | None,
    oov_char: int | None,
    pad_char: int | None,
    start_token: str,
    oov_token: str,
    unknown_token: str,
) -> str:
    """Turn ids back into words the way Keras's ``get_word_index`` example does.

    Word ``w`` with index ``i`` in `word_index` appears as id ``i + index_from``;
    `start_char` and `oov_char` win over a word with the same id; `pad_char`
    ids are skipped; any other id becomes `unknown_token`.
    """
    inverted: dict[int, str] = {i + (index_from or 0): w for w, i in word_index.items()}
    if start_char is not None:
        inverted[start_char] = start_token
    if oov_char is not None:
        inverted[oov_char] = oov_token
    words = []
    flat = ids.tolist() if isinstance(ids, np.ndarray) else ids
    for i in flat:
        if pad_char is not None and i == pad_char and i not in (start_char, oov_char):
            continue
        words.append(inverted.get(i, unknown_token))
    return " ".join(words)
