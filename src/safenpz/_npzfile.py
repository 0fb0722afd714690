"""``NpzFile``: the mapping an ``.npz`` archive is read through.

Three layers, bottom up: the zip container (:class:`safenpz._zip.ZipArchive`,
raw member bytes under the limits), the member decoder
(:func:`safenpz._decode.decode_npy_bytes`), and the name layout
(:class:`Layout`): without a manifest, names resolve exactly as in NumPy's
``NpzFile``; with one (a file written by :func:`safenpz.save`), through the
manifest, checked by :func:`safenpz._manifest.check_manifest`.

Decisions: members are decoded on access and not cached, as with NumPy; a
member is decoded when it starts with the ``.npy`` magic, whatever its name,
and reading any other member raises :class:`~safenpz.FormatError` (NumPy
would return its raw bytes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Self, TypeVar

import numpy as np

from . import _tree, _tree_read
from ._decode import decode_npy_bytes
from ._exceptions import FormatError, SafenpzError, Where
from ._jsonio import parse_json
from ._limits import Limits
from ._manifest import (
    MANIFEST,
    MAX_MANIFEST_CHARS,
    MAX_MANIFEST_MEMBER,
    check_manifest,
    check_members,
)
from ._preview import escape, preview
from ._ragged import RaggedArray
from ._sniff import is_npy
from ._zip import ZipArchive

__all__ = ["Layout", "NpzFile"]


if TYPE_CHECKING:  # a default (PEP 696) keeps a bare ``NpzFile`` valid
    import typing_extensions

    _M_co = typing_extensions.TypeVar("_M_co", covariant=True, default=Any)
else:
    _M_co = TypeVar("_M_co", covariant=True)


class NpzFile(Mapping[str, _M_co]):
    """A lazily decoded ``.npz`` archive, like the object :func:`numpy.load`
    returns: a read-only mapping from array names (without ``.npy``) to arrays,
    with ``.files``, ``close()`` and context-manager support.

    Members are decoded on access and not cached, as with NumPy. Names resolve
    exactly as in NumPy's ``NpzFile``: ``f[key]`` is the member named `key` if
    there is one, else the member ``key + ".npy"``; ``.files`` lists every
    member with a trailing ``.npy`` removed, in archive order (so an archive
    holding both ``x`` and ``x.npy`` lists ``x`` twice, and ``f["x"]`` is the
    member ``x``). A member is decoded when it starts with the ``.npy`` magic,
    whatever its name; reading any other member raises
    :class:`~safenpz.FormatError` (NumPy would return its raw bytes).

    Archives written by :func:`safenpz.save` (those with a ``__safenpz__.npy``
    manifest) map names through the manifest instead; see :class:`Layout`
    and :mod:`safenpz._save`.

    For type checkers the class is generic in its member type:
    :func:`safenpz.load_npz` returns ``NpzFile[numpy.ndarray]``, or with
    ``ragged=True`` ``NpzFile[numpy.ndarray | RaggedArray]``.
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        name: str,
        own_file: bool,
        limits: Limits,
        ragged: bool,
        encoding: str,
        read_layout: bool = True,
    ) -> None:
        self._ragged = ragged
        self._encoding = encoding
        self._limits = limits
        self._archive = ZipArchive(fileobj, name=name, own_file=own_file, limits=limits)
        self._name = self._archive.name
        # NumPy's ``files``: every member, ``.npy`` removed, duplicates kept
        raw = self._archive.raw_names
        self._np_files = [n[:-4] if n.endswith(".npy") else n for n in raw]
        self._np_file_set = frozenset(self._np_files)
        self._layout: Layout | None = None
        if read_layout:
            try:
                self._layout = Layout.read(self)
            except BaseException:
                self.close()
                raise

    # raw access -----------------------------------------------------------
    @property
    def _fileobj(self) -> IO[bytes] | None:
        archive = getattr(self, "_archive", None)
        return None if archive is None else archive.fileobj

    @property
    def raw_names(self) -> list[str]:
        """Names of the raw archive members, exactly as stored, in order."""
        return self._archive.raw_names

    def member_size(self, raw: str) -> int:
        """The inflated size the archive declares for the raw member `raw`."""
        return self._archive.member_size(raw)

    def resolve(self, key: str) -> str:
        """The raw member NumPy's ``NpzFile`` reads for ``f[key]``.

        Raises
        ------
        KeyError
            No member answers to `key`.
        """
        if key in self._archive:
            return key
        if key in self._np_file_set:
            return key + ".npy"
        held = self._files_preview()
        msg = f"{preview(key)} is not in {self._name}; it holds {held}"
        raise KeyError(msg)

    def read_member_bytes(self, raw: str) -> bytearray | memoryview:
        """Inflate the raw member `raw`, under the limits, and return its bytes."""
        return self._archive.read(raw)

    def read_npy(self, raw: str, *, ragged: bool | None = None) -> Any:
        """Decode the raw member `raw` as ``.npy``."""
        buf = self._archive.read(raw)
        where = Where(source=self._name, member=raw)
        if not is_npy(buf):
            msg = (
                f"not a .npy file (it starts with {preview(bytes(buf[:8]))}); "
                "safenpz only decodes .npy members (np.load would return the "
                "raw bytes)"
            )
            raise FormatError(msg, where=where)
        try:
            return decode_npy_bytes(
                buf,
                where=where,
                limits=self._limits,
                ragged=self._ragged if ragged is None else ragged,
                encoding=self._encoding,
            )
        except SafenpzError as err:  # say which archive, keep type and traceback
            _in_archive(err, self._name)
            raise

    # mapping --------------------------------------------------------------
    def _get_layout(self) -> Layout:
        if self._layout is None:
            msg = f"{self._name} was opened for raw access only"
            raise ValueError(msg)
        return self._layout

    def _files_preview(self) -> str:
        files = self.files
        shown = ", ".join(preview(f) for f in files[:20])
        more = f", ... ({len(files)} in all)" if len(files) > 20 else ""
        return f"[{shown}{more}]"

    @property
    def files(self) -> list[str]:
        """The array names, as in ``np.load(...).files``."""
        return self._get_layout().names()

    def __getitem__(self, key: str) -> _M_co:
        member: _M_co = self._get_layout().get(self, key)
        return member

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self._get_layout().names())

    def __contains__(self, key: object) -> bool:
        return self._get_layout().contains(self, key)

    def __repr__(self) -> str:
        return f"<safenpz.NpzFile {self._name!r} with arrays {self._files_preview()}>"

    def close(self) -> None:
        """Close the archive (and the file, if safenpz opened it)."""
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


def _in_archive(err: SafenpzError, source: str) -> None:
    """Give an error from inside a member (the pickle layer's do not know the
    archive) the archive's name as its ``source``, and escape its message."""
    if err.where.source is None:
        err.where = err.where.but(source=source)
    text = escape(err.where.render(err.message), limit=20_000)
    err.args = (text, *err.args[1:])


_MANIFEST_SUBJECT = "the safenpz manifest"


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
        where = Where(source=npz._name, member=member)
        check_members(raw, where)
        if npz.member_size(member) > MAX_MANIFEST_MEMBER:
            msg = f"{_MANIFEST_SUBJECT} is larger than {MAX_MANIFEST_MEMBER:,} bytes"
            raise FormatError(msg, where=where)
        doc_arr = npz.read_npy(member, ragged=False)
        if not (
            isinstance(doc_arr, np.ndarray)
            and doc_arr.shape == ()
            and doc_arr.dtype.kind == "U"
            and doc_arr.dtype.itemsize <= 4 * MAX_MANIFEST_CHARS
        ):
            msg = f"{_MANIFEST_SUBJECT} must be a 0-d unicode array of at most 1 MiB"
            raise FormatError(msg, where=where)
        doc = parse_json(str(doc_arr[()]), _MANIFEST_SUBJECT, where)
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
            return _read_tree(npz, name, entry)
        if entry["kind"] == "object_scalars":
            arr = npz.read_npy(f"{name}.npy", ragged=False)
            if not isinstance(arr, np.ndarray) or list(arr.shape) != entry["shape"]:
                msg = "the member does not match its manifest entry"
                where = Where(source=npz._name, member=f"{name}.npy")
                raise FormatError(msg, where=where)
            return arr.astype(object)
        ragged = _read_ragged(npz, name)
        if entry["kind"] == "ragged" or npz._ragged:
            return ragged
        if entry["rows"] == "ndarray":
            rows: list[Any] = list(ragged)
        elif entry["rows"] == "tuple":
            rows = list(map(tuple, ragged.to_lists()))
        else:
            rows = ragged.to_lists()
        return np.fromiter(rows, dtype=object, count=len(rows))


def _read_tree(npz: NpzFile, name: str, entry: dict[str, Any]) -> Any:
    """Decode the tree `name` (:mod:`safenpz._tree`)."""
    table = f"{name}.tree.npy"

    def read(stem: str) -> Any:
        raw = stem + ".npy"
        if raw == table and raw in npz.raw_names:
            # refuse an oversized node table before inflating it: UTF-8
            # takes at most 4 bytes per character, plus the .npy header
            cap = 4 * _tree.MAX_TABLE_BYTES + 65536
            size = npz.member_size(raw)
            if size > cap:
                msg = (
                    f"the node table of {preview(name)} declares {size:,} bytes, "
                    f"more than a table safenpz.save writes (at most {cap:,})"
                )
                raise FormatError(msg, where=Where(source=npz._name, member=raw))
        return npz.read_npy(raw, ragged=False)

    return _tree_read.decode(name, entry, read, npz._limits, Where(source=npz._name))


def _read_ragged(npz: NpzFile, name: str) -> RaggedArray:
    """The ``values`` + ``offsets`` members of `name`, checked as a layout."""
    values = npz.read_npy(f"{name}.values.npy", ragged=False)
    offsets = npz.read_npy(f"{name}.offsets.npy", ragged=False)
    bad = None
    if not (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and values.dtype.kind in "biufc"
    ):
        bad = "values"
    elif not (
        isinstance(offsets, np.ndarray)
        and offsets.ndim == 1
        and offsets.dtype.kind in "iu"
    ):
        bad = "offsets"
    where = Where(source=npz._name, member=f"{name}.{bad or 'offsets'}.npy")
    if bad is not None:
        msg = "values must be 1-D numeric and offsets 1-D integers"
        raise FormatError(msg, where=where)
    try:
        return RaggedArray(values, offsets.astype(np.int64, copy=False))
    except FormatError as err:  # bad offsets: say where they are
        raise FormatError(err.message, where=where) from err
