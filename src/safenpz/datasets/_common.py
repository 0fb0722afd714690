"""Machinery shared by :mod:`safenpz.datasets.imdb` and ``.reuters``.

Three jobs, kept apart:

Files
    :func:`load_members` finds the source ``.npz`` (download, safenpz's cache,
    Keras's cache, or a local path), decodes it with safenpz's safe reader and
    keeps a pickle-free *converted copy* in the cache directory, so a second
    load never decodes a pickle again.
The Keras pipeline
    :func:`run_pipeline` reproduces ``keras.datasets.{imdb,reuters}.load_data``
    (Keras 3.15.1, or Keras 2.2.x with ``compat="keras2.2"``) on
    :class:`~safenpz.RaggedArray` values + offsets, vectorised, and builds
    Python lists only at the very end. Arguments of unusual types (floats,
    NumPy scalars that would end up *inside* the rows, ...) take a literal
    transcription of the Keras code instead, so the result is the same in
    every case, only slower.
Word indices
    :func:`load_word_index` and :func:`decode_ids`.

The converted cache
-------------------
``<cache_dir>/<dataset>-<sha256[:16]>.safenpz.npz``, where the sha256 is the
*source file's*: an ordinary uncompressed ``.npz`` written by
:func:`safenpz.save` (atomically), in the fast layout of :class:`Part`: each
split's rows as ``values`` + ``offsets`` (``int32`` when every id fits),
stored in the order Keras's default seed (113) shuffles them and each led by
a slot that will hold the start character, so the default load maps the
values in one pass with no gather; plus a member ``safenpz_dataset``, a JSON
record naming the dataset, the layout, the full source sha256 and the shape
of every member. A copy is used only if it opens cleanly (zip structure and
CRC-32 of every member checked), has exactly the expected members, its record
matches, every offsets array is valid, every row has its slot, and rows and
labels agree; otherwise it is deleted and rebuilt from the source.

Trust: a copy is served only if safenpz vouched for it.
``<dataset>-<sha256[:16]>.safenpz.sha256.json`` is written right after the
copy, from data decoded out of a source whose sha256 was verified; it records
the source sha256, the copy's own sha256 and its stat key (size, mtime,
ctime, inode, device). A copy is served when that record names the verified
source and the copy still has the recorded stat key (ctime cannot be set back
by a user, so any change to the file shows), or else when its sha256 equals
the recorded one. A copy planted without its record, or changed after
it, is rebuilt from the source. Whoever can write the cache directory can
forge both, so the cache directory must be writable only by its user; even
then a forged copy can give wrong data, never run code (it is pickle-free and
read by the safe reader). Every record is read with a size cap, only from a
regular file, and parsed without recursion errors (:mod:`safenpz._jsonio`).

The source hash is never recomputed on a cache hit: for a cache name such as
Keras's ``"imdb.npz"`` it is the known hash (a download is verified against
it before anything is decoded); for a local ``path=`` it is remembered in
``<dataset>-source-<sha256(path)[:16]>.json`` next to the converted copy,
together with the file's size, modification time and inode, and recomputed
when any of those change. If the cache directory is not writable the data is
still returned; it is just not cached. Two processes may load at once: each
writes its own temporary file and renames it into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import numpy as np
from numpy.typing import DTypeLike, NDArray

from safenpz import _fetch, _npy
from safenpz._exceptions import DownloadError, FormatError, SafenpzError
from safenpz._gc import no_gc
from safenpz._jsonio import parse_json, read_capped_file, read_json_file
from safenpz._preview import preview
from safenpz._ragged import RaggedArray
from safenpz._save import atomic_write, save

__all__ = [
    "KNOWN_HASHES",
    "OUTPUTS",
    "Compat",
    "DatasetSpec",
    "Output",
    "PadOptions",
    "Params",
    "converted_path",
    "decode_ids",
    "load_members",
    "load_word_index",
    "run_pipeline",
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

Output: TypeAlias = Literal["lists", "ragged", "padded"]
Compat: TypeAlias = Literal["keras3", "keras2.2"] | None
OUTPUTS: Final = ("lists", "ragged", "padded")
_COMPATS: Final = (None, "keras3", "keras2.2")

_META: Final = "safenpz_dataset"
_META_FORMAT: Final = "safenpz-dataset"
_META_VERSION: Final = 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INT32: Final = np.iinfo(np.int32)
#: Values are small enough to add index_from to without ever overflowing int64.
_SAFE_INT: Final = 2**62
#: Largest id for which the id -> result lookup table is used (32 MiB of int64).
_TABLE_MAX: Final = 1 << 22
_EMPTY_MAX: Final = "max() arg is an empty sequence"
#: maxlen types compared with the row lengths exactly as Python compares them.
_MAXLEN_TYPES: Final = (int, float, np.integer, np.floating)


# ---------------------------------------------------------------------------
# datasets and their files


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


def _is_local(path: str | os.PathLike[str]) -> bool:
    """A path with a directory part (or absolute) names a local file; a bare
    file name (Keras's ``"imdb.npz"``) names an entry of the download cache."""
    text = os.fspath(path)
    return (
        os.path.isabs(text)
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.startswith("~")
    )


def _known_sha256(remote: str) -> str:
    alg, digest = _fetch.parse_known_hash(KNOWN_HASHES[remote])
    if alg != "sha256":  # pragma: no cover - the table holds sha256 for .npz
        msg = f"the known hash of {remote!r} must be a sha256, not {alg}"
        raise ValueError(msg)
    return digest


def _fetch_remote(
    path: str | os.PathLike[str], remote: str, progress: bool | None
) -> Path:
    """Resolve a cache name through :func:`safenpz._fetch.fetch`."""
    return _fetch.fetch(
        _fetch.base_url() + remote,
        fname=os.fspath(path),
        known_hash=KNOWN_HASHES[remote],
        progress=progress,
    )


def _local_file(path: str | os.PathLike[str]) -> Path:
    file = Path(os.fspath(path)).expanduser()
    if file.exists() and not file.is_file() and not file.is_dir():
        msg = (
            f"{preview(str(file))} is not a regular file (a device, FIFO or "
            "socket); refusing to read it"
        )
        raise FormatError(msg)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        msg = (
            f"{str(file)!r} {what}. Pass the path of a Keras-format .npz, or "
            "a bare file name such as 'imdb.npz' to use the download cache."
        )
        raise FileNotFoundError(msg)
    return file


def converted_path(spec: DatasetSpec, sha256: str) -> Path:
    """Return where the converted copy of a source with this sha256 lives.

    Parameters
    ----------
    spec : DatasetSpec
    sha256 : str
        Hex digest of the *source* file.

    Returns
    -------
    pathlib.Path
        ``<cache_dir>/<dataset>-<sha256[:16]>.safenpz.npz``.

    Raises
    ------
    DownloadError
        If the cache directory cannot be created.
    """
    return _fetch.cache_dir() / f"{spec.name}-{sha256[:16]}.safenpz.npz"


# -- the remembered hash of a local source ------------------------------------


def _stat_key(file: Path) -> dict[str, Any]:
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
#: Largest word index read (Keras's IMDb index is 1.6 MB).
_MAX_WORD_INDEX_BYTES: Final = 256 * 2**20


def _read_record(path: Path) -> dict[str, Any] | None:
    """A sidecar record, or None when it is missing or unusable: read with a
    size cap, from a regular file only (never a device or FIFO), parsed
    without recursion errors."""
    try:
        record = read_json_file(path, _MAX_RECORD_BYTES, "a cache record")
    except (OSError, SafenpzError):
        return None
    return record if isinstance(record, dict) else None


def _is_sha256(text: object) -> bool:
    return (
        isinstance(text, str)
        and len(text) == 64
        and all(c in "0123456789abcdef" for c in text)
    )


def _sidecar(spec: DatasetSpec, file: Path) -> Path:
    name = hashlib.sha256(str(file.resolve()).encode("utf-8", "surrogatepass"))
    return _fetch.cache_dir() / f"{spec.name}-source-{name.hexdigest()[:16]}.json"


def _source_sha256(spec: DatasetSpec, file: Path) -> str:
    """sha256 of a local file, remembered across calls (see module docstring)."""
    key = _stat_key(file)
    sidecar: Path | None = None
    with contextlib.suppress(DownloadError, OSError):
        sidecar = _sidecar(spec, file)
        record = _read_record(sidecar)
        if record is not None:
            digest = record.get("sha256")
            if _is_sha256(digest) and {k: record.get(k) for k in key} == key:
                return str(digest)
    digest = _fetch.file_hash(file, "sha256")
    if sidecar is not None:
        # Best effort: without it the next load hashes the file again.
        with contextlib.suppress(OSError, ValueError), atomic_write(sidecar) as fp:
            fp.write(json.dumps({**key, "sha256": digest}).encode("utf-8"))
    return digest


# -- the fast layout and the converted copy ------------------------------------

Members: TypeAlias = dict[str, Any]


@dataclasses.dataclass
class Part:
    """One split of a dataset (IMDb train or test, all of Reuters), laid out
    for fast loading.

    Attributes
    ----------
    rows : RaggedArray
        Row ``k`` is a leading *slot* followed by source row ``order[k]``,
        where ``order`` is Keras's shuffle for seed 113 (:func:`_orders`) and
        the slot holds the smallest value of the dataset (0 if it has none),
        so it never changes a maximum. Every row has at least the slot.
    labels : ndarray
        ``y[order]``.
    low, high : int or float
        Smallest and largest value of ``rows.values`` (slots included).
    where : ndarray of intp or None
        The inverse of ``order`` (the stored row of source row ``r``);
        computed only when needed, see :func:`_fill_where`.
    """

    rows: RaggedArray
    labels: NDArray[Any]
    low: Any
    high: Any
    where: NDArray[np.intp] | None = None


#: Rows are stored in the order Keras's default seed draws them, so that the
#: default load reads them straight through.
_STORED_SEED: Final = 113
_LAYOUT: Final = "keras-seed-113-order, leading slot"


def _orders(sizes: Sequence[int]) -> list[NDArray[np.intp]]:
    return _permutations(sizes, _STORED_SEED, global_rng=False)


def _inverse(order: NDArray[np.intp]) -> NDArray[np.intp]:
    where = np.empty_like(order)
    where[order] = np.arange(len(order), dtype=order.dtype)
    return where


def _offsets(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _gather(
    x: RaggedArray,
    rows: NDArray[np.intp],
    *,
    slot: Any = None,
    dtype: np.dtype[Any] | None = None,
) -> RaggedArray:
    """Rows of `x` in the order `rows`, each led by `slot` unless it is None,
    with values of `dtype` (which must hold them all; default: unchanged).

    One ``np.concatenate`` of row views: no per-value index arithmetic.
    """
    values = x.values
    dtype = values.dtype if dtype is None else dtype
    bounds = x.offsets.tolist()
    pieces: list[NDArray[Any]] = []
    if slot is None:
        pieces = [values[bounds[r] : bounds[r + 1]] for r in rows.tolist()]
    else:
        lead = np.full(1, slot, dtype=values.dtype)
        for r in rows.tolist():
            pieces.append(lead)
            pieces.append(values[bounds[r] : bounds[r + 1]])
    lengths = x.lengths()[rows] + (slot is not None)
    if pieces:
        gathered = np.concatenate(pieces, dtype=dtype, casting="unsafe")
    else:
        gathered = np.zeros(0, dtype=dtype)
    return RaggedArray(gathered, _offsets(lengths), validate=False)


def _unslot(rows: RaggedArray) -> RaggedArray:
    """`rows` without their leading slots."""
    keep = np.ones(len(rows.values), dtype=np.bool_)
    keep[rows.starts] = False
    offsets = rows.offsets - np.arange(len(rows) + 1, dtype=np.int64)
    return RaggedArray(rows.values[keep], offsets, validate=False)


def _storage_dtype(xs: Sequence[RaggedArray]) -> tuple[np.dtype[Any], Any, Any]:
    """dtype to store the values in (int32 when every id fits), and their range."""
    present = [x.values for x in xs if x.values.size]
    dtype = xs[0].dtype
    if not present:
        return dtype, dtype.type(0), dtype.type(0)
    low = min(v.min() for v in present)
    high = max(v.max() for v in present)
    if dtype.kind in "iu" and _INT32.min <= int(low) and int(high) <= _INT32.max:
        dtype = np.dtype(np.int32)
    return dtype, low, high


def _lay_out(spec: DatasetSpec, members: Members) -> list[Part] | None:
    """The fast layout of decoded members, or None if they do not fit it
    (rows that are not numeric lists, labels that are not numeric arrays)."""
    xs, ys = [], []
    for x_name, y_name in spec.parts:
        x, y = members[x_name], members[y_name]
        if not isinstance(x, RaggedArray) or x.dtype.kind not in "biuf":
            return None
        if not isinstance(y, np.ndarray) or y.dtype.kind not in "biuf" or not y.ndim:
            return None
        xs.append(x)
        ys.append(y)
    if len({x.dtype for x in xs}) != 1:
        return None  # e.g. int rows in one split, float rows in the other
    dtype, low, high = _storage_dtype(xs)
    parts = []
    for x, y, order in zip(xs, ys, _orders([len(x) for x in xs]), strict=True):
        rows = _gather(x, order, slot=low, dtype=dtype)
        # y[order] raises IndexError for short labels, as Keras's shuffle does.
        parts.append(Part(rows, y[order], low, high, _inverse(order)))
    return parts


def _fill_where(parts: Sequence[Part]) -> None:
    """Compute the inverse of the stored order of every part, if missing."""
    if any(part.where is None for part in parts):
        orders = _orders([len(part.rows) for part in parts])
        for part, order in zip(parts, orders, strict=True):
            part.where = _inverse(order)


def _source_order(
    parts: Sequence[Part],
) -> tuple[list[RaggedArray], list[NDArray[Any]]]:
    """The members as decoded, back from the fast layout."""
    _fill_where(parts)
    wheres = [part.where for part in parts if part.where is not None]
    xs = [_unslot(part.rows).take(w) for part, w in zip(parts, wheres, strict=True)]
    ys = [part.labels[w] for part, w in zip(parts, wheres, strict=True)]
    return xs, ys


def _describe(value: Any) -> dict[str, Any]:
    if isinstance(value, RaggedArray):
        return {
            "rows": len(value),
            "values": len(value.values),
            "dtype": value.dtype.str,
        }
    return {"shape": list(value.shape), "dtype": value.dtype.str}


def _record(
    spec: DatasetSpec, sha256: str, arrays: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "format": _META_FORMAT,
        "version": _META_VERSION,
        "dataset": spec.name,
        "layout": _LAYOUT,
        "source_sha256": sha256,
        "members": {k: _describe(v) for k, v in arrays.items()},
    }


def _digest_path(target: Path) -> Path:
    """The sidecar that vouches for a converted copy."""
    return target.with_name(target.name[: -len(".npz")] + ".sha256.json")


def _write_digest(target: Path, source_sha256: str, copy_sha256: str) -> None:
    record = {
        "format": "safenpz-converted-copy",
        "version": 1,
        "source_sha256": source_sha256,
        "copy_sha256": copy_sha256,
        "stat": _stat_key(target),
    }
    with atomic_write(_digest_path(target)) as fp:
        fp.write(json.dumps(record, sort_keys=True).encode("utf-8"))


def _vouched_for(target: Path, source_sha256: str) -> bool:
    """Whether the converted copy is the one safenpz wrote from the verified
    source: its sidecar names that source, and the copy still has the stat
    key recorded right after it was written, or else the recorded sha256."""
    record = _read_record(_digest_path(target))
    if (
        record is None
        or record.get("format") != "safenpz-converted-copy"
        or record.get("source_sha256") != source_sha256
        or not _is_sha256(record.get("copy_sha256"))
    ):
        return False
    if record.get("stat") == _stat_key(target):
        return True
    # copied, restored from a backup, touched: the content decides
    if _fetch.file_hash(target, "sha256") != record["copy_sha256"]:
        return False
    with contextlib.suppress(OSError):  # best effort: next time is fast again
        _write_digest(target, source_sha256, str(record["copy_sha256"]))
    return True


def _write_converted(
    target: Path, spec: DatasetSpec, sha256: str, parts: list[Part]
) -> None:
    arrays: dict[str, Any] = {}
    for (x_name, y_name), part in zip(spec.parts, parts, strict=True):
        arrays[x_name] = part.rows
        arrays[y_name] = part.labels
    record = json.dumps(_record(spec, sha256, arrays), sort_keys=True)
    save(target, compress=False, **arrays, **{_META: np.array(record)})
    # only now, from data decoded out of the verified source, is the copy
    # vouched for
    _write_digest(target, sha256, _fetch.file_hash(target, "sha256"))


def _read_converted(target: Path, spec: DatasetSpec, sha256: str) -> list[Part]:
    """Open and check a converted copy; any problem raises an exception."""
    with _npy.load(target) as npz:
        expected = {*spec.members, _META}
        if set(npz.files) != expected:
            msg = f"holds {sorted(npz.files)}, expected {sorted(expected)}"
            raise FormatError(msg)
        raw = npz[_META]
        if not (
            isinstance(raw, np.ndarray) and raw.shape == () and raw.dtype.kind == "U"
        ):
            msg = "its record is not a JSON string"
            raise FormatError(msg)
        record = parse_json(str(raw[()]), "its record")
        arrays = {m: npz[m] for m in spec.members}
    if record != _record(spec, sha256, arrays):
        msg = "its record does not match its content or its source"
        raise FormatError(msg)
    xs = [arrays[x] for x, _ in spec.parts]
    ys = [arrays[y] for _, y in spec.parts]
    if not all(isinstance(x, RaggedArray) for x in xs) or not all(
        isinstance(y, np.ndarray) and y.ndim and len(y) == len(x)
        for x, y in zip(xs, ys, strict=True)
    ):
        msg = "its rows and labels do not fit together"
        raise FormatError(msg)
    present = [x.values for x in xs if x.values.size]
    low = min(v.min() for v in present) if present else 0
    parts = []
    for x, y in zip(xs, ys, strict=True):
        if len(x) and not (
            bool((x.lengths() >= 1).all()) and bool((x.values[x.starts] == low).all())
        ):
            msg = "its rows do not all start with the slot"
            raise FormatError(msg)
        high = x.values.max() if x.values.size else low
        parts.append(Part(x, y, low, high))
    return parts


def _try_converted(target: Path, spec: DatasetSpec, sha256: str) -> list[Part] | None:
    """The converted copy if it exists and is sound; a damaged one is deleted."""
    if not target.is_file():
        return None
    try:
        if not _vouched_for(target, sha256):
            # planted, stale or half-written: never served; rebuilt from the
            # verified source (which overwrites it)
            return None
        return _read_converted(target, spec, sha256)
    except (SafenpzError, zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError):
        # Never trust a damaged copy: remove it; the caller rebuilds it.
        with contextlib.suppress(OSError):
            target.unlink()
        return None


Loaded: TypeAlias = list[Part] | Members
"""The fast layout, or the members as decoded when they do not fit it."""


#: dtypes a RaggedArray gets from rows of Python ints, floats or bools. Any
#: other dtype means the rows were NumPy arrays, whose elements Keras keeps as
#: NumPy scalars: such members are read again as they are.
_PYTHON_ROW_DTYPES: Final = frozenset(
    np.dtype(t) for t in (np.int64, np.float64, np.bool_)
)


def _decode_source(spec: DatasetSpec, file: Path) -> Members:
    """Decode a Keras-format source file with safenpz's safe reader."""
    with _npy.load(file, ragged=True) as npz:
        missing = [m for m in spec.members if m not in npz]
        if missing:
            msg = (
                f"{str(file)!r} is not a Keras {spec.name} file: it has no "
                f"member {missing[0]!r} (it holds {npz.files}); Keras's "
                f"{spec.remote} holds {list(spec.members)}"
            )
            raise FormatError(msg)
        members = {m: npz[m] for m in spec.members}
    for name in members:
        value = members[name]
        if isinstance(value, RaggedArray) and value.dtype not in _PYTHON_ROW_DTYPES:
            with _npy.load(file) as npz:
                members[name] = npz[name]
    return members


def load_members(
    spec: DatasetSpec,
    path: str | os.PathLike[str],
    *,
    progress: bool | None = None,
) -> Loaded:
    """Return a dataset file's content, using and refreshing the converted cache.

    Parameters
    ----------
    spec : DatasetSpec
    path : str or path-like
        A bare file name (an entry of the download cache, downloaded and
        hash-checked if needed) or a path to a local file.
    progress : bool, optional
        Show a progress bar while downloading (default: when stderr is a TTY).

    Returns
    -------
    list of Part or dict
        The fast layout, or (for files whose rows are not numeric lists) the
        members as decoded.

    Raises
    ------
    DownloadError, HashMismatchError
        The file could not be downloaded, or not verified.
    UnsafeFileError, FormatError, LimitError
        The source file is hostile or malformed.
    FileNotFoundError
        A local path does not exist.
    """
    file: Path | None = None
    if _is_local(path):
        file = _local_file(path)
        sha256 = _source_sha256(spec, file)
    else:
        sha256 = _known_sha256(spec.remote)
    try:
        target: Path | None = converted_path(spec, sha256)
    except DownloadError:
        target = None  # no usable cache directory: load without caching
    if target is not None:
        cached = _try_converted(target, spec, sha256)
        if cached is not None:
            return cached
    if file is None:
        file = _fetch_remote(path, spec.remote, progress)
    members = _decode_source(spec, file)
    parts = _lay_out(spec, members)
    if parts is None:
        return members
    if target is not None:
        # Best effort: a read-only or full cache only costs speed next time.
        with contextlib.suppress(OSError, ValueError, TypeError):
            _write_converted(target, spec, sha256, parts)
    return parts


# ---------------------------------------------------------------------------
# the Keras pipeline


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


@dataclasses.dataclass(frozen=True)
class PadOptions:
    """``pad_sequences`` options for ``output="padded"``."""

    maxlen: int | None = None
    dtype: DTypeLike = "int32"
    padding: Literal["pre", "post"] = "pre"
    truncating: Literal["pre", "post"] = "pre"
    value: Any = 0


Mode: TypeAlias = Literal["imdb", "imdb-keras2.2", "reuters", "reuters-keras2.2"]
Split: TypeAlias = tuple[Any, NDArray[Any]]


def check_options(output: object, compat: object, pad: PadOptions) -> None:
    """Validate safenpz's own options before any file is touched.

    Raises
    ------
    ValueError
        Unknown `output` or `compat`, or padding options without
        ``output="padded"``.
    """
    if output not in OUTPUTS:
        msg = f"output must be one of {', '.join(map(repr, OUTPUTS))}, not {output!r}"
        raise ValueError(msg)
    if compat not in _COMPATS:
        msg = f"compat must be None, 'keras3' or 'keras2.2', not {compat!r}"
        raise ValueError(msg)
    if output != "padded" and pad != PadOptions():
        msg = (
            "pad_maxlen, padding, truncating, pad_value and pad_dtype only apply "
            f"to output='padded' (output is {output!r})"
        )
        raise ValueError(msg)


def _maxlen_error(maxlen: object) -> ValueError:
    return ValueError(
        "After filtering for sequences shorter than maxlen="
        f"{maxlen!s}, no sequence was kept. Increase maxlen."
    )


def _is_intlike(value: object) -> bool:
    return isinstance(value, int | np.integer) and -_SAFE_INT < int(value) < _SAFE_INT


def _is_plain_int(value: object) -> bool:
    """An int that Keras would put into a row as is (not a bool, not NumPy)."""
    return type(value) is int and -_SAFE_INT < value < _SAFE_INT


def _simple_args(p: Params) -> bool:
    """Whether the arguments let the vectorised pipeline mirror Keras exactly:
    every value that lands in a row is a plain int, the thresholds are ints."""
    return (
        (p.start_char is None or _is_plain_int(p.start_char))
        and (p.oov_char is None or _is_plain_int(p.oov_char))
        and isinstance(p.index_from, int)  # int or bool: w + index_from is an int
        and _is_intlike(p.index_from)
        and _is_intlike(p.skip_top)
        and (p.num_words is None or _is_intlike(p.num_words))
        and (p.maxlen is None or isinstance(p.maxlen, _MAXLEN_TYPES))
    )


def _value_range(parts: Sequence[Part]) -> tuple[int, int] | None:
    """Smallest and largest stored id, if the rows hold integers that the
    vectorised pipeline handles exactly; else None."""
    for part in parts:
        kind, size = part.rows.dtype.kind, part.rows.dtype.itemsize
        if not (kind == "i" or (kind == "u" and size < 8)):
            return None
    lo = min((int(p.low) for p in parts), default=0)
    hi = max((int(p.high) for p in parts), default=0)
    if max(abs(lo), abs(hi)) >= _SAFE_INT:
        return None
    return lo, hi


def _permutations(
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


def _between(v: NDArray[Any], low: int, high: int) -> NDArray[np.bool_]:
    """``low <= v < high`` for Python ints of any size."""
    if low > _INT64_MAX or high <= _INT64_MIN or low >= high:
        return np.zeros(v.shape, dtype=np.bool_)
    mask: NDArray[np.bool_]
    if low > _INT64_MIN:
        mask = v >= low
        if high <= _INT64_MAX:
            mask &= v < high
    elif high <= _INT64_MAX:
        mask = v < high
    else:
        mask = np.ones(v.shape, dtype=np.bool_)
    return mask


def _narrowest(values: NDArray[np.int64], extra: Iterable[int]) -> np.dtype[Any]:
    """int32 if `values` and `extra` all fit, else int64."""
    low = min([int(values.min()) if values.size else 0, *extra])
    high = max([int(values.max()) if values.size else 0, *extra])
    fits = _INT32.min <= low and high <= _INT32.max
    return np.dtype(np.int32 if fits else np.int64)


class _ValueMap:
    """Keras's per-id rule, ``w + index_from`` then the vocabulary test, as
    one vectorised function of the stored ids: a lookup table when the ids
    are small non-negative numbers, arithmetic otherwise. Results are int32
    when every possible result fits (always, for the Keras datasets)."""

    def __init__(
        self,
        *,
        lo: int,
        hi: int,
        shift: int,
        skip_top: int,
        num_words: int,
        oov_char: int | None,
        head: int | None,
        wide: bool = False,
    ) -> None:
        self.shift = shift
        self.skip_top = skip_top
        self.num_words = num_words
        self.oov_char = oov_char
        self.table: NDArray[Any] | None = None
        self.keep_table: NDArray[np.bool_] | None = None
        extra = [c for c in (oov_char, head) if c is not None]
        if lo >= 0 and hi < _TABLE_MAX:
            ids = np.arange(hi + 1, dtype=np.int64)
            ids += shift
            inside = _between(ids, skip_top, num_words)
            if oov_char is not None:
                np.copyto(ids, oov_char, where=~inside)
            elif not inside.all():
                self.keep_table = inside
            self.table = ids if wide else ids.astype(_narrowest(ids, extra))
            self.dtype = self.table.dtype
        else:
            ends = np.array([lo + shift, hi + shift], dtype=np.int64)
            self.dtype = np.dtype(np.int64) if wide else _narrowest(ends, extra)

    def __call__(
        self, stored: NDArray[Any]
    ) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
        """Return the final values and, when ids are dropped, the keep mask.

        `stored` is consumed: the result may be written into it.
        """
        if self.table is not None:
            keep = None if self.keep_table is None else self.keep_table[stored]
            return _lookup(self.table, stored), keep
        values = stored.astype(np.int64)
        values += self.shift
        inside = _between(values, self.skip_top, self.num_words)
        keep = None
        if self.oov_char is not None:
            np.copyto(values, self.oov_char, where=~inside)
        elif not inside.all():
            keep = inside
        return values.astype(self.dtype, copy=False), keep


#: Elements per step of :func:`_lookup`: the indices and results of a step
#: stay in the CPU cache, which makes the lookup about twice as fast.
_LOOKUP_STEP: Final = 1 << 18


def _lookup(table: NDArray[Any], ids: NDArray[Any]) -> NDArray[Any]:
    """``table[ids]``, written over `ids` when the dtypes agree.

    Every id is known to be a valid index (the table spans the ids' range,
    checked on these very arrays), so ``mode="clip"`` never clips; it only
    spares NumPy the bounds buffer.
    """
    out = ids if ids.dtype == table.dtype and ids.flags.writeable else None
    if out is None:
        out = np.empty(len(ids), dtype=table.dtype)
    for start in range(0, len(ids), _LOOKUP_STEP):
        stop = start + _LOOKUP_STEP
        np.take(table, ids[start:stop], out=out[start:stop], mode="clip")
    return out


def _default_num_words(
    parts: Sequence[Part],
    sels: Sequence[NDArray[np.intp]],
    lengths: Sequence[NDArray[np.int64]],
    *,
    hi: int,
    shift: int,
    start_char: int | None,
) -> int:
    """``max(max(row) for row in rows)`` over the shifted rows, as Keras."""
    if sum(len(s) for s in sels) == 0:
        raise ValueError(_EMPTY_MAX)
    best: int | None = None
    for part, sel, length in zip(parts, sels, lengths, strict=True):
        if not len(sel):
            continue
        chosen = length[sel] > 0
        if start_char is None and not chosen.all():
            raise ValueError(_EMPTY_MAX)
        if not chosen.any():
            continue
        if len(sel) == len(length):  # every row: the whole array's maximum
            top = hi if len(parts) == 1 else int(part.rows.values.max())
        else:  # the slot is the smallest value, so row maxima are unaffected
            per_row = np.maximum.reduceat(part.rows.values, part.rows.starts)
            top = int(per_row[sel[chosen]].max())
        best = top + shift if best is None else max(best, top + shift)
    if start_char is not None:
        best = start_char if best is None else max(best, start_char)
    assert best is not None  # rows exist and none is empty
    return best


@dataclasses.dataclass
class _Plan:
    """Everything decided before any value is touched."""

    parts: list[Part]
    sels: list[NDArray[np.intp]]  # stored rows, in Keras's order, per part
    head: int | None  # what every row starts with, if anything
    vmap: _ValueMap
    split: int  # rows of the combined result that go to train
    y_train: NDArray[Any]
    y_test: NDArray[Any]


def _labels(labels: NDArray[Any], part: slice, *, from_list: bool) -> NDArray[Any]:
    chosen = labels[part]
    if from_list and not len(chosen):
        return np.array([])  # np.array() of Keras's emptied Python list
    return np.array(chosen)


def _plan(
    mode: Mode,
    parts: list[Part],
    p: Params,
    value_range: tuple[int, int],
    *,
    wide: bool,
) -> _Plan:
    keras22 = mode.endswith("keras2.2")
    sizes = [len(part.rows) for part in parts]
    if not keras22 and type(p.seed) is int and p.seed == _STORED_SEED:
        sels = [np.arange(n) for n in sizes]  # the stored order is Keras's order
    else:
        perms = _permutations(sizes, p.seed, global_rng=keras22)
        _fill_where(parts)
        sels = [part.where[perm] for part, perm in zip(parts, perms, strict=True)]  # type: ignore[index]
    labels = [part.labels[sel] for part, sel in zip(parts, sels, strict=True)]
    lengths = [part.rows.lengths() - 1 for part in parts]
    heads = p.start_char is not None
    shift = int(p.index_from)
    if p.maxlen:
        keeps = [
            (length[sel] + int(heads)) < p.maxlen
            for length, sel in zip(lengths, sels, strict=True)
        ]
        sels = [sel[k] for sel, k in zip(sels, keeps, strict=True)]
        labels = [lab[k] for lab, k in zip(labels, keeps, strict=True)]
        if mode == "imdb" and not all(len(s) for s in sels):
            raise _maxlen_error(p.maxlen)
        if mode == "imdb-keras2.2" and not any(len(s) for s in sels):
            raise _maxlen_error(p.maxlen)
    num_words = p.num_words
    if not num_words:
        num_words = _default_num_words(
            parts,
            sels,
            lengths,
            hi=value_range[1],
            shift=shift,
            start_char=p.start_char,
        )
    num_words = int(num_words)
    skip_top = int(p.skip_top)
    total = sum(len(s) for s in sels)
    if mode == "imdb":
        idx: int = len(sels[0])
    elif mode == "imdb-keras2.2":
        idx = sizes[0]
    else:
        idx = int(total * (1 - p.test_split))
    split = slice(None, idx).indices(total)[1]
    combined = np.concatenate(labels) if len(labels) > 1 else labels[0]
    if mode == "imdb":
        y_train, y_test = combined[:split], combined[split:]
    else:
        from_list = bool(p.maxlen)
        y_train = _labels(combined, slice(None, split), from_list=from_list)
        y_test = _labels(combined, slice(split, None), from_list=from_list)
    head: int | None = None
    if heads:
        if skip_top <= p.start_char < num_words:
            head = p.start_char
        elif p.oov_char is not None:
            head = p.oov_char
    vmap = _ValueMap(
        lo=value_range[0],
        hi=value_range[1],
        shift=shift,
        skip_top=skip_top,
        num_words=num_words,
        oov_char=p.oov_char,
        head=head,
        wide=wide,
    )
    return _Plan(parts, sels, head, vmap, split, y_train, y_test)


def _mapped(rows: RaggedArray, plan: _Plan) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Apply the value rule to slotted rows, then fill or drop the slots."""
    values, keep = plan.vmap(rows.values)
    starts = rows.starts
    if plan.head is not None:
        values[starts] = plan.head
        if keep is not None:
            keep[starts] = True
    else:
        if keep is None:
            keep = np.ones(len(values), dtype=np.bool_)
        keep[starts] = False
    if keep is None:
        return values, rows.offsets
    kept = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept[1:])
    return values[keep], kept[rows.offsets]


def _is_identity(sel: NDArray[np.intp], n: int) -> bool:
    return len(sel) == n and bool((sel == np.arange(n)).all())


def _rows_as_lists(plan: _Plan) -> list[list[int]]:
    """All selected rows as Python lists of Python ints."""
    rows: list[list[int]] = []
    while plan.parts:
        part, sel = plan.parts.pop(0), plan.sels.pop(0)
        values, offsets = _mapped(part.rows, plan)
        del part  # the stored arrays are no longer needed
        bounds = offsets.tolist()
        rows.extend([values[bounds[r] : bounds[r + 1]].tolist() for r in sel.tolist()])
    return rows


def _ragged_parts(plan: _Plan) -> list[RaggedArray]:
    """All selected rows as one RaggedArray per part."""
    out = []
    while plan.parts:
        part, sel = plan.parts.pop(0), plan.sels.pop(0)
        rows = (
            part.rows if _is_identity(sel, len(part.rows)) else _gather(part.rows, sel)
        )
        del part
        values, offsets = _mapped(rows, plan)
        del rows
        out.append(RaggedArray(values, offsets, validate=False))
    return out


def _split_ragged(
    parts: list[RaggedArray], split: int
) -> tuple[RaggedArray, RaggedArray]:
    if len(parts) == 2 and split == len(parts[0]):
        return parts[0], parts[1]
    combined = parts[0] if len(parts) == 1 else RaggedArray.concatenate(parts)
    parts.clear()
    return combined.split(split)


def _object_array(rows: list[Any]) -> NDArray[np.object_]:
    """``np.array(rows, dtype="object")``, fast for ragged rows of lists."""
    if rows and isinstance(rows[0], list):
        width = len(rows[0])
        if any(not isinstance(r, list) or len(r) != width for r in rows):
            return np.fromiter(rows, dtype=object, count=len(rows))
    return np.array(rows, dtype="object")


def _as_ragged(rows: list[Any]) -> RaggedArray:
    ragged = RaggedArray.from_lists(rows)
    if ragged.dtype.kind in "iu" and ragged.dtype.itemsize > 4:
        return ragged.astype(_narrowest(ragged.values.astype(np.int64), []))
    return ragged


def _finish(rows: list[Any] | RaggedArray, output: Output, pad: PadOptions) -> Any:
    """Rows (Python lists, or a RaggedArray for ``output != "lists"``) in the
    requested output form."""
    if isinstance(rows, list):
        if output == "lists":
            return _object_array(rows)
        rows = _as_ragged(rows)
    ragged = rows
    if output == "ragged":
        return ragged
    return ragged.pad(
        maxlen=pad.maxlen,
        dtype=pad.dtype,
        padding=pad.padding,
        truncating=pad.truncating,
        value=pad.value,
    )


def _vectorised(
    mode: Mode,
    parts: list[Part],
    p: Params,
    value_range: tuple[int, int],
    output: Output,
    pad: PadOptions,
) -> tuple[Split, Split]:
    # Python ints come faster out of int64 than out of int32 arrays.
    plan = _plan(mode, parts, p, value_range, wide=output == "lists")
    if output == "lists":
        with no_gc():
            rows = _rows_as_lists(plan)
            train: Any = _finish(rows[: plan.split], output, pad)
            test: Any = _finish(rows[plan.split :], output, pad)
            del rows
    else:
        head, tail = _split_ragged(_ragged_parts(plan), plan.split)
        train, test = _finish(head, output, pad), _finish(tail, output, pad)
    return (train, plan.y_train), (test, plan.y_test)


# -- the literal transcription, for arguments the vectorised code cannot mirror


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


def _reference(
    mode: Mode, xs: list[Any], ys: list[Any], p: Params
) -> tuple[tuple[list[Any], Any], tuple[list[Any], Any]]:
    """Keras's own steps on object arrays (Keras 3.15.1 / 2.2.4 semantics)."""
    xs = [
        x.to_object_array(keep_1d=True) if isinstance(x, RaggedArray) else x for x in xs
    ]
    perms = _permutations([len(x) for x in xs], p.seed, global_rng=mode.endswith("2.2"))
    xs = [x[perm] for x, perm in zip(xs, perms, strict=True)]
    ys = [y[perm] for y, perm in zip(ys, perms, strict=True)]
    if mode == "imdb":
        x_train, x_test = (_shift(x, p, always_copy=True) for x in xs)
        labels_train, labels_test = ys
        if p.maxlen:
            x_train, labels_train = _remove_long_seq(p.maxlen, x_train, labels_train)
            x_test, labels_test = _remove_long_seq(p.maxlen, x_test, labels_test)
            if not x_train or not x_test:
                raise _maxlen_error(p.maxlen)
        labels = np.concatenate([labels_train, labels_test])
        rows = _vocabulary(x_train + x_test, p)
        idx = len(x_train)
        return (rows[:idx], labels[:idx]), (rows[idx:], labels[idx:])
    if mode == "imdb-keras2.2":
        idx = len(xs[0])
        flat: Any = np.concatenate(xs)
        labels_any: Any = np.concatenate(ys)
    else:
        flat, labels_any = xs[0], ys[0]
    flat = _shift(flat, p, always_copy=False)
    if p.maxlen:
        flat, labels_any = _remove_long_seq(p.maxlen, flat, labels_any)
        if mode == "imdb-keras2.2" and not flat:
            raise _maxlen_error(p.maxlen)
    rows = _vocabulary(flat, p)
    if mode != "imdb-keras2.2":
        idx = int(len(rows) * (1 - p.test_split))
    return (
        (rows[:idx], np.array(labels_any[:idx])),
        (rows[idx:], np.array(labels_any[idx:])),
    )


def run_pipeline(
    mode: Mode,
    loaded: Loaded,
    spec: DatasetSpec,
    params: Params,
    *,
    output: Output = "lists",
    pad: PadOptions = PadOptions(),
) -> tuple[Split, Split]:
    """Run Keras's ``load_data`` steps on a loaded dataset.

    Parameters
    ----------
    mode : {"imdb", "imdb-keras2.2", "reuters", "reuters-keras2.2"}
    loaded : list of Part or dict
        As returned by :func:`load_members`; it is emptied, so that the
        stored arrays can be freed as soon as they are no longer needed.
    spec : DatasetSpec
    params : Params
    output : {"lists", "ragged", "padded"}
    pad : PadOptions

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        As Keras returns them (``output="lists"``), or with RaggedArrays or
        padded 2-D arrays in place of the object arrays.
    """
    if isinstance(loaded, list):
        parts = loaded[:]
        loaded.clear()
        value_range = _value_range(parts)
        if value_range is not None and _simple_args(params):
            return _vectorised(mode, parts, params, value_range, output, pad)
        xs, ys = _source_order(parts)
        del parts
    else:
        xs = [loaded[x] for x, _ in spec.parts]
        ys = [loaded[y] for _, y in spec.parts]
        loaded.clear()
    with no_gc():
        (train_rows, y_train), (test_rows, y_test) = _reference(mode, xs, ys, params)
    del xs
    return (
        (_finish(train_rows, output, pad), y_train),
        (_finish(test_rows, output, pad), y_test),
    )


# ---------------------------------------------------------------------------
# word indices


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
    file = (
        _local_file(path) if _is_local(path) else _fetch_remote(path, remote, progress)
    )
    shown = preview(str(file))
    data = read_capped_file(file, _MAX_WORD_INDEX_BYTES, shown)
    try:
        index = parse_json(data, "the word index")
    except FormatError as err:
        msg = f"{shown} is not a JSON word index: {err}"
        raise FormatError(msg) from err
    if not isinstance(index, dict):
        msg = f"{shown} holds a JSON {type(index).__name__}, not a word index"
        raise FormatError(msg)
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
