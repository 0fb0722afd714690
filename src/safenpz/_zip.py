"""The zip container of ``.npz`` files: archive hygiene and bounded inflation.

An ``.npz`` is a zip archive of ``.npy`` members (stored or deflated). Before a
member is read, the archive must pass these checks, each failing with
:class:`~safenpz.FormatError`:

- the end record is at the very end (no trailing data) and the central
  directory ends right before it (no hidden data);
- the first member starts at byte 0 (no prepended data);
- no two members have the same name, and no name is absolute or contains
  ``..`` (or a NUL, or a drive letter);
- no member's data overlaps the next one (the overlapping-entries zip bomb),
  counting its local header's own name and extra field.

A member is refused when it is encrypted or compressed with anything but
deflate, when it inflates past ``max_member_bytes`` or (past 16 MiB)
``max_ratio``, and the archive when the members read inflate past
``max_total_bytes``. Inflation is streamed in 1 MiB steps, so memory never
follows what a header claims; the deflate stream must end exactly where the
member's data ends and yield exactly the declared size and CRC-32.

This module knows nothing of ``.npy`` or pickle: :class:`ZipArchive` hands out
raw member bytes, :class:`safenpz.NpzFile` decodes them.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Self

import numpy as np

from ._exceptions import FormatError, SafenpzError, Where
from ._limits import RATIO_GRACE_BYTES, Limits
from ._preview import escape
from ._sniff import ZIP_END, is_zip_local

__all__ = ["CHUNK", "ZipArchive"]

#: Size of one read or inflation step.
CHUNK = 1 << 20
_LOCAL_HEADER_SIZE = 30
_END_RECORD_SIZE = 22
_ZIP64_OFFSET = 0xFFFFFFFF
_ENCRYPTED = 0x1
_UTF8_NAMES = 0x800
_OPEN_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    UnicodeDecodeError,
)


def _fail(name: str, msg: str) -> FormatError:
    """An error about the archive `name` as a whole."""
    return FormatError(msg, where=Where(source=name))


class ZipArchive:
    """A zip archive that passed the hygiene checks; members are read raw,
    one at a time, under the limits.

    Parameters
    ----------
    fileobj : binary file object
        Seekable, positioned anywhere; the archive must start at byte 0.
    name : str
        Used in error messages (escaped here).
    own_file : bool
        Close `fileobj` on :meth:`close` (and when opening fails).
    limits : Limits
        ``max_member_bytes``, ``max_ratio`` and ``max_total_bytes`` apply.
    """

    def __init__(
        self, fileobj: IO[bytes], *, name: str, own_file: bool, limits: Limits
    ) -> None:
        self.fileobj: IO[bytes] | None = fileobj
        self._own = own_file
        self.name = name = escape(name)
        self._limits = limits
        self._zip: zipfile.ZipFile | None = None
        self._inflated: dict[str, int] = {}
        self._inflated_total = 0
        self._lock = threading.Lock()  # members share one file position
        try:
            fileobj.seek(0, io.SEEK_END)
            size = fileobj.tell()
            fileobj.seek(max(0, size - (65536 + _END_RECORD_SIZE)))
            tail = fileobj.read()
            fileobj.seek(0)
            self._zip = zipfile.ZipFile(fileobj)
        except _OPEN_ERRORS as err:
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

    @property
    def raw_names(self) -> list[str]:
        """Names of the members, exactly as stored, in archive order."""
        return list(self._infos)

    def __contains__(self, raw: object) -> bool:
        return raw in self._infos

    def member_size(self, raw: str) -> int:
        """The inflated size the archive declares for the member `raw`."""
        return int(self._infos[raw].file_size)

    def read(self, raw: str) -> bytearray | memoryview:
        """Inflate the member `raw`, under the limits, and return its bytes."""
        info = self._infos[raw]
        where = Where(source=self.name, member=info.filename)
        lim = self._limits
        _check_method(info, where)
        lim.check("max_member_bytes", info.file_size, where, what="declared size")
        if self.fileobj is None:
            msg = f"{self.name} is closed"
            raise ValueError(msg)
        try:
            with self._lock:
                out = _inflate_member(
                    self.fileobj, info, lim, where, self._ends.get(raw)
                )
        except (OSError, EOFError, ValueError, zlib.error) as err:
            if isinstance(err, SafenpzError):
                raise
            msg = f"damaged ({type(err).__name__}: {err})"
            raise FormatError(msg, where=where) from err
        # a running total: reading n members stays linear in n
        self._inflated_total += len(out) - self._inflated.get(raw, 0)
        self._inflated[raw] = len(out)
        lim.check(
            "max_total_bytes",
            self._inflated_total,
            Where(source=self.name),
            what="members read so far",
        )
        return out

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive (and the file, if it is owned)."""
        if self._zip is not None:
            self._zip.close()
        if self._own and self.fileobj is not None:
            self.fileobj.close()
        self.fileobj = None


def _check_method(info: zipfile.ZipInfo, where: Where) -> None:
    if info.flag_bits & _ENCRYPTED:
        msg = "encrypted; safenpz does not read encrypted archives"
        raise FormatError(msg, where=where)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        msg = (
            f"compression method {info.compress_type}; NumPy writes only "
            "stored or deflated members"
        )
        raise FormatError(msg, where=where)


def _inflate_member(
    fp: IO[bytes],
    info: zipfile.ZipInfo,
    lim: Limits,
    where: Where,
    end: int | None = None,
) -> bytearray | memoryview:
    """Read one member's raw data and inflate it in bounded steps.

    Unlike :meth:`zipfile.ZipFile.open`, this insists that the deflate stream
    ends exactly where the member's compressed data ends and yields exactly the
    declared size, so no hidden data can follow a member. `end` is where the
    next member (or the central directory) starts: the data, placed after the
    local header's own name and extra field, must end before it (a long local
    extra field is the other way to make members overlap).
    """
    _seek_data(fp, info, where, end)
    out, crc, remaining, inflater = _inflate(fp, info, lim, where)
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    if deflated and (not inflater.eof or inflater.unused_data or remaining):
        msg = "the deflate stream does not end where the member ends"
        raise FormatError(msg, where=where)
    if len(out) != info.file_size:
        msg = f"truncated: {len(out)} of {info.file_size} bytes"
        raise FormatError(msg, where=where)
    if crc != info.CRC:
        msg = "CRC-32 mismatch (the data is corrupted)"
        raise FormatError(msg, where=where)
    return out


def _seek_data(
    fp: IO[bytes], info: zipfile.ZipInfo, where: Where, end: int | None
) -> None:
    """Check the member's local header and move `fp` to its data."""
    fp.seek(info.header_offset)
    local = fp.read(_LOCAL_HEADER_SIZE)
    if len(local) != _LOCAL_HEADER_SIZE or not is_zip_local(local):
        msg = f"bad local file header at byte {info.header_offset}"
        raise FormatError(msg, where=where)
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    raw_name = fp.read(name_len)
    encoding = "utf-8" if info.flag_bits & _UTF8_NAMES else "cp437"
    if raw_name.decode(encoding, "replace") != info.orig_filename:
        msg = f"the local header names {raw_name!r} instead"
        raise FormatError(msg, where=where)
    fp.seek(extra_len, io.SEEK_CUR)
    data_end = (
        info.header_offset
        + _LOCAL_HEADER_SIZE
        + name_len
        + extra_len
        + info.compress_size
    )
    if end is not None and data_end > end:
        msg = (
            f"its data (after a {extra_len}-byte local extra field) runs to "
            f"byte {data_end}, past the start of the next record at byte "
            f"{end}: members overlap (a zip-bomb construction)"
        )
        raise FormatError(msg, where=where)


def _inflate(
    fp: IO[bytes], info: zipfile.ZipInfo, lim: Limits, where: Where
) -> tuple[bytearray | memoryview, int, int, zlib._Decompress]:
    """Inflate from `fp` in bounded steps, checking the limits after each:
    the bytes, their CRC-32, the compressed bytes left unread, the inflater."""
    remaining = info.compress_size
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    inflater = zlib.decompressobj(-15)
    if not deflated and remaining == info.file_size and _holds(fp, remaining):
        stored, crc, remaining = _read_stored(fp.readinto, info, lim, where)  # type: ignore[attr-defined]
        return stored, crc, remaining, inflater
    out = bytearray()
    crc = 0
    compressed = max(info.compress_size, 1)
    while remaining > 0:
        chunk = fp.read(min(CHUNK, remaining))
        if not chunk:
            msg = f"truncated: {remaining} compressed bytes missing"
            raise FormatError(msg, where=where)
        remaining -= len(chunk)
        while chunk:
            if deflated:
                piece = inflater.decompress(chunk, CHUNK)
                chunk = inflater.unconsumed_tail
            else:
                piece, chunk = chunk, b""
            out += piece
            crc = zlib.crc32(piece, crc)
            _check_growth(len(out), compressed, info, lim, where)
            if deflated and inflater.eof:
                break
    return out, crc, remaining, inflater


def _holds(fp: IO[bytes], size: int) -> bool:
    """Whether `size` bytes are in `fp` after its position, and it can read
    into a buffer (so one can be allocated for them up front)."""
    if not hasattr(fp, "readinto"):
        return False
    pos = fp.tell()
    end = fp.seek(0, io.SEEK_END)
    fp.seek(pos)
    return end - pos >= size


def _read_stored(
    readinto: Callable[[memoryview], int | None],
    info: zipfile.ZipInfo,
    lim: Limits,
    where: Where,
) -> tuple[memoryview, int, int]:
    """Read a stored member whose sizes agree straight into one buffer (no
    copy per chunk, no regrowth, no zero-filling first: NumPy's uninitialised
    memory, as ``np.load`` reads into): the bytes, their CRC-32, the bytes
    left unread. The buffer is sized by ``file_size``, which
    ``max_member_bytes`` has bounded already and :func:`_holds` has found in
    the file (nothing is allocated for bytes a file only claims to have)."""
    view = np.empty(info.file_size, np.uint8).data
    got, crc = 0, 0
    while got < len(view):
        window = view[got : got + CHUNK]
        n = readinto(window) or 0
        if not n:
            msg = f"truncated: {len(view) - got} compressed bytes missing"
            raise FormatError(msg, where=where)
        crc = zlib.crc32(window[:n], crc)
        got += n
        lim.check("max_member_bytes", got, where)
    return view, crc, 0


def _check_growth(
    size: int, compressed: int, info: zipfile.ZipInfo, lim: Limits, where: Where
) -> None:
    lim.check("max_member_bytes", size, where)
    if size > info.file_size:
        msg = f"inflates past its declared {info.file_size} bytes"
        raise FormatError(msg, where=where)
    if size > RATIO_GRACE_BYTES:
        ratio = round(size / compressed)
        lim.check("max_ratio", ratio, where, what="compression ratio")


def _check_archive(zf: zipfile.ZipFile, size: int, tail: bytes, name: str) -> None:
    """Structural hygiene of a whole archive (see the module docstring)."""
    comment_len = _check_end_record(size, tail, name)
    infos = zf.infolist()
    if not infos and size > _END_RECORD_SIZE + comment_len:
        raise _fail(name, f"{size} bytes but no members: not a plain zip archive")
    _check_names(infos, name)
    _check_placement(infos, name)


def _check_end_record(size: int, tail: bytes, name: str) -> int:
    """Check that the end record ends the file and the central directory
    ends at it; return the length of the archive comment."""
    pos = tail.rfind(ZIP_END)
    if pos < 0 or pos + _END_RECORD_SIZE > len(tail):
        raise _fail(name, "no zip end-of-central-directory record")
    comment_len = int.from_bytes(tail[pos + 20 : pos + 22], "little")
    extra = len(tail) - (pos + _END_RECORD_SIZE + comment_len)
    if extra > 0:
        raise _fail(name, f"{extra} bytes of trailing data after the zip archive")
    cd_size = int.from_bytes(tail[pos + 12 : pos + 16], "little")
    cd_offset = int.from_bytes(tail[pos + 16 : pos + 20], "little")
    eocd_at = size - len(tail) + pos
    if cd_offset != _ZIP64_OFFSET and cd_offset + cd_size != eocd_at:
        raise _fail(
            name,
            f"the central directory ({cd_offset}+{cd_size}) does not end at the end "
            f"record (byte {eocd_at}): data is hidden in the archive",
        )
    return comment_len


def _check_names(infos: list[zipfile.ZipInfo], name: str) -> None:
    """Member names are unique and relative, without ``..``."""
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
        if _unsafe_name(fname):
            raise _fail(name, f"unsafe member name {fname!r} (absolute path or '..')")


def _unsafe_name(fname: str) -> bool:
    parts = fname.replace("\\", "/").split("/")
    return (
        fname.startswith(("/", "\\"))
        or ".." in parts
        or "\x00" in fname
        or (len(fname) > 1 and fname[1] == ":")
    )


def _check_placement(infos: list[zipfile.ZipInfo], name: str) -> None:
    """The first member starts at byte 0 and no member overlaps the next."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    if ordered and ordered[0].header_offset != 0:
        raise _fail(
            name,
            f"{ordered[0].header_offset} unexpected bytes before the first zip member",
        )
    for this, nxt in itertools.pairwise(ordered):
        end = (
            this.header_offset
            + _LOCAL_HEADER_SIZE
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
