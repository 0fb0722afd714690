"""The converted store: a dataset's rows kept pickle-free, and why it is trusted.

:func:`load_members` returns a dataset file's content: from the converted
copy when a sound one is vouched for, else decoded from the verified source
(:mod:`safenpz.datasets._source`), laid out (:func:`lay_out`) and written
back as a converted copy, so a second load never decodes a pickle again.

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

If the cache directory is not writable the data is still returned; it is
just not cached. Two processes may load at once: each writes its own
temporary file and renames it into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

from safenpz import _fetch, _npy
from safenpz._exceptions import DownloadError, FormatError, SafenpzError, Where
from safenpz._jsonio import parse_json
from safenpz._ragged import RaggedArray
from safenpz._save import atomic_write, save
from safenpz.datasets import _source
from safenpz.datasets._reference import permutations
from safenpz.datasets._source import (
    Members,
    fetch_remote,
    is_local,
    is_sha256,
    known_sha256,
    local_file,
    read_record,
    source_sha256,
    stat_key,
)
from safenpz.datasets._spec import DatasetSpec

__all__ = [
    "STORED_SEED",
    "Loaded",
    "Part",
    "converted_path",
    "fill_where",
    "gather",
    "lay_out",
    "load_members",
    "source_order",
]

_META: Final = "safenpz_dataset"
_META_FORMAT: Final = "safenpz-dataset"
_META_VERSION: Final = 1
_INT32: Final = np.iinfo(np.int32)


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


# -- the fast layout and the converted copy ------------------------------------


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
        computed only when needed, see :func:`fill_where`.
    """

    rows: RaggedArray
    labels: NDArray[Any]
    low: Any
    high: Any
    where: NDArray[np.intp] | None = None


#: Rows are stored in the order Keras's default seed draws them, so that the
#: default load reads them straight through.
STORED_SEED: Final = 113
_LAYOUT: Final = "keras-seed-113-order, leading slot"


def _orders(sizes: Sequence[int]) -> list[NDArray[np.intp]]:
    return permutations(sizes, STORED_SEED, global_rng=False)


def _inverse(order: NDArray[np.intp]) -> NDArray[np.intp]:
    where = np.empty_like(order)
    where[order] = np.arange(len(order), dtype=order.dtype)
    return where


def _offsets(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def gather(
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


def lay_out(spec: DatasetSpec, members: Members) -> list[Part] | None:
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
        rows = gather(x, order, slot=low, dtype=dtype)
        # y[order] raises IndexError for short labels, as Keras's shuffle does.
        parts.append(Part(rows, y[order], low, high, _inverse(order)))
    return parts


def fill_where(parts: Sequence[Part]) -> None:
    """Compute the inverse of the stored order of every part, if missing."""
    if any(part.where is None for part in parts):
        orders = _orders([len(part.rows) for part in parts])
        for part, order in zip(parts, orders, strict=True):
            part.where = _inverse(order)


def source_order(
    parts: Sequence[Part],
) -> tuple[list[RaggedArray], list[NDArray[Any]]]:
    """The members as decoded, back from the fast layout."""
    fill_where(parts)
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
        "stat": stat_key(target),
    }
    with atomic_write(_digest_path(target)) as fp:
        fp.write(json.dumps(record, sort_keys=True).encode("utf-8"))


def _vouched_for(target: Path, source_sha256: str) -> bool:
    """Whether the converted copy is the one safenpz wrote from the verified
    source: its sidecar names that source, and the copy still has the stat
    key recorded right after it was written, or else the recorded sha256."""
    record = read_record(_digest_path(target))
    if (
        record is None
        or record.get("format") != "safenpz-converted-copy"
        or record.get("source_sha256") != source_sha256
        or not is_sha256(record.get("copy_sha256"))
    ):
        return False
    if record.get("stat") == stat_key(target):
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
    where = Where(source=str(target))
    with _npy.load(target) as npz:
        expected = {*spec.members, _META}
        if set(npz.files) != expected:
            msg = f"holds {sorted(npz.files)}, expected {sorted(expected)}"
            raise FormatError(msg, where=where)
        raw = npz[_META]
        if not (
            isinstance(raw, np.ndarray) and raw.shape == () and raw.dtype.kind == "U"
        ):
            msg = "its record is not a JSON string"
            raise FormatError(msg, where=where)
        record = parse_json(str(raw[()]), "its record", where)
        arrays = {m: npz[m] for m in spec.members}
    if record != _record(spec, sha256, arrays):
        msg = "its record does not match its content or its source"
        raise FormatError(msg, where=where)
    xs = [arrays[x] for x, _ in spec.parts]
    ys = [arrays[y] for _, y in spec.parts]
    if not all(isinstance(x, RaggedArray) for x in xs) or not all(
        isinstance(y, np.ndarray) and y.ndim and len(y) == len(x)
        for x, y in zip(xs, ys, strict=True)
    ):
        msg = "its rows and labels do not fit together"
        raise FormatError(msg, where=where)
    present = [x.values for x in xs if x.values.size]
    low = min(v.min() for v in present) if present else 0
    parts = []
    for x, y in zip(xs, ys, strict=True):
        if len(x) and not (
            bool((x.lengths() >= 1).all()) and bool((x.values[x.starts] == low).all())
        ):
            msg = "its rows do not all start with the slot"
            raise FormatError(msg, where=where)
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
    if is_local(path):
        file = local_file(path)
        sha256 = source_sha256(spec, file)
    else:
        sha256 = known_sha256(spec.remote)
    try:
        target: Path | None = converted_path(spec, sha256)
    except DownloadError:
        target = None  # no usable cache directory: load without caching
    if target is not None:
        cached = _try_converted(target, spec, sha256)
        if cached is not None:
            return cached
    if file is None:
        file = fetch_remote(path, spec.remote, progress)
    members = _source.decode_source(spec, file)
    parts = lay_out(spec, members)
    if parts is None:
        return members
    if target is not None:
        # Best effort: a read-only or full cache only costs speed next time.
        with contextlib.suppress(OSError, ValueError, TypeError):
            _write_converted(target, spec, sha256, parts)
    return parts
