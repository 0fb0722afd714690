"""Pickle-free storage: :func:`save` and the layout :class:`NpzFile` reads back.

A file written by :func:`save` is an ordinary ``.npz`` that
``np.load(path, allow_pickle=False)`` opens. Numeric arrays are stored as
they are. Ragged and object columns become numeric members plus a manifest:

==========================  ==================================================
member                      content
==========================  ==================================================
``<name>.npy``              a numeric array (stored as is)
``<name>.values.npy``       1-D numeric: all rows concatenated
``<name>.offsets.npy``      1-D int64, ``n + 1`` entries: row ``i`` is
                            ``values[offsets[i]:offsets[i + 1]]``
``__safenpz__.npy``         0-d unicode array holding the JSON manifest
==========================  ==================================================

The manifest (written only when a non-numeric column is present) is::

    {"format": "safenpz", "version": 1,
     "arrays": {"<name>": {"kind": "ragged" | "object_lists" | "object_scalars",
                           "rows": "list" | "tuple" | "ndarray",  # object_lists
                           "shape": [...]}}}                # object_scalars only

``ragged`` columns come back as :class:`~safenpz.RaggedArray`;
``object_lists`` (a 1-D object array of numeric rows) come back as the same
object array of lists, or of 1-D arrays (``rows``), or as a RaggedArray with
``load(..., ragged=True)``; ``object_scalars`` (an object array of ints,
floats, bools or strings, e.g. Keras's 2-D object array when all rows happen to
have equal length) come back as that object array of Python scalars. The
manifest is untrusted input like everything else: it is size-capped, checked
key by key, and offsets are validated by :class:`~safenpz.RaggedArray`.

Any other plain data (dicts, mixed lists, object arrays of those, Python and
NumPy scalars) is stored as kind ``"tree"``, specified in :mod:`safenpz._tree`.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import numpy as np
from numpy.lib import format as npformat

from . import _tree_write
from ._exceptions import UnstorableError, Where
from ._manifest import FORMAT_VERSION as _FORMAT_VERSION
from ._manifest import MANIFEST
from ._ragged import RaggedArray

__all__ = ["atomic_write", "save", "save_arrays"]


def _create_temp(path: str) -> tuple[int, str]:
    """Create ``<path>.<random>.part`` beside `path`, exclusively, with the
    mode a plain ``open(path, "wb")`` would give: ``0o666`` less the umask
    (and any default ACL), which the kernel applies. ``tempfile.mkstemp``
    would give 0o600."""
    directory, base = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{base}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 2**32 names
            continue
    msg = f"cannot create a temporary file beside {path!r}"  # pragma: no cover
    raise FileExistsError(msg)  # pragma: no cover


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Write `path` atomically: a temporary file beside it, then ``os.replace``.

    The file gets the permissions ``np.savez`` would give it (``0o666`` less
    the umask: 0644 under the usual umask 022). If the block raises (or the
    process dies), the destination is untouched and the temporary file is
    removed (or left with a ``.part`` suffix that nothing trusts). Errors name
    `path`, never the temporary file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        msg = f"{path!r} is a directory; give a file name to write to"
        raise IsADirectoryError(msg)
    try:
        fd, tmp = _create_temp(path)
    except OSError as err:
        msg = f"cannot write {path!r}: {err.strerror or err}"
        raise type(err)(err.errno, msg) from err
    try:
        with os.fdopen(fd, "wb") as fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        try:
            os.replace(tmp, path)
        except OSError as err:
            msg = f"cannot write {path!r}: {err.strerror or err}"
            raise type(err)(err.errno, msg) from err
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_ROW_TYPES = {list: "list", tuple: "tuple", np.ndarray: "ndarray"}
_ITEM_DTYPES = {
    int: np.int64,
    float: np.float64,
    bool: np.bool_,
    complex: np.complex128,
}


def _rows_of(arr: np.ndarray[Any, Any], name: str) -> tuple[RaggedArray, str] | None:
    """A 1-D object array of numeric rows → (RaggedArray, row type).

    Returns None when the elements are not rows at all; raises
    UnstorableError when they are rows that could not come back unchanged
    (mixed row types, mixed item types, rows of different dtypes).
    """
    if arr.ndim != 1:
        return None
    rows = arr.tolist()
    kinds = set(map(type, rows))
    if not kinds or not kinds <= set(_ROW_TYPES):
        return None
    dtype, problem = _row_dtype(kinds, rows)
    if problem is not None:
        msg = (
            f"cannot store it pickle-free without changing it: it holds "
            f"{problem}; convert it to a RaggedArray of one dtype first"
        )
        raise UnstorableError(msg, where=Where(member=name))
    try:
        ragged = RaggedArray.from_lists(rows, dtype=dtype)
    except OverflowError as err:
        ragged = _wide_int_rows(rows, name, dtype, err)
    return ragged, _ROW_TYPES[kinds.pop()]


def _row_dtype(kinds: set[type], rows: list[Any]) -> tuple[Any, str | None]:
    """The dtype of the one values array that holds `rows` (whose types are
    `kinds`) unchanged, and why there is none (None when there is)."""
    if len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        return None, f"rows of several types ({names})"
    if kinds == {np.ndarray}:
        dtypes = {r.dtype for r in rows}
        if len(dtypes) > 1 or any(r.ndim != 1 for r in rows):
            return None, "array rows of different dtypes or of more than 1 dimension"
        dtype = dtypes.pop()
        if dtype.kind not in "biufc":
            return dtype, f"array rows of dtype {dtype}"
        return dtype, None
    items = {type(x) for r in rows for x in r}
    if len(items) > 1 or not items <= set(_ITEM_DTYPES):
        names = ", ".join(sorted(k.__name__ for k in items))
        return None, f"row items of types {names} (one numeric type is needed)"
    return (_ITEM_DTYPES[items.pop()] if items else np.int64), None


def _wide_int_rows(
    rows: list[Any], name: str, dtype: Any, err: OverflowError
) -> RaggedArray:
    """Rows of Python ints beyond int64: uint64 keeps them exactly when none is
    negative; otherwise no 64-bit type does (UnstorableError, like other columns
    that cannot be stored without changing them)."""
    if dtype is np.int64 and min(min(r, default=0) for r in rows) >= 0:
        try:
            return RaggedArray.from_lists(rows, dtype=np.uint64)
        except OverflowError:
            pass
    msg = (
        "cannot store it pickle-free without changing it: its integers do not "
        "all fit int64, nor all fit uint64"
    )
    raise UnstorableError(msg, where=Where(member=name)) from err


def _scalars_of(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    items = arr.ravel().tolist()
    kinds = set(map(type, items))
    if kinds == {str} and any(item.endswith("\x00") for item in items):
        # a 'U' array would drop the trailing NULs: the tree keeps them
        return None
    target = {
        frozenset({int}): np.int64,
        frozenset({float}): np.float64,
        frozenset({bool}): np.bool_,
        frozenset({str}): np.str_,
    }.get(frozenset(kinds))
    if target is None and items:
        return None
    try:
        out = np.array(items, dtype=target if items else np.int64)
    except (OverflowError, ValueError):
        return None
    return out.reshape(arr.shape)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(MANIFEST):
        msg = (
            "the name is not allowed in a safenpz file (it is empty, holds '/' "
            f"or '\\', or starts with {MANIFEST!r}); rename the array"
        )
        raise UnstorableError(msg, where=Where(member=name))


def _plan(
    arrays: dict[str, Any],
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, Any]]:
    """The members to write and the manifest entries, column by column."""
    members: dict[str, np.ndarray[Any, Any]] = {}
    manifest: dict[str, Any] = {}
    for name, value in arrays.items():
        _check_name(name)
        entry, parts = _column(name, value)
        for member, part in parts.items():
            if member in members:
                msg = (
                    "the name clashes with the parts of another array that "
                    "safenpz stores in several members; rename the array"
                )
                raise UnstorableError(msg, where=Where(member=member))
            members[member] = part
        if entry is not None:
            manifest[name] = entry
    return members, manifest


_Column = tuple[dict[str, Any] | None, dict[str, np.ndarray[Any, Any]]]


def _column(name: str, value: Any) -> _Column:
    """How one value is stored: its manifest entry (None for a plain numeric
    array) and its members, in the order they are written."""
    if isinstance(value, RaggedArray):
        return _ragged_parts(name, value, {"kind": "ragged"})
    arr = None if _tree_write.is_tree_value(value) else np.asanyarray(value)
    if arr is not None and arr.dtype.hasobject and arr.dtype != object:
        msg = (
            f"cannot store a {type(value).__name__} pickle-free; pass a numeric "
            "array, an object array of numeric rows or a RaggedArray"
        )
        raise UnstorableError(msg, where=Where(member=name))
    if arr is not None and arr.dtype != object:
        where = Where(member=name)
        _tree_write.check_storable_dtype(arr.dtype, where, exact_type=False)
        return None, {name: np.asarray(arr)}
    column = None if arr is None else _object_column(name, arr)
    if column is not None:
        return column
    # any other plain data (dicts, mixed lists, object arrays of those)
    entry, parts = _tree_write.encode(value if arr is None else arr, name)
    return entry, parts


def _ragged_parts(name: str, ragged: RaggedArray, entry: dict[str, Any]) -> _Column:
    return entry, {f"{name}.values": ragged.values, f"{name}.offsets": ragged.offsets}


def _object_column(name: str, arr: np.ndarray[Any, Any]) -> _Column | None:
    """An object array of numeric rows or of scalars, stored as numeric
    members; None when only a tree can store it."""
    try:
        rows = _rows_of(arr, name)
    except TypeError:  # rows one values array cannot hold: a tree can
        rows = None
    if rows is not None:
        ragged, row_type = rows
        return _ragged_parts(name, ragged, {"kind": "object_lists", "rows": row_type})
    scalars = _scalars_of(arr) if arr.flags.c_contiguous else None
    if scalars is not None:
        return {"kind": "object_scalars", "shape": list(arr.shape)}, {name: scalars}
    return None


def save(
    file: str | os.PathLike[str] | IO[bytes],
    *args: Any,
    compress: bool = False,
    **arrays: Any,
) -> None:
    """Write arrays to a pickle-free ``.npz`` that plain NumPy can open.

    Parameters
    ----------
    file : path or binary file object
        Destination. A path is written atomically (temporary file + rename)
        and used exactly as given (no ``.npz`` is appended).
    *args : array_like
        Stored as ``arr_0``, ``arr_1``, ... like :func:`numpy.savez`.
    compress : bool
        Deflate the members (like :func:`numpy.savez_compressed`).
    **arrays : numpy.ndarray, RaggedArray, object array or plain data
        Numeric arrays are stored as they are; RaggedArrays and 1-D object
        arrays of numeric rows as ``values`` + ``offsets``; object arrays of
        Python scalars as numeric arrays; any other plain data (dicts, lists,
        scalars, object arrays of those) as a tree. See the module docstring
        for the layout.

    Raises
    ------
    UnstorableError
        A value cannot be stored without pickle or without changing it (an
        object that is not plain data, a dtype ``np.save`` would change, a
        value that contains itself), or a bad or clashing array name. It is
        also a ``TypeError`` and a ``ValueError``.
    LimitError
        A value stored as a tree would be too big once its shared references
        are expanded (see :mod:`safenpz._tree`); nothing is written.
    ValueError
        A positional array and the keyword ``arr_<i>`` together.

    Examples
    --------
    >>> import io, numpy as np, safenpz
    >>> buf = io.BytesIO()
    >>> x = np.array([[1, 2], [3]], dtype=object)
    >>> safenpz.save(buf, x=x, y=np.array([0, 1]))
    >>> sorted(np.load(io.BytesIO(buf.getvalue()), allow_pickle=False).files)
    ['__safenpz__', 'x.offsets', 'x.values', 'y']
    >>> safenpz.load(buf.getvalue())["x"]
    array([list([1, 2]), list([3])], dtype=object)
    """
    for i, value in enumerate(args):
        name = f"arr_{i}"
        if name in arrays:
            msg = f"cannot use un-named array {i} and keyword {name!r} together"
            raise ValueError(msg)
        arrays[name] = value
    save_arrays(file, arrays, compress=compress)


def save_arrays(
    file: str | os.PathLike[str] | IO[bytes],
    arrays: dict[str, Any],
    *,
    compress: bool = False,
) -> None:
    """:func:`save` with the arrays as a dict, so any name works (``file``,
    ``compress``, ``allow_pickle``: an archive read from disk may use them)."""
    members, manifest = _plan(arrays)
    if manifest:
        doc = {"format": "safenpz", "version": _FORMAT_VERSION, "arrays": manifest}
        members[MANIFEST] = np.array(json.dumps(doc, sort_keys=True))
    if isinstance(file, str | os.PathLike):
        with atomic_write(file) as fp:
            _write_members(fp, members, compress=compress)
    else:
        _write_members(file, members, compress=compress)


def _write_members(
    fp: IO[bytes], members: dict[str, np.ndarray[Any, Any]], *, compress: bool
) -> None:
    """What ``np.savez`` does, without passing member names as keywords
    (``np.savez(fp, file=...)`` fails; ``allow_pickle=`` is taken as its
    option) and never pickling."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fp, mode="w", compression=method, allowZip64=True) as zf:
        for key, arr in members.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as out:
                npformat.write_array(out, np.asanyarray(arr), allow_pickle=False)
