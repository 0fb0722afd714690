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
import itertools
import os
import threading
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, Self, TypeVar

import numpy as np

from ._exceptions import FormatError, SafenpzError
from ._header import Header, check_data_size, parse_header
from ._limits import DEFAULT_LIMITS, RATIO_GRACE_BYTES, Limits
from ._preview import escape
from ._preview import preview as _preview
from ._sniff import ZIP_END as _EOCD
from ._sniff import is_npy, is_zip_local, sniff
from ._unpickle import safe_loads

if TYPE_CHECKING:
    from ._save import Layout

__all__ = ["NpzFile", "load", "parse_header"]

_CHUNK = 1 << 20


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


# --------------------------------------------------------------------------
# zip archives


def _inflate_member(
    fp: IO[bytes],
    info: zipfile.ZipInfo,
    lim: Limits,
    where: str,
    end: int | None = None,
) -> bytearray:
    """Read one member's raw data and inflate it in bounded steps.

    Unlike :meth:`zipfile.ZipFile.open`, this insists that the deflate stream
    ends exactly where the member's compressed data ends and yields exactly the
    declared size, so no hidden data can follow a member. `end` is where the
    next member (or the central directory) starts: the data, placed after the
    local header's own name and extra field, must end before it (a long local
    extra field is the other way to make members overlap).
    """
    fp.seek(info.header_offset)
    local = fp.read(30)
    if len(local) != 30 or not is_zip_local(local):
        msg = f"{where}: bad local file header at byte {info.header_offset}"
        raise FormatError(msg)
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    raw_name = fp.read(name_len)
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if raw_name.decode(encoding, "replace") != info.orig_filename:
        msg = f"{where}: the local header names {raw_name!r} instead"
        raise FormatError(msg)
    fp.seek(extra_len, io.SEEK_CUR)
    data_end = info.header_offset + 30 + name_len + extra_len + info.compress_size
    if end is not None and data_end > end:
        msg = (
            f"{where}: its data (after a {extra_len}-byte local extra field) "
            f"runs to byte {data_end}, past the start of the next record at "
            f"byte {end}: members overlap (a zip-bomb construction)"
        )
        raise FormatError(msg)
    remaining = info.compress_size
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    inflater = zlib.decompressobj(-15)
    out = bytearray()
    crc = 0
    compressed = max(info.compress_size, 1)
    while remaining > 0:
        chunk = fp.read(min(_CHUNK, remaining))
        if not chunk:
            msg = f"{where} is truncated: {remaining} compressed bytes missing"
            raise FormatError(msg)
        remaining -= len(chunk)
        while chunk:
            if deflated:
                piece = inflater.decompress(chunk, _CHUNK)
                chunk = inflater.unconsumed_tail
            else:
                piece, chunk = chunk, b""
            out += piece
            crc = zlib.crc32(piece, crc)
            lim.check("max_member_bytes", len(out), where)
            if len(out) > info.file_size:
                msg = f"{where} inflates past its declared {info.file_size} bytes"
                raise FormatError(msg)
            if len(out) > RATIO_GRACE_BYTES:
                ratio = round(len(out) / compressed)
                lim.check("max_ratio", ratio, f"{where} compression ratio")
            if deflated and inflater.eof:
                break
    if deflated and (not inflater.eof or inflater.unused_data or remaining):
        msg = f"{where}: the deflate stream does not end where the member ends"
        raise FormatError(msg)
    if len(out) != info.file_size:
        msg = f"{where} is truncated: {len(out)} of {info.file_size} bytes"
        raise FormatError(msg)
    if crc != info.CRC:
        msg = f"{where}: CRC-32 mismatch (the data is corrupted)"
        raise FormatError(msg)
    return out


def _check_archive(zf: zipfile.ZipFile, size: int, tail: bytes, name: str) -> None:
    """Structural hygiene of a whole archive (see the module docstring)."""
    pos = tail.rfind(_EOCD)
    if pos < 0 or pos + 22 > len(tail):
        raise _fail(name, "no zip end-of-central-directory record")
    comment_len = int.from_bytes(tail[pos + 20 : pos + 22], "little")
    extra = len(tail) - (pos + 22 + comment_len)
    if extra > 0:
        raise _fail(name, f"{extra} bytes of trailing data after the zip archive")
    cd_size = int.from_bytes(tail[pos + 12 : pos + 16], "little")
    cd_offset = int.from_bytes(tail[pos + 16 : pos + 20], "little")
    eocd_at = size - len(tail) + pos
    if cd_offset != 0xFFFFFFFF and cd_offset + cd_size != eocd_at:
        raise _fail(
            name,
            f"the central directory ({cd_offset}+{cd_size}) does not end at the end "
            f"record (byte {eocd_at}): data is hidden in the archive",
        )
    infos = zf.infolist()
    if not infos and size > 22 + comment_len:
        raise _fail(name, f"{size} bytes but no members: not a plain zip archive")
    seen: set[str] = set()
    for info in infos:
        fname = info.filename
        if fname in seen:
            raise _fail(
                name,
                f"duplicate member name {fname!r}; refusing to guess which one "
                "is meant",
            )
        seen.add(fname)
        parts = fname.replace("\\", "/").split("/")
        if (
            fname.startswith(("/", "\\"))
            or ".." in parts
            or "\x00" in fname
            or (len(fname) > 1 and fname[1] == ":")
        ):
            raise _fail(name, f"unsafe member name {fname!r} (absolute path or '..')")
    ordered = sorted(infos, key=lambda i: i.header_offset)
    if ordered and ordered[0].header_offset != 0:
        raise _fail(
            name,
            f"{ordered[0].header_offset} unexpected bytes before the first zip member",
        )
    for this, nxt in itertools.pairwise(ordered):
        end = (
            this.header_offset
            + 30
            + len(this.orig_filename.encode("utf-8", "replace"))
            + this.compress_size
        )
        if nxt.header_offset < end:
            raise _fail(
                name,
                f"members {this.filename!r} and {nxt.filename!r} overlap in the "
                "archive (a zip-bomb construction)",
            )


def _unreadable_zip(fileobj: IO[bytes], err: Exception) -> str:
    msg = f"not a readable zip archive ({err})"
    with contextlib.suppress(OSError, ValueError):
        fileobj.seek(0)
        if is_zip_local(fileobj.read(4)):  # starts as a zip, its end is bad
            msg += (
                "; the file starts like a .npz archive but its end (the zip "
                "directory) is missing or damaged: it is probably truncated, "
                "e.g. an incomplete download or copy. Download or copy it again"
            )
    return msg


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
        self._fileobj: IO[bytes] | None = fileobj
        self._own = own_file
        self._name = name = escape(name)
        self._limits = limits
        self._ragged = ragged
        self._encoding = encoding
        self._inflated: dict[str, int] = {}
        self._inflated_total = 0
        self._lock = threading.Lock()  # members share one file position
        try:
            fileobj.seek(0, io.SEEK_END)
            size = fileobj.tell()
            fileobj.seek(max(0, size - (65536 + 22)))
            tail = fileobj.read()
            fileobj.seek(0)
            self._zip = zipfile.ZipFile(fileobj)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
            UnicodeDecodeError,
        ) as err:
            msg = _unreadable_zip(fileobj, err)
            self.close()
            raise _fail(name, msg) from err
        try:
            _check_archive(self._zip, size, tail, name)
        except FormatError:
            self.close()
            raise
        # raw member name -> info; names are unique (checked above)
        self._infos: dict[str, zipfile.ZipInfo] = {
            info.filename: info for info in self._zip.infolist()
        }
        # where each member's data must end: the next local header, or the
        # central directory after the last one
        ordered = sorted(self._infos.values(), key=lambda i: i.header_offset)
        starts = [i.header_offset for i in ordered[1:]] + [self._zip.start_dir]
        self._ends = {i.filename: e for i, e in zip(ordered, starts, strict=False)}
        # NumPy's ``files``: every member, ``.npy`` removed, duplicates kept
        self._np_files = [n[:-4] if n.endswith(".npy") else n for n in self._infos]
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
    def raw_names(self) -> list[str]:
        """Names of the raw archive members, exactly as stored, in order."""
        return list(self._infos)

    def member_size(self, raw: str) -> int:
        """The inflated size the archive declares for the raw member `raw`."""
        return int(self._infos[raw].file_size)

    def resolve(self, key: str) -> str:
        """The raw member NumPy's ``NpzFile`` reads for ``f[key]``.

        Raises
        ------
        KeyError
            No member answers to `key`.
        """
        if key in self._infos:
            return key
        if key in self._np_file_set:
            return key + ".npy"
        held = self._files_preview()
        msg = f"{_preview(key)} is not in {self._name}; it holds {held}"
        raise KeyError(msg)

    def read_member_bytes(self, raw: str) -> bytearray:
        """Inflate the raw member `raw`, under the limits, and return its bytes."""
        info = self._infos[raw]
        where = f"{self._name}: member {_preview(info.filename)}"
        lim = self._limits
        if info.flag_bits & 0x1:
            msg = f"{where} is encrypted; safenpz does not read encrypted archives"
            raise FormatError(msg)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            msg = (
                f"{where} uses compression method {info.compress_type}; NumPy "
                "writes only stored or deflated members"
            )
            raise FormatError(msg)
        lim.check("max_member_bytes", info.file_size, f"{where} (declared size)")
        if self._fileobj is None:
            msg = f"{self._name} is closed"
            raise ValueError(msg)
        try:
            with self._lock:
                out = _inflate_member(
                    self._fileobj, info, lim, where, self._ends.get(raw)
                )
        except (OSError, EOFError, ValueError, zlib.error) as err:
            if isinstance(err, SafenpzError):
                raise
            msg = f"{where} is damaged ({type(err).__name__}: {err})"
            raise FormatError(msg) from err
        # a running total: reading n members stays linear in n
        self._inflated_total += len(out) - self._inflated.get(raw, 0)
        self._inflated[raw] = len(out)
        lim.check(
            "max_total_bytes",
            self._inflated_total,
            f"{self._name}: members read so far",
        )
        return out

    def read_npy(self, raw: str, *, ragged: bool | None = None) -> Any:
        """Decode the raw member `raw` as ``.npy``."""
        info = self._infos[raw]
        buf = self.read_member_bytes(raw)
        if not is_npy(buf):
            msg = (
                f"{self._name}: member {_preview(info.filename)} is not a .npy "
                f"file (it starts with {_preview(bytes(buf[:8]))}); safenpz only "
                "decodes .npy members (np.load would return the raw bytes)"
            )
            raise FormatError(msg)
        try:
            return decode_npy_bytes(
                buf,
                member=_preview(info.filename, quote=False),
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
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        if self._own and self._fileobj is not None:
            self._fileobj.close()
        self._fileobj = None

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
