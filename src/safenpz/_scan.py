"""Static scanning of files (``safenpz scan``): a verdict per file and member.

Nothing is ever decoded here: pickles go through the static opcode scanner
(:func:`safenpz.scan_pickle`) only, numeric members through their ``.npy``
header, and the safenpz manifest is checked as a JSON document against the
member names (:func:`safenpz._manifest.check_manifest`), without the reader's
layout. This module never imports the decoders (``_pickle._decode``,
``_pickle._fastrows``).

Verdicts, from best to worst:

``safe``
    no pickle at all (numeric ``.npy`` data);
``loadable``
    a pickle that uses only safenpz's allowed constructors;
``invalid``
    :func:`safenpz.load` refuses it as malformed, truncated or over a limit
    (:class:`~safenpz.FormatError`, :class:`~safenpz.LimitError`), or it
    cannot be read at all;
``unsafe``
    :func:`safenpz.load` refuses it with :class:`~safenpz.UnsafeFileError`.

The verdict of a file is the worst verdict of its members; every member of
an archive is reported (``x`` and ``x.npy`` alike), and a bad manifest makes
only the manifest member invalid. The per-file decisions follow
:func:`safenpz.load`: what the file *is* comes from its first bytes, never
from its name, and the same limits apply.

Exit codes of the command (:func:`exit_code`): 0 every file safe or loadable,
1 some file unsafe, 3 none unsafe but some invalid or unreadable (2 is left to
usage errors).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from ._exceptions import FormatError, SafenpzError, UnsafeFileError, Where
from ._header import Header, check_pickled, parse_header
from ._jsonio import parse_json
from ._limits import DEFAULT_LIMITS, Limits
from ._manifest import MANIFEST, MAX_MANIFEST_MEMBER, check_manifest
from ._pickle._report import PickleReport
from ._pickle._scanner import scan_pickle
from ._preview import escape, preview
from ._sniff import Kind, is_npy, looks_like_data, sniff
from ._tree import KIND as TREE
from ._tree_read import check_table
from ._zip import CHUNK, ZipArchive

__all__ = [
    "FileReport",
    "MemberReport",
    "Verdict",
    "exit_code",
    "iter_targets",
    "scan_bytes",
    "scan_path",
]

Verdict = Literal["safe", "loadable", "invalid", "unsafe"]
_MANIFEST = "the safenpz manifest"
_ORDER: tuple[Verdict, ...] = ("safe", "loadable", "invalid", "unsafe")


@dataclass
class MemberReport:
    """The verdict on one member of a scanned file (or on the whole content of
    a ``.npy`` or pickle file), an item of :attr:`FileReport.members`.

    Attributes
    ----------
    member : str
        The member's name as stored in the archive (``"x.npy"``), the file
        name for a ``.npy`` or pickle file, or ``"*"`` when the file as a
        whole could not be read. Escaped: no control characters.
    verdict : {"safe", "loadable", "invalid", "unsafe"}
        ``safe``: no pickle at all; ``loadable``: a pickle that uses only
        safenpz's allowed constructors; ``invalid``: :func:`safenpz.load`
        would refuse it as malformed, truncated or over a limit; ``unsafe``:
        :func:`safenpz.load` would raise :class:`~safenpz.UnsafeFileError`.
    dtype : str or None
        The ``.npy`` header's dtype, as text (``"object"``, ``"int64"``), when
        there is a header.
    shape : list of int or None
        The ``.npy`` header's shape, when there is a header.
    pickle : PickleReport or None
        What :func:`safenpz.scan_pickle` found in the member's pickle (its
        protocol, globals, opcode counts and problems), when it holds one.
    error : str or None
        Why the member is ``invalid`` or ``unsafe`` (escaped).

    Examples
    --------
    >>> import io, numpy as np, safenpz
    >>> buf = io.BytesIO()
    >>> np.save(buf, np.array([[1, 2], [3]], dtype=object), allow_pickle=True)
    >>> (member,) = safenpz.scan_bytes(buf.getvalue(), name="rows.npy").members
    >>> member.member, member.verdict, member.dtype, member.shape
    ('rows.npy', 'loadable', 'object', [2])
    """

    member: str
    verdict: Verdict
    dtype: str | None = None
    shape: list[int] | None = None
    pickle: PickleReport | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (names and errors escaped as in the text output)."""
        out: dict[str, Any] = {"member": self.member, "verdict": self.verdict}
        if self.dtype is not None:
            out.update(dtype=self.dtype, shape=self.shape)
        if self.dtype is not None and self.pickle is None and self.error is None:
            out["pickle"] = False
        if self.pickle is not None:
            rep = self.pickle
            out.update(
                pickle=True,
                protocol=rep.protocol,
                globals=[
                    {
                        "module": g.module,
                        "name": g.name,
                        "opcode": g.opcode,
                        "offset": g.offset,
                        "allowed": g.allowed,
                    }
                    for g in rep.globals
                ],
                opcodes=dict(rep.opcodes),
                problems=[
                    {
                        "kind": p.kind,
                        "opcode": p.opcode,
                        "offset": p.offset,
                        "message": p.message,
                    }
                    for p in rep.problems
                ],
            )
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class FileReport:
    """The verdict on one file, as :func:`scan_path` and :func:`scan_bytes`
    return it.

    Attributes
    ----------
    path : str
        The path as given (or the `name` given to :func:`scan_bytes`).
    kind : {"npy", "npz", "pickle", "other"}
        What the file is, from its first bytes.
    members : list of MemberReport
        One report per archive member, in archive order (one for the whole
        content of a ``.npy`` or pickle file; a single member ``"*"`` holding
        the error when the file cannot be read).
    verdict : {"safe", "loadable", "invalid", "unsafe"}
        The worst verdict of the members (``safe`` for an empty archive,
        ``invalid`` for any other file without members).

    Examples
    --------
    >>> import safenpz
    >>> report = safenpz.scan_bytes(b"just some text")
    >>> report.kind, report.verdict, [m.member for m in report.members]
    ('other', 'invalid', ['*'])
    >>> report.as_dict()["verdict"]
    'invalid'
    """

    path: str
    kind: Kind
    members: list[MemberReport] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """The worst verdict of the members (``invalid`` when there are none
        and the file is not an archive)."""
        if not self.members:
            return "safe" if self.kind == "npz" else "invalid"
        return max((m.verdict for m in self.members), key=_ORDER.index)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "members": [m.as_dict() for m in self.members],
        }


def exit_code(verdicts: Iterable[str]) -> int:
    """0 all safe or loadable, 1 any unsafe, 3 none unsafe but some invalid.

    >>> exit_code(["safe", "loadable"]), exit_code(["invalid", "unsafe"])
    (0, 1)
    >>> exit_code(["invalid", "safe", "skipped"])
    3
    """
    seen = set(verdicts)
    if "unsafe" in seen:
        return 1
    return 3 if "invalid" in seen else 0


# --------------------------------------------------------------------------
# what a file is


def _looks_like_data(path: Path) -> bool:
    """Whether a file met in a directory walk is worth scanning: NumPy or zip
    magic, a pickle PROTO opcode, or a NumPy/pickle suffix (any case)."""
    if path.suffix.lower() in (".npy", ".npz", ".pkl", ".pickle"):
        return True
    try:
        with open(path, "rb") as fp:
            head = fp.read(8)
    except OSError:
        return True  # report why it cannot be read
    return looks_like_data(head)


def iter_targets(
    paths: Iterable[str | os.PathLike[str]],
) -> Iterator[tuple[Path, bool]]:
    """Yield ``(path, scanned)`` for every file named or found below a
    directory (recursively, sorted, symlinks to directories not followed).

    Files named explicitly are always scanned; a file found in a directory is
    scanned when its content looks like NumPy or pickle data (magic bytes) or
    its suffix says so, and otherwise yielded with ``scanned=False`` so that
    it can be reported as skipped.
    """
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    f = Path(root) / name
                    try:
                        regular = stat.S_ISREG(f.stat().st_mode)
                    except OSError:
                        regular = True  # scanning reports the error
                    if regular:
                        yield f, _looks_like_data(f)
                    else:
                        yield f, False
        else:
            yield p, True


# --------------------------------------------------------------------------
# scanning


def _read_bounded(fp: IO[bytes], cap: int, where: Where, limits: Limits) -> bytes:
    """Read what the file has, at most `cap` bytes, in 1 MiB steps (never
    allocate `cap` up front)."""
    out = bytearray()
    while True:
        chunk = fp.read(CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > cap:
            limits.check("max_member_bytes", len(out), where)


def _error(member: str, err: BaseException) -> MemberReport:
    verdict: Verdict = "unsafe" if isinstance(err, UnsafeFileError) else "invalid"
    text = str(err) if isinstance(err, SafenpzError) else f"{type(err).__name__}: {err}"
    return MemberReport(member, verdict, error=escape(text))


def _scan_pickle(
    data: bytes | memoryview, member: str, limits: Limits
) -> tuple[Verdict, PickleReport, str | None]:
    try:  # the loader's mode: the first problem decides, as in load
        report = scan_pickle(data, member=member, strict=True, limits=limits)
    except SafenpzError as err:
        verdict: Verdict = "unsafe" if isinstance(err, UnsafeFileError) else "invalid"
        report = scan_pickle(data, member=member, strict=False, limits=limits)
        return verdict, report, str(err)
    return "loadable", report, None


def _check_zero_width(header: Header, where: Where, limits: Limits) -> None:
    """``S0``/``U0``/``V0`` arrays hold no data: load bounds their element
    count by ``max_items`` instead."""
    if header.dtype.itemsize == 0:
        limits.check("max_items", header.count, where, what="zero-width array")


def _scan_npy(
    data: bytes | memoryview, member: str, limits: Limits, where: Where
) -> MemberReport:
    """The report on one ``.npy`` image, named `member`; errors as load
    gives them for `where`."""
    try:
        header = parse_header(data, where=where, limits=limits)
    except SafenpzError as err:
        return _error(member, err)
    out = MemberReport(
        member, "safe", dtype=str(header.dtype), shape=list(header.shape)
    )
    body = memoryview(data)[header.data_offset :]
    try:
        if not header.dtype.hasobject:
            if len(body) != header.nbytes:
                what = "truncated" if len(body) < header.nbytes else "too long"
                msg = (
                    f"{what}: shape {header.shape} and dtype {header.dtype} "
                    f"need {header.nbytes} bytes of data, the file has {len(body)}"
                )
                raise FormatError(msg, where=where)
            _check_zero_width(header, where, limits)
            return out
        limits.check("max_items", header.count, where, what="object array")
    except SafenpzError as err:
        failed = _error(member, err)
        out.verdict, out.error = failed.verdict, failed.error
        return out
    out.verdict, out.pickle, error = _scan_pickle(body, member, limits)
    if error is None:  # what load checks next: the array the header promises
        rep = out.pickle
        try:
            check_pickled(where, header, str(rep.result), rep.shape, rep.dtype)
        except SafenpzError as err:
            out.verdict, error = "invalid", str(err)
    out.error = None if error is None else escape(error)
    return out


def _manifest_text(data: bytes, where: Where, limits: Limits) -> str:
    header = parse_header(data, where=where, limits=limits)
    dt = header.dtype
    if header.shape != () or dt.kind != "U":
        msg = f"{_MANIFEST} must be a 0-d unicode array"
        raise FormatError(msg, where=where)
    body = data[header.data_offset :]
    if len(body) != dt.itemsize:
        msg = f"{len(body)} bytes of data, the header says {dt.itemsize}"
        raise FormatError(msg, where=where)
    codec = "utf-32-be" if dt.byteorder == ">" else "utf-32-le"
    try:
        return body.decode(codec).rstrip("\x00")
    except UnicodeDecodeError as err:
        msg = f"{_MANIFEST} holds invalid characters"
        raise FormatError(msg, where=where) from err


def _scan_npz(fp: IO[bytes], report: FileReport, limits: Limits) -> None:
    with ZipArchive(fp, name=escape(report.path), own_file=False, limits=limits) as npz:
        raw = npz.raw_names
        headers: dict[str, Header] = {}
        tables: dict[str, tuple[bytes, MemberReport]] = {}
        doc: Any = None
        for name in raw:
            shown = escape(name)
            where = Where(member=name)
            try:
                if name == MANIFEST + ".npy" and (
                    npz.member_size(name) > MAX_MANIFEST_MEMBER
                ):
                    msg = f"{_MANIFEST} is larger than {MAX_MANIFEST_MEMBER:,} bytes"
                    raise FormatError(msg, where=where)
                data = bytes(npz.read(name))
            except SafenpzError as err:
                report.members.append(_error(shown, err))
                continue
            if not is_npy(data):
                msg = where.render(
                    f"not a .npy member (it starts with {preview(data[:8])}); "
                    "safenpz.load refuses to read it"
                )
                report.members.append(MemberReport(shown, "invalid", error=msg))
                continue
            member = _scan_npy(data, shown, limits, where)
            if member.verdict == "safe" and name.endswith(".tree.npy"):
                tables[name[: -len(".tree.npy")]] = (data, member)
            with contextlib.suppress(SafenpzError):
                headers[name] = parse_header(data, where=where, limits=limits)
            if name == MANIFEST + ".npy" and member.verdict == "safe":
                try:
                    text = _manifest_text(data, where, limits)
                    doc = parse_json(text, _MANIFEST, where)
                    check_manifest(doc, raw, where)
                except SafenpzError as err:
                    member.verdict, member.error = "invalid", escape(str(err))
                    doc = None
            report.members.append(member)
        if doc is not None:
            _check_trees(doc, tables, headers, limits)


def _check_trees(
    doc: dict[str, Any],
    tables: dict[str, tuple[bytes, MemberReport]],
    headers: dict[str, Header],
    limits: Limits,
) -> None:
    """What load checks in a tree's node table before reading its leaves
    (:func:`safenpz._tree_read.check_table`): a bad table makes its
    ``<name>.tree.npy`` member invalid. The table is numeric data (JSON text
    as ``uint8``), so nothing is decoded."""
    for name, entry in doc["arrays"].items():
        if entry.get("kind") != TREE or name not in tables:
            continue
        data, member = tables[name]

        def leaf(i: int, name: str = name) -> Header:
            header = headers.get(f"{name}.{i}.npy")
            if header is None:  # unreadable: reported as its own member
                msg = "no readable .npy header"
                raise FormatError(msg, where=Where(member=f"{name}.{i}.npy"))
            return header

        try:
            where = Where(member=f"{name}.tree.npy")
            header = parse_header(data, where=where, limits=limits)
            table: Any = None  # a table that is not 1-D uint8: check_table says so
            if header.dtype == np.uint8 and len(header.shape) == 1:
                table = np.frombuffer(data, np.uint8, header.count, header.data_offset)
            check_table(name, entry, table, leaf, limits, Where())
        except SafenpzError as err:
            member.verdict, member.error = "invalid", escape(str(err))


def _scan_single_npy(
    fp: IO[bytes], name: str, shown: str, limits: Limits
) -> MemberReport:
    where = Where(source=name)
    head = fp.read(limits.max_header_size + 12)
    header = parse_header(head, where=where, limits=limits)
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    if header.dtype.hasobject:
        fp.seek(0)
        cap = limits.max_member_bytes + header.data_offset
        data = _read_bounded(fp, cap, Where(source=shown), limits)
        return _scan_npy(data, name, limits, where)
    # numeric data: only its size matters, and it is never read (as in load,
    # which checks the size against the file before allocating anything)
    member = _scan_npy(head[: header.data_offset], name, limits, where)
    available = size - header.data_offset
    if available == header.nbytes:
        member.verdict, member.error = "safe", None
        try:
            _check_zero_width(header, where, limits)
        except SafenpzError as err:
            member.verdict, member.error = "invalid", escape(str(err))
    else:
        what = "truncated" if available < header.nbytes else "too long"
        member.verdict = "invalid"
        member.error = where.render(
            f"{what}: shape {header.shape} and dtype {header.dtype} need "
            f"{header.nbytes} bytes of data, the file has {available}"
        )
    return member


def _scan_stream(fp: IO[bytes], report: FileReport, name: str, limits: Limits) -> None:
    shown = escape(report.path)
    head = fp.read(8)
    fp.seek(0)
    report.kind = kind = sniff(head)
    if kind == "npz":
        _scan_npz(fp, report, limits)
    elif kind == "npy":
        report.members.append(_scan_single_npy(fp, name, shown, limits))
    elif kind == "pickle":
        data = _read_bounded(fp, limits.max_member_bytes, Where(source=shown), limits)
        verdict, rep, error = _scan_pickle(data, name, limits)
        error = None if error is None else escape(error)
        report.members.append(MemberReport(name, verdict, pickle=rep, error=error))
    else:
        msg = f"not a .npy, .npz or pickle file (it starts with {preview(head)})"
        raise FormatError(msg, where=Where(source=shown))


def scan_path(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> FileReport:
    """Statically scan one file; never decodes anything.

    The verdicts are the ones :func:`safenpz.load` reaches on the same file
    (reading every member) under the same limits, but nothing is decoded:
    pickles go through :func:`safenpz.scan_pickle` only, numeric members
    through their ``.npy`` header. This is what ``safenpz scan`` runs. A bad
    or unreadable file raises nothing: it gets an ``invalid`` or ``unsafe``
    verdict, with the reason in the member's ``error``.

    Parameters
    ----------
    path : str or path-like
        A ``.npy``, ``.npz`` or pickle file (what it is comes from its first
        bytes, as in :func:`safenpz.load`).
    limits : Limits
        The limits :func:`safenpz.load` would apply.

    Returns
    -------
    FileReport
        One :class:`MemberReport` per archive member (or one for the whole
        file); a file that cannot be opened or parsed as an archive gets a
        single member ``"*"`` with the error. Member names and errors are
        escaped (no control characters); ``FileReport.path`` is the path as
        given.

    See Also
    --------
    scan_bytes : the same on bytes held in memory.
    scan_pickle : the static scan of one pickle stream.

    Examples
    --------
    >>> import numpy as np, safenpz
    >>> path = getfixture("tmp_path") / "a.npz"
    >>> np.savez(path, x=np.array([[1], [2, 3]], dtype=object), y=np.arange(3))
    >>> report = safenpz.scan_path(path)
    >>> report.verdict, [(m.member, m.verdict) for m in report.members]
    ('loadable', [('x.npy', 'loadable'), ('y.npy', 'safe')])
    """
    report = FileReport(os.fspath(path), "other")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as fp:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                msg = "not a regular file"
                raise FormatError(msg, where=Where(source=escape(report.path)))
            _scan_stream(fp, report, escape(Path(path).name), limits)
    except (SafenpzError, OSError) as err:
        report.members.append(_error("*", err))
    return report


def scan_bytes(
    data: bytes, *, name: str = "<bytes>", limits: Limits = DEFAULT_LIMITS
) -> FileReport:
    """:func:`scan_path` on the content of a file held in memory.

    Parameters
    ----------
    data : bytes
        The whole content of a ``.npy``, ``.npz`` or pickle file.
    name : str
        What the report calls the file (its ``path``).
    limits : Limits
        The limits :func:`safenpz.load` would apply.

    Returns
    -------
    FileReport
        As :func:`scan_path` returns it.

    Examples
    --------
    >>> scan_bytes(b"just some text").verdict
    'invalid'
    """
    report = FileReport(name, "other")
    try:
        _scan_stream(io.BytesIO(data), report, escape(name), limits)
    except SafenpzError as err:
        report.members.append(_error("*", err))
    return report
