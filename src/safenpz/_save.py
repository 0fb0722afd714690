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
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.lib import format as npformat

from . import _tree
from ._exceptions import FormatError, UnstorableError
from ._jsonio import parse_json
from ._preview import preview
from ._ragged import RaggedArray

if TYPE_CHECKING:
    from ._npy import NpzFile

__all__ = [
    "MANIFEST",
    "Layout",
    "atomic_write",
    "check_manifest",
    "save",
    "save_arrays",
]

MANIFEST = "__safenpz__"
_FORMAT_VERSION = 1
_MAX_MANIFEST_CHARS = 1 << 20
_MAX_MANIFEST_MEMBER = 4 * _MAX_MANIFEST_CHARS + 4096  # U data + .npy header
_KINDS = ("ragged", "object_lists", "object_scalars", _tree.KIND)


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
    problem = None
    dtype: Any = None
    if len(kinds) > 1:
        problem = (
            f"rows of several types ({', '.join(sorted(k.__name__ for k in kinds))})"
        )
    elif kinds == {np.ndarray}:
        dtypes = {r.dtype for r in rows}
        if len(dtypes) > 1 or any(r.ndim != 1 for r in rows):
            problem = "array rows of different dtypes or of more than 1 dimension"
        else:
            dtype = dtypes.pop()
            if dtype.kind not in "biufc":
                problem = f"array rows of dtype {dtype}"
    else:
        items = {type(x) for r in rows for x in r}
        if len(items) > 1 or not items <= set(_ITEM_DTYPES):
            names = ", ".join(sorted(k.__name__ for k in items))
            problem = f"row items of types {names} (one numeric type is needed)"
        elif items:
            dtype = _ITEM_DTYPES[items.pop()]
        else:
            dtype = np.int64
    if problem is not None:
        msg = (
            f"cannot store {name!r} pickle-free without changing it: it holds "
            f"{problem}; convert it to a RaggedArray of one dtype first"
        )
        raise UnstorableError(msg)
    try:
        ragged = RaggedArray.from_lists(rows, dtype=dtype)
    except OverflowError as err:
        ragged = _wide_int_rows(rows, name, dtype, err)
    return ragged, _ROW_TYPES[kinds.pop()]


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
        f"cannot store {name!r} pickle-free without changing it: its integers "
        "do not all fit int64, nor all fit uint64"
    )
    raise UnstorableError(msg) from err


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
            f"array name {preview(name)} is not allowed in a safenpz file (it is "
            f"empty, holds '/' or '\\', or starts with {MANIFEST!r}); rename it"
        )
        raise UnstorableError(msg)


def _plan(
    arrays: dict[str, Any],
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, Any]]:
    members: dict[str, np.ndarray[Any, Any]] = {}
    manifest: dict[str, Any] = {}

    def put(member: str, arr: np.ndarray[Any, Any]) -> None:
        if member in members:
            msg = (
                f"array name {preview(member)} clashes with the parts of another "
                "array that safenpz stores in several members; rename it"
            )
            raise UnstorableError(msg)
        members[member] = arr

    for name, value in arrays.items():
        _check_name(name)
        if isinstance(value, RaggedArray):
            put(f"{name}.values", value.values)
            put(f"{name}.offsets", value.offsets)
            manifest[name] = {"kind": "ragged"}
            continue
        arr = None if _tree.is_tree_value(value) else np.asanyarray(value)
        if arr is not None and arr.dtype.hasobject and arr.dtype != object:
            msg = (
                f"cannot store {name!r} ({type(value).__name__}) pickle-free; "
                "pass a numeric array, an object array of numeric rows or a RaggedArray"
            )
            raise UnstorableError(msg)
        if arr is not None and arr.dtype != object:
            _tree.check_storable_dtype(arr.dtype, repr(name), exact_type=False)
            put(name, np.asarray(arr))
            continue
        if arr is not None:
            try:
                rows = _rows_of(arr, name)
            except TypeError:  # rows one values array cannot hold: a tree can
                rows = None
            if rows is not None:
                ragged, row_type = rows
                put(f"{name}.values", ragged.values)
                put(f"{name}.offsets", ragged.offsets)
                manifest[name] = {"kind": "object_lists", "rows": row_type}
                continue
            scalars = _scalars_of(arr) if arr.flags.c_contiguous else None
            if scalars is not None:
                put(name, scalars)
                manifest[name] = {"kind": "object_scalars", "shape": list(arr.shape)}
                continue
        # any other plain data (dicts, mixed lists, object arrays of those)
        manifest[name], parts = _tree.encode(value if arr is None else arr, name)
        for member, part in parts.items():
            put(member, part)
    return members, manifest


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


class Layout:
    """How the names a user sees map onto the raw members of an archive.

    Without a manifest, names resolve exactly as in NumPy's ``NpzFile`` (see
    :class:`safenpz.NpzFile`). With one (a file written by :func:`save`), the
    archive must be what :func:`save` writes, or it is refused with
    :class:`~safenpz.FormatError`: every member ends in ``.npy`` (so no two
    members answer to one name); each ragged/object-lists entry ``x`` has its
    ``x.values.npy`` and ``x.offsets.npy`` and no member ``x.npy`` of its own
    (a manifest entry never hides a raw member); each object-scalars entry
    ``x`` has its member ``x.npy``; no member is claimed by two entries.
    """

    def __init__(self, raw: list[str], manifest: dict[str, Any] | None = None) -> None:
        self._manifest = manifest or {}
        self._plain = manifest is None
        self._raw = set(raw)
        if self._plain:
            self._names = [n[:-4] if n.endswith(".npy") else n for n in raw]
        else:
            parts = {}
            for name, entry in self._manifest.items():
                if entry["kind"] == _tree.KIND:
                    stems = _tree.entry_parts(name, entry, len(raw)) or []
                    parts.update(dict.fromkeys(stems, name))
                elif entry["kind"] != "object_scalars":
                    parts[f"{name}.values"] = name
                    parts[f"{name}.offsets"] = name
            names: dict[str, None] = {}  # ordered set, in archive order
            for member in raw:
                stem = member[:-4]
                if stem != MANIFEST:
                    names[parts.get(stem, stem)] = None
            self._names = list(names)
            self._stems = {m[:-4] for m in raw} - {MANIFEST}
        self._name_set = frozenset(self._names)

    def names(self) -> list[str]:
        """The array names to show."""
        return list(self._names)

    def contains(self, npz: NpzFile, key: object) -> bool:
        """Whether ``npz[key]`` names something."""
        if not isinstance(key, str):
            return False
        if self._plain:
            return key in self._raw or key in self._name_set
        return key in self._name_set

    @classmethod
    def read(cls, npz: NpzFile) -> Layout:
        """Read and validate the manifest of `npz`, if any."""
        raw = npz.raw_names
        member = MANIFEST + ".npy"
        if member not in raw:
            return cls(raw)
        where = "the safenpz manifest (__safenpz__.npy)"
        _check_members(raw, where)
        if npz.member_size(member) > _MAX_MANIFEST_MEMBER:
            msg = f"{where} is larger than {_MAX_MANIFEST_MEMBER:,} bytes"
            raise FormatError(msg)
        doc_arr = npz.read_npy(member, ragged=False)
        if not (
            isinstance(doc_arr, np.ndarray)
            and doc_arr.shape == ()
            and doc_arr.dtype.kind == "U"
            and doc_arr.dtype.itemsize <= 4 * _MAX_MANIFEST_CHARS
        ):
            msg = f"{where} must be a 0-d unicode array of at most 1 MiB"
            raise FormatError(msg)
        doc = parse_json(str(doc_arr[()]), where)
        manifest = check_manifest(doc, raw, where)
        return cls(raw, manifest)

    def get(self, npz: NpzFile, name: str) -> Any:
        """Decode the array `name`."""
        if self._plain:
            return npz.read_npy(npz.resolve(name))
        entry = self._manifest.get(name)
        if entry is None:
            stem = name
            if stem not in self._stems and stem.endswith(".npy"):
                stem = stem[:-4]
            if stem not in self._stems or stem not in self._name_set:
                msg = f"{preview(name)} is not in {npz._name}; it holds {self._names}"
                raise KeyError(msg)
            return npz.read_npy(stem + ".npy")
        if entry["kind"] == _tree.KIND:
            where = f"{npz._name}: the safenpz manifest"

            def read(stem: str) -> Any:
                member = stem + ".npy"
                if stem == f"{name}.tree":
                    size = npz.member_size(member)
                    if size > _tree.MAX_TABLE_MEMBER:
                        msg = (
                            f"{where}: member {preview(member)} declares "
                            f"{size:,} bytes, more than a node table safenpz."
                            "save writes; the file was not written by "
                            "safenpz.save or has been altered"
                        )
                        raise FormatError(msg)
                return npz.read_npy(member, ragged=False)

            return _tree.decode(name, entry, read, npz._limits, where)
        if entry["kind"] == "object_scalars":
            arr = npz.read_npy(f"{name}.npy", ragged=False)
            if not isinstance(arr, np.ndarray) or list(arr.shape) != entry["shape"]:
                msg = f"member {preview(name)} does not match its manifest entry"
                raise FormatError(msg)
            return arr.astype(object)
        values = npz.read_npy(f"{name}.values.npy", ragged=False)
        offsets = npz.read_npy(f"{name}.offsets.npy", ragged=False)
        if not (
            isinstance(values, np.ndarray)
            and isinstance(offsets, np.ndarray)
            and values.ndim == 1
            and offsets.ndim == 1
            and offsets.dtype.kind in "iu"
            and values.dtype.kind in "biufc"
        ):
            msg = (
                f"{preview(name)}: values must be 1-D numeric and offsets 1-D integers"
            )
            raise FormatError(msg)
        ragged = RaggedArray(values, offsets.astype(np.int64, copy=False))
        if entry["kind"] == "ragged" or npz._ragged:
            return ragged
        if entry["rows"] == "ndarray":
            rows: list[Any] = list(ragged)
        elif entry["rows"] == "tuple":
            rows = list(map(tuple, ragged.to_lists()))
        else:
            rows = ragged.to_lists()
        return np.fromiter(rows, dtype=object, count=len(rows))


def _check_members(raw: list[str], where: str) -> None:
    stray = [n for n in raw if not n.endswith(".npy")]
    if stray:
        msg = (
            f"{where} is present, but member {preview(stray[0])} is not a "
            ".npy member; safenpz.save never writes such an archive"
        )
        raise FormatError(msg)


def _hide_msg(where: str, name: str) -> str:
    return (
        f"{where}: entry {preview(name)} would hide the archive's member "
        f"{preview(name + '.npy')}; refusing to guess which one is meant"
    )


def check_manifest(doc: Any, raw: list[str], where: str) -> dict[str, Any]:
    """Validate a parsed manifest against the archive's member stems.

    A pure function of the JSON document and the member names (nothing is
    decoded), shared by :class:`Layout` and ``safenpz scan``.

    Parameters
    ----------
    doc : object
        The parsed JSON.
    raw : list of str
        The archive's member names, as stored (all must end in ``.npy``).
    where : str
        Prefix of error messages.

    Returns
    -------
    dict
        The ``arrays`` mapping.

    Raises
    ------
    FormatError
        The document is not a valid manifest for these members.
    """
    if not (
        isinstance(doc, dict)
        and doc.get("format") == "safenpz"
        and isinstance(doc.get("arrays"), dict)
    ):
        msg = f"{where} is not a safenpz manifest"
        raise FormatError(msg)
    if doc.get("version") != _FORMAT_VERSION:
        msg = (
            f"{where} has version {preview(doc.get('version'))}; this safenpz "
            f"reads version {_FORMAT_VERSION} — upgrade safenpz"
        )
        raise FormatError(msg)
    _check_members(raw, where)
    present = {n[:-4] for n in raw}
    manifest: dict[str, Any] = doc["arrays"]
    claimed: dict[str, str] = {}

    def claim(stem: str, name: str) -> bool:
        if stem not in present or stem in claimed:
            return False
        claimed[stem] = name
        return True

    for name, entry in manifest.items():
        ok = (
            isinstance(entry, dict)
            and entry.get("kind") in _KINDS
            and not name.startswith(MANIFEST)
        )
        if ok and entry["kind"] == _tree.KIND:
            if name in present:
                raise FormatError(_hide_msg(where, name))
            stems = _tree.entry_parts(name, entry, len(raw))
            ok = stems is not None and all(claim(t, name) for t in stems)
        elif ok and entry["kind"] == "object_scalars":
            shape = entry.get("shape")
            ok = (
                isinstance(shape, list)
                and len(shape) <= 64
                and all(type(d) is int and d >= 0 for d in shape)
                and claim(name, name)
            )
        elif ok:
            if name in present:
                raise FormatError(_hide_msg(where, name))
            ok = claim(f"{name}.values", name) and claim(f"{name}.offsets", name)
            if entry["kind"] == "object_lists":
                ok = ok and entry.get("rows") in ("list", "tuple", "ndarray")
        if not ok:
            msg = f"{where}: bad entry for {preview(name)}: {preview(entry)}"
            raise FormatError(msg)
    for stem, owner in claimed.items():
        if stem != owner and stem in manifest:
            msg = (
                f"{where}: member {preview(stem + '.npy')} is both an entry and "
                f"a part of entry {preview(owner)}"
            )
            raise FormatError(msg)
    return manifest
