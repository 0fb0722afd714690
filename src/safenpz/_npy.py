"""The entry point: :func:`load` a ``.npy``, ``.npz`` or pickle file safely.

What a file is comes from its first bytes (:func:`safenpz._sniff.sniff`),
never from its name; each kind is then read by its own layer:

==========  ==============================================================
``.npz``    :class:`~safenpz.NpzFile` (:mod:`safenpz._npzfile`) over the zip
            container (:mod:`safenpz._zip`)
``.npy``    the header (:mod:`safenpz._header`), then numeric data read into
            place (or memory-mapped) after its size is checked against the
            file, or object data decoded (:mod:`safenpz._decode`)
pickle      a bare pickle (what ``np.load(allow_pickle=True)`` also reads),
            decoded with the same closed table (:mod:`safenpz._pickle._decode`)
==========  ==============================================================

Every limit is a keyword of :func:`load`; streams that cannot seek are read in
1 MiB steps, capped by the limits; every error message is escaped, so a file's
names never bring control characters to a terminal.
"""

from __future__ import annotations

import io
import os
from typing import IO, Any, Literal

import numpy as np

from ._decode import decode_object, zero_width
from ._exceptions import FormatError, SafenpzError, Where
from ._header import check_data_size, parse_header
from ._limits import DEFAULT_LIMITS, Limits
from ._npzfile import NpzFile
from ._pickle._decode import safe_loads
from ._preview import escape
from ._sniff import sniff
from ._zip import CHUNK as _CHUNK

__all__ = ["FileLike", "load"]


FileLike = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


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
        limits.check(what, got, Where(source=name))
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
    _check_options(encoding, mmap_mode)
    opts: dict[str, Any] = {"limits": limits, "ragged": ragged, "encoding": encoding}
    if isinstance(file, bytes | bytearray | memoryview):
        return _load_stream(io.BytesIO(bytes(file)), name="<bytes>", own=True, **opts)
    if isinstance(file, str | os.PathLike):
        return _load_path(os.fspath(file), mmap_mode, opts)
    return _load_fileobj(file, limits, opts)


def _check_options(encoding: str, mmap_mode: str | None) -> None:
    if encoding not in ("latin1", "bytes", "ASCII"):
        msg = f"encoding must be 'latin1', 'bytes' or 'ASCII', not {encoding!r}"
        raise ValueError(msg)
    if mmap_mode not in (None, "r", "r+", "c"):
        msg = f"mmap_mode must be None, 'r', 'r+' or 'c', not {mmap_mode!r}"
        raise ValueError(msg)


def _load_path(path: str, mmap_mode: str | None, opts: dict[str, Any]) -> Any:
    fp = open(path, "rb")  # noqa: SIM115 - NpzFile owns it
    try:
        return _load_stream(
            fp, name=path, own=True, mmap_mode=mmap_mode, path=path, **opts
        )
    except BaseException:
        fp.close()
        raise


def _load_fileobj(file: Any, limits: Limits, opts: dict[str, Any]) -> Any:
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
                limits=limits,
                encoding=encoding,
            )
        msg = (
            f"not a .npy, .npz or pickle file (it starts with {magic!r}); check "
            "the path and that the download completed"
        )
        raise FormatError(msg, where=Where(source=name))
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
    where = Where(source=name)
    prefix = fp.read(12 + limits.max_header_size)
    header = parse_header(prefix, where=where, limits=limits)
    fp.seek(0, io.SEEK_END)
    available = fp.tell() - start - header.data_offset
    if header.dtype.hasobject:
        if mmap_mode is not None:
            msg = (
                f"{name}: an object array cannot be memory-mapped; pass mmap_mode=None"
            )
            raise ValueError(msg)
        limits.check("max_member_bytes", available, where, what="pickled data")
        # the pickle alone, as bytes: the decoder needs no copy of it
        fp.seek(start + header.data_offset)
        return decode_object(
            fp.read(available),
            header,
            where=where,
            limits=limits,
            ragged=ragged,
            encoding=encoding,
        )
    # The data must be in the file, byte for byte, before anything is allocated:
    # memory is then bounded by the file's real size, not by what the header
    # claims, so max_member_bytes (a guard against inflation) is not applied and
    # large numeric .npy files load (or memory-map) as with NumPy.
    check_data_size(where, header, available)
    if header.dtype.itemsize == 0:
        return zero_width(header, limits, where)
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
            msg = f"truncated: read {got} of {header.nbytes} bytes"
            raise FormatError(msg, where=where)
        got += n
    return arr
