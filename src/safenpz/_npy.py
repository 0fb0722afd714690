"""Reading ``.npy`` and ``.npz`` files safely.

The ``.npy`` format (NumPy's ``format`` module is the reference)::

    b"\\x93NUMPY" major minor  header_len  header  data
                  1 byte 1 byte  2 bytes (v1) / 4 bytes (v2, v3), little endian

``header`` is the text of a Python dict with exactly the keys ``descr``,
``fortran_order`` and ``shape``, padded with spaces and ending in ``\\n``
(latin-1 in v1/v2, UTF-8 in v3). For a numeric dtype, ``data`` is exactly
``prod(shape) * itemsize`` bytes; for ``dtype=object`` it is a pickle stream of
the whole array, which safenpz decodes with its own closed table
(:mod:`safenpz._unpickle`) or, for object arrays of integer lists, straight to
values + offsets (:mod:`safenpz._fastrows`).

An ``.npz`` is a zip archive of ``.npy`` members (stored or deflated). Before a
member is read, the archive must pass these checks, each failing with
:class:`~safenpz.FormatError`: the end record is at the very end (no trailing
data), the first member starts at byte 0 (no prepended data), no two members
have the same name, no name is absolute or contains ``..``, and no member's
data overlaps the next one (the overlapping-entries zip bomb). A member is
refused when it is encrypted or compressed with anything but deflate, when it
inflates past ``max_member_bytes`` or (past 16 MiB) ``max_ratio``, and the
archive when the members read inflate past ``max_total_bytes``. Inflation is
streamed in 1 MiB steps, so memory never follows what a header claims.

Decisions: bytes after the array data (or after the pickle's ``STOP``) are an
error, not ignored; members whose name does not end in ``.npy`` are listed but
reading them raises :class:`~safenpz.FormatError`; a bare pickle file (what
``np.load(allow_pickle=True)`` also reads) is decoded with the same table.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, Self, TypeVar

import numpy as np

from ._exceptions import FormatError, SafenpzError
from ._header import Header, check_data_size, parse_header
from ._limits import DEFAULT_LIMITS, Limits
from ._preview import escape
from ._preview import preview as _preview
from ._sniff import is_npy, sniff
from ._unpickle import safe_loads
from ._zip import CHUNK as _CHUNK
from ._zip import ZipArchive

if TYPE_CHECKING:
    from ._save import Layout

__all__ = ["NpzFile", "load", "parse_header"]


def _fail(member: str, msg: str) -> FormatError:
    return FormatError(f"{member}: {msg}")


FileLike = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def _decode_object(
    body: memoryview,
    header: Header,
    *,
    member: str,
    limits: Limits,
    ragged: bool,
    encoding: str,
) -> Any:
    limits.check("max_items", header.count, f"{member}: object array")
    from ._fastrows import decode_int_rows
    from ._ragged import RaggedArray

    fast = decode_int_rows(body) if header.dtype == np.dtype(object) else None
    if fast is not None and fast.shape == header.shape:
        # rows shared through the memo are expanded: bound what that can cost
        limits.check("max_items", fast.values.size, f"{member}: decoded values")
        if ragged and len(header.shape) == 1:
            return RaggedArray(fast.values, fast.offsets, validate=False)
        return fast.to_object_array()
    obj = safe_loads(
        body,
        member=member,
        max_depth=limits.max_depth,
        max_items=limits.max_items,
        encoding=encoding,
    )
    if (
        not isinstance(obj, np.ndarray)
        or obj.dtype != header.dtype
        or obj.shape != header.shape
    ):
        what = (
            f"an array of shape {obj.shape} and dtype {obj.dtype}"
            if isinstance(obj, np.ndarray)
            else f"a {type(obj).__name__}"
        )
        raise _fail(
            member,
            f"the header promises an array of shape {header.shape} and dtype "
            f"{header.dtype}, "
            f"the pickle holds {what}",
        )
    if ragged and obj.ndim == 1 and obj.dtype == np.dtype(object):
        return _maybe_ragged(obj, limits, member)
    return obj


def _maybe_ragged(obj: np.ndarray[Any, Any], limits: Limits, member: str) -> Any:
    """Turn a 1-D object array of numeric rows into a RaggedArray, else keep it."""
    from ._ragged import RaggedArray

    rows = obj.tolist()
    if not all(isinstance(r, list | tuple | np.ndarray) for r in rows):
        return obj
    # shared rows are expanded by the conversion: bound what that can cost
    limits.check("max_items", sum(map(len, rows)), f"{member}: ragged values")
    try:
        ragged = RaggedArray.from_lists(obj)
    except (SafenpzError, TypeError, ValueError, OverflowError):
        return obj
    if ragged.values.dtype.kind not in "biufc":
        return obj
    return ragged


def decode_npy_bytes(
    buf: bytes | bytearray | memoryview,
    *,
    member: str = "<npy>",
    limits: Limits = DEFAULT_LIMITS,
    ragged: bool = False,
    encoding: str = "latin1",
) -> Any:
    """Decode one complete ``.npy`` image held in memory."""
    header = parse_header(buf, member=member, limits=limits)
    view = memoryview(buf)
    body = view[header.data_offset :]
    if header.dtype.hasobject:
        return _decode_object(
            body, header, member=member, limits=limits, ragged=ragged, encoding=encoding
        )
    # the data is already in memory (inflated under the limits): only its size
    # must match the header, then the array is a view of it
    check_data_size(member, header, len(body))
    if header.dtype.itemsize == 0:
        return _zero_width(header, limits, member)
    arr = np.frombuffer(
        view, dtype=header.dtype, count=header.count, offset=header.data_offset
    )
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr.reshape(header.shape, order="F" if header.fortran_order else "C")


def _zero_width(header: Header, limits: Limits, member: str) -> np.ndarray[Any, Any]:
    """An array of a zero-width dtype (``S0``, ``U0``, ``V0``): empty items.

    It holds no data, so its element count is bounded by ``max_items`` instead
    (a tiny file could otherwise claim billions of them)."""
    limits.check("max_items", header.count, f"{member}: zero-width array")
    # np.ndarray, not np.empty: np.empty widens S0 to S1 (uninitialised bytes)
    order: Literal["F", "C"] = "F" if header.fortran_order else "C"
    return np.ndarray(header.shape, dtype=header.dtype, order=order)


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
    manifest) map names through the manifest instead; see
    :mod:`safenpz._save`.

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
            from ._save import Layout

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
        msg = f"{_preview(key)} is not in {self._name}; it holds {held}"
        raise KeyError(msg)

    def read_member_bytes(self, raw: str) -> bytearray:
        """Inflate the raw member `raw`, under the limits, and return its bytes."""
        return self._archive.read(raw)

    def read_npy(self, raw: str, *, ragged: bool | None = None) -> Any:
        """Decode the raw member `raw` as ``.npy``."""
        buf = self._archive.read(raw)
        if not is_npy(buf):
            msg = (
                f"{self._name}: member {_preview(raw)} is not a .npy "
                f"file (it starts with {_preview(bytes(buf[:8]))}); safenpz only "
                "decodes .npy members (np.load would return the raw bytes)"
            )
            raise FormatError(msg)
        try:
            return decode_npy_bytes(
                buf,
                member=_preview(raw, quote=False),
                limits=self._limits,
                ragged=self._ragged if ragged is None else ragged,
                encoding=self._encoding,
            )
        except SafenpzError as err:  # say which archive, keep type and traceback
            if err.args and isinstance(err.args[0], str):
                text = escape(f"{self._name}: {err.args[0]}", limit=20_000)
                err.args = (text, *err.args[1:])
            raise

    # mapping --------------------------------------------------------------
    def _get_layout(self) -> Layout:
        if self._layout is None:
            msg = f"{self._name} was opened for raw access only"
            raise ValueError(msg)
        return self._layout

    def _files_preview(self) -> str:
        files = self.files
        shown = ", ".join(_preview(f) for f in files[:20])
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


# --------------------------------------------------------------------------
# the public entry point


def _read_capped(
    fp: IO[bytes], cap: int, what: str, limits: Limits, name: str
) -> bytes:
    """Read to the end, at most `cap` bytes, in 1 MiB steps: memory follows
    what the file has, never the limit (``fp.read(cap)`` may allocate `cap`
    bytes up front)."""
    parts: list[bytes] = []
    got = 0
    while True:
        chunk = fp.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        got += len(chunk)
        limits.check(what, got, name)
        parts.append(chunk)


def load(
    file: FileLike,
    *,
    mmap_mode: Literal["r", "r+", "c"] | None = None,
    ragged: bool = False,
    encoding: Literal["latin1", "bytes", "ASCII"] = "latin1",
    max_header_size: int = DEFAULT_LIMITS.max_header_size,
    max_member_bytes: int = DEFAULT_LIMITS.max_member_bytes,
    max_total_bytes: int = DEFAULT_LIMITS.max_total_bytes,
    max_ratio: float = DEFAULT_LIMITS.max_ratio,
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
) -> Any:
    """Load a ``.npy``, ``.npz`` or pickle file without running code from it.

    A drop-in for :func:`numpy.load` on files that hold object arrays (the
    ones ``np.load`` refuses without ``allow_pickle=True``): object members are
    decoded through safenpz's closed table of constructors, so a tampered file
    can at worst be refused, never run code.

    Parameters
    ----------
    file : path, bytes or binary file object
        What to read. A file object must be open in binary mode; it is not
        closed by safenpz.
    mmap_mode : {None, "r", "r+", "c"}
        Memory-map a numeric ``.npy`` file given by path (as NumPy does;
        ignored for ``.npz``).
    ragged : bool
        Return 1-D object arrays of numeric rows as
        :class:`~safenpz.RaggedArray` (values + offsets) instead of object
        arrays of lists; other object arrays are returned unchanged.
    encoding : {"latin1", "bytes", "ASCII"}
        How Python 2 ``str`` objects in old pickles are decoded.
    max_header_size, max_member_bytes, max_total_bytes, max_ratio, max_depth, max_items
        Safety limits, see :class:`safenpz._limits.Limits`; raise one when a
        trusted file legitimately exceeds it.

    Returns
    -------
    numpy.ndarray, RaggedArray, NpzFile or object
        An array for ``.npy``; an :class:`NpzFile` mapping for ``.npz`` (use it
        as a context manager); the decoded plain data for a pickle file.

    Raises
    ------
    UnsafeFileError
        The file needs code execution or a global outside safenpz's table.
    FormatError
        The file is malformed, truncated or inconsistent.
    LimitError
        A safety limit was hit; the message names the keyword to raise it.
    FileNotFoundError, IsADirectoryError, PermissionError
        The path cannot be opened.

    Examples
    --------
    >>> import io, numpy as np, safenpz
    >>> buf = io.BytesIO()
    >>> np.save(buf, np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    >>> safenpz.load(buf.getvalue())
    array([list([1, 2]), list([3])], dtype=object)
    >>> safenpz.load(buf.getvalue(), ragged=True).to_lists()
    [[1, 2], [3]]
    """
    limits = Limits(
        max_header_size,
        max_member_bytes,
        max_total_bytes,
        max_ratio,
        max_depth,
        max_items,
    )
    if encoding not in ("latin1", "bytes", "ASCII"):
        msg = f"encoding must be 'latin1', 'bytes' or 'ASCII', not {encoding!r}"
        raise ValueError(msg)
    if mmap_mode not in (None, "r", "r+", "c"):
        msg = f"mmap_mode must be None, 'r', 'r+' or 'c', not {mmap_mode!r}"
        raise ValueError(msg)
    opts: dict[str, Any] = {"limits": limits, "ragged": ragged, "encoding": encoding}
    if isinstance(file, bytes | bytearray | memoryview):
        return _load_stream(io.BytesIO(bytes(file)), name="<bytes>", own=True, **opts)
    if isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        fp = open(path, "rb")  # noqa: SIM115 - NpzFile owns it
        try:
            return _load_stream(
                fp, name=path, own=True, mmap_mode=mmap_mode, path=path, **opts
            )
        except BaseException:
            fp.close()
            raise
    if isinstance(file, io.TextIOBase):
        msg = "the file object is open in text mode; open it in binary mode ('rb')"
        raise TypeError(msg)
    if not hasattr(file, "read"):
        msg = (
            "file must be a path, bytes or a binary file object, not "
            f"{type(file).__name__}"
        )
        raise TypeError(msg)
    name = str(getattr(file, "name", "<stream>"))
    stream: IO[bytes] = file
    if not (hasattr(stream, "seekable") and stream.seekable()):
        stream = io.BytesIO(
            _read_capped(
                stream, limits.max_total_bytes, "max_total_bytes", limits, name
            )
        )
    return _load_stream(stream, name=name, own=False, **opts)


def _load_stream(fp: IO[bytes], **kwargs: Any) -> Any:
    """:func:`_load_stream_unescaped`, with every error message escaped: a
    file's names (members, globals) never bring control characters to a
    terminal."""
    try:
        return _load_stream_unescaped(fp, **kwargs)
    except SafenpzError as err:
        if err.args and isinstance(err.args[0], str):
            err.args = (escape(err.args[0], limit=20_000), *err.args[1:])
        raise


def _load_stream_unescaped(
    fp: IO[bytes],
    *,
    name: str,
    own: bool,
    limits: Limits,
    ragged: bool,
    encoding: str,
    mmap_mode: str | None = None,
    path: str | None = None,
) -> Any:
    start = fp.tell()
    magic = fp.read(6)
    fp.seek(start)
    if not isinstance(magic, bytes):
        msg = f"{name}: the file object must be opened in binary mode"
        raise TypeError(msg)
    kind = sniff(magic)
    if kind == "npz":
        if start:
            fp = io.BytesIO(
                _read_capped(
                    fp, limits.max_total_bytes, "max_total_bytes", limits, name
                )
            )
        return NpzFile(
            fp, name=name, own_file=own, limits=limits, ragged=ragged, encoding=encoding
        )
    try:
        if kind == "npy":
            return _load_npy_stream(
                fp,
                name=name,
                limits=limits,
                ragged=ragged,
                encoding=encoding,
                mmap_mode=mmap_mode,
                path=path,
                start=start,
            )
        if kind == "pickle":
            data = _read_capped(
                fp, limits.max_member_bytes, "max_member_bytes", limits, name
            )
            return safe_loads(
                data,
                member=name,
                max_depth=limits.max_depth,
                max_items=limits.max_items,
                encoding=encoding,
            )
        raise _fail(
            name,
            f"not a .npy, .npz or pickle file (it starts with {magic!r}); check "
            "the path and that the download completed",
        )
    finally:
        if own:
            fp.close()


def _load_npy_stream(
    fp: IO[bytes],
    *,
    name: str,
    limits: Limits,
    ragged: bool,
    encoding: str,
    mmap_mode: str | None,
    path: str | None,
    start: int,
) -> Any:
    prefix = fp.read(12 + limits.max_header_size)
    header = parse_header(prefix, member=name, limits=limits)
    fp.seek(0, io.SEEK_END)
    available = fp.tell() - start - header.data_offset
    if header.dtype.hasobject:
        if mmap_mode is not None:
            msg = (
                f"{name}: an object array cannot be memory-mapped; pass mmap_mode=None"
            )
            raise ValueError(msg)
        limits.check("max_member_bytes", available, f"{name}: pickled data")
        fp.seek(start)
        buf = fp.read(header.data_offset + available)
        return decode_npy_bytes(
            buf, member=name, limits=limits, ragged=ragged, encoding=encoding
        )
    # The data must be in the file, byte for byte, before anything is allocated:
    # memory is then bounded by the file's real size, not by what the header
    # claims, so max_member_bytes (a guard against inflation) is not applied and
    # large numeric .npy files load (or memory-map) as with NumPy.
    check_data_size(name, header, available)
    if header.dtype.itemsize == 0:
        return _zero_width(header, limits, name)
    order: Literal["F", "C"] = "F" if header.fortran_order else "C"
    if mmap_mode is not None and path is not None:
        return np.memmap(
            path,
            dtype=header.dtype,
            mode=mmap_mode,  # type: ignore[call-overload]
            offset=start + header.data_offset,
            shape=header.shape,
            order=order,
        )
    fp.seek(start + header.data_offset)
    arr = np.empty(header.shape, dtype=header.dtype, order=order)
    target = arr.ravel(order="A").view(np.uint8).data if arr.size else memoryview(b"")
    got = 0
    readinto = getattr(fp, "readinto", None)
    while got < header.nbytes:
        window = target[got : got + _CHUNK]
        if readinto is not None:
            n = readinto(window)
        else:  # minimal file objects: read() + copy
            piece = fp.read(len(window))
            n = len(piece)
            window[:n] = piece
        if not n:
            raise _fail(name, f"truncated: read {got} of {header.nbytes} bytes")
        got += n
    return arr
