"""Where a dataset's source file comes from, and how it is verified and decoded.

A bare file name such as Keras's ``"imdb.npz"`` names an entry of the
download cache: it is resolved through :func:`safenpz._fetch.fetch`
(safenpz's cache, Keras's cache, or a download), always checked against the
known hash before anything is decoded. A path with a directory part (or an
absolute one) names a local file, used as it is.

The source hash is never recomputed on a cache hit: for a cache name such as
Keras's ``"imdb.npz"`` it is the known hash (a download is verified against
it before anything is decoded); for a local ``path=`` it is remembered in
``<dataset>-source-<sha256(path)[:16]>.json`` next to the converted copy,
together with the file's size, modification time and inode, and recomputed
when any of those change. Every such record is read with a size cap, only
from a regular file, and parsed without recursion errors
(:mod:`safenpz._jsonio`).

:func:`decode_source` decodes a source file with safenpz's safe reader:
rows as :class:`~safenpz.RaggedArray` where they are lists of Python
numbers, as NumPy would give them otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np

from safenpz import _fetch, _npy
from safenpz._exceptions import DownloadError, FormatError, SafenpzError, Where
from safenpz._jsonio import read_json_file
from safenpz._ragged import RaggedArray
from safenpz._save import atomic_write
from safenpz.datasets._spec import KNOWN_HASHES, DatasetSpec

__all__ = [
    "Members",
    "decode_source",
    "fetch_remote",
    "is_local",
    "is_sha256",
    "known_sha256",
    "local_file",
    "read_record",
    "source_sha256",
    "stat_key",
]

Members: TypeAlias = dict[str, Any]
"""A dataset file's members, as decoded."""


def is_local(path: str | os.PathLike[str]) -> bool:
    """A path with a directory part (or absolute) names a local file; a bare
    file name (Keras's ``"imdb.npz"``) names an entry of the download cache."""
    text = os.fspath(path)
    return (
        os.path.isabs(text)
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.startswith("~")
    )


def known_sha256(remote: str) -> str:
    alg, digest = _fetch.parse_known_hash(KNOWN_HASHES[remote])
    if alg != "sha256":  # pragma: no cover - the table holds sha256 for .npz
        msg = f"the known hash of {remote!r} must be a sha256, not {alg}"
        raise ValueError(msg)
    return digest


def fetch_remote(
    path: str | os.PathLike[str], remote: str, progress: bool | None
) -> Path:
    """Resolve a cache name through :func:`safenpz._fetch.fetch`."""
    return _fetch.fetch(
        _fetch.base_url() + remote,
        fname=os.fspath(path),
        known_hash=KNOWN_HASHES[remote],
        progress=progress,
    )


def local_file(path: str | os.PathLike[str]) -> Path:
    file = Path(os.fspath(path)).expanduser()
    if file.exists() and not file.is_file() and not file.is_dir():
        msg = "not a regular file (a device, FIFO or socket); refusing to read it"
        raise FormatError(msg, where=Where(source=str(file)))
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        msg = (
            f"{str(file)!r} {what}. Pass the path of a Keras-format .npz, or "
            "a bare file name such as 'imdb.npz' to use the download cache."
        )
        raise FileNotFoundError(msg)
    return file


# -- the remembered hash of a local source ------------------------------------


def stat_key(file: Path) -> dict[str, Any]:
    """What changes whenever a file's content may have changed: size, times
    (``ctime`` cannot be set back by a user, unlike ``mtime``), inode."""
    st = file.stat()
    return {
        "path": str(file.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


#: Largest sidecar record read (they are a few hundred bytes).
_MAX_RECORD_BYTES: Final = 64 * 1024


def read_record(path: Path) -> dict[str, Any] | None:
    """A sidecar record, or None when it is missing or unusable: read with a
    size cap, from a regular file only (never a device or FIFO), parsed
    without recursion errors."""
    try:
        record = read_json_file(path, _MAX_RECORD_BYTES, "the cache record")
    except (OSError, SafenpzError):
        return None
    return record if isinstance(record, dict) else None


def is_sha256(text: object) -> bool:
    return (
        isinstance(text, str)
        and len(text) == 64
        and all(c in "0123456789abcdef" for c in text)
    )


def _sidecar(spec: DatasetSpec, file: Path) -> Path:
    name = hashlib.sha256(str(file.resolve()).encode("utf-8", "surrogatepass"))
    return _fetch.cache_dir() / f"{spec.name}-source-{name.hexdigest()[:16]}.json"


def source_sha256(spec: DatasetSpec, file: Path) -> str:
    """sha256 of a local file, remembered across calls (see module docstring)."""
    key = stat_key(file)
    sidecar: Path | None = None
    with contextlib.suppress(DownloadError, OSError):
        sidecar = _sidecar(spec, file)
        record = read_record(sidecar)
        if record is not None:
            digest = record.get("sha256")
            if is_sha256(digest) and {k: record.get(k) for k in key} == key:
                return str(digest)
    digest = _fetch.file_hash(file, "sha256")
    if sidecar is not None:
        # Best effort: without it the next load hashes the file again.
        with contextlib.suppress(OSError, ValueError), atomic_write(sidecar) as fp:
            fp.write(json.dumps({**key, "sha256": digest}).encode("utf-8"))
    return digest


#: dtypes a RaggedArray gets from rows of Python ints, floats or bools. Any
#: other dtype means the rows were NumPy arrays, whose elements Keras keeps as
#: NumPy scalars: such members are read again as they are.
_PYTHON_ROW_DTYPES: Final = frozenset(
    np.dtype(t) for t in (np.int64, np.float64, np.bool_)
)


def decode_source(spec: DatasetSpec, file: Path) -> Members:
    """Decode a Keras-format source file with safenpz's safe reader."""
    with _npy.load(file, ragged=True) as npz:
        missing = [m for m in spec.members if m not in npz]
        if missing:
            msg = (
                f"not a Keras {spec.name} file: it has no member "
                f"{missing[0]!r} (it holds {npz.files}); Keras's "
                f"{spec.remote} holds {list(spec.members)}"
            )
            raise FormatError(msg, where=Where(source=str(file)))
        members = {m: npz[m] for m in spec.members}
    for name in members:
        value = members[name]
        if isinstance(value, RaggedArray) and value.dtype not in _PYTHON_ROW_DTYPES:
            with _npy.load(file) as npz:
                members[name] = npz[name]
    return members
