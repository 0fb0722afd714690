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

from ._exceptions import FormatError, SafenpzError, UnsafeFileError
from ._header import Header, parse_header
from ._jsonio import parse_json
from ._limits import DEFAULT_LIMITS, Limits
from ._manifest import MANIFEST, MAX_MANIFEST_MEMBER, check_manifest
from ._pickle_scan import PickleReport, scan_pickle
from ._preview import escape, preview
from ._sniff import Kind, is_npy, looks_like_data, sniff
from ._tree import KIND as TREE
from ._tree import check_table
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
_ORDER: tuple[Verdict, ...] = ("safe", "loadable", "invalid", "unsafe")


@dataclass
class MemberReport:
    """The verdict on one member (or on the whole content of a ``.npy`` or
    pickle file)."""

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
    """The verdict on one file."""

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


def _read_bounded(fp: IO[bytes], cap: int, where: str, limits: Limits) -> bytes:
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
    opts: dict[str, Any] = {
        "member": member,
        "max_depth": limits.max_depth,
        "max_items": limits.max_items,
    }
    try:  # the loader's mode: the first problem decides, as in load
        report = scan_pickle(data, strict=True, **opts)
    except SafenpzError as err:
        verdict: Verdict = "unsafe" if isinstance(err, UnsafeFileError) else "invalid"
        return verdict, scan_pickle(data, strict=False, **opts), str(err)
    return "loadable", report, None


def _check_zero_width(header: Header, member: str, limits: Limits) -> None:
    """``S0``/``U0``/``V0`` arrays hold no data: load bounds their element
    count by ``max_items`` instead."""
    if header.dtype.itemsize == 0:
        limits.check("max_items", header.count, f"{member}: zero-width array")


def _scan_npy(data: bytes | memoryview, member: str, limits: Limits) -> MemberReport:
    try:
        header = parse_header(data, member=member, limits=limits)
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
                    f"{member}: {what}: shape {header.shape} and dtype "
                    f"{header.dtype} need {header.nbytes} bytes of data, the "
                    f"file has {len(body)}"
                )
                raise FormatError(msg)
            _check_zero_width(header, member, limits)
            return out
        limits.check("max_items", header.count, f"{member}: object array")
    except SafenpzError as err:
        failed = _error(member, err)
        out.verdict, out.error = failed.verdict, failed.error
        return out
    out.verdict, out.pickle, error = _scan_pickle(body, member, limits)
    out.error = None if error is None else escape(error)
    return out


def _manifest_text(data: bytes, member: str, limits: Limits) -> str:
    header = parse_header(data, member=member, limits=limits)
    dt = header.dtype
    if header.shape != () or dt.kind != "U":
        msg = f"{member} must be a 0-d unicode array"
        raise FormatError(msg)
    body = data[header.data_offset :]
    if len(body) != dt.itemsize:
        msg = f"{member}: {len(body)} bytes of data, the header says {dt.itemsize}"
        raise FormatError(msg)
    codec = "utf-32-be" if dt.byteorder == ">" else "utf-32-le"
    try:
        return body.decode(codec).rstrip("\x00")
    except UnicodeDecodeError as err:
        msg = f"{member} holds invalid characters"
        raise FormatError(msg) from err


def _scan_npz(fp: IO[bytes], report: FileReport, limits: Limits) -> None:
    with ZipArchive(fp, name=escape(report.path), own_file=False, limits=limits) as npz:
        raw = npz.raw_names
        headers: dict[str, Header] = {}
        tables: dict[str, tuple[bytes, MemberReport]] = {}
        doc: Any = None
        for name in raw:
            shown = escape(name)
            try:
                if name == MANIFEST + ".npy" and (
                    npz.member_size(name) > MAX_MANIFEST_MEMBER
                ):
                    msg = f"{shown} is larger than {MAX_MANIFEST_MEMBER:,} bytes"
                    raise FormatError(msg)
                data = bytes(npz.read(name))
            except SafenpzError as err:
                report.members.append(_error(shown, err))
                continue
            if not is_npy(data):
                msg = (
                    f"{shown} is not a .npy member (it starts with "
                    f"{preview(data[:8])}); safenpz.load refuses to read it"
                )
                report.members.append(MemberReport(shown, "invalid", error=msg))
                continue
            member = _scan_npy(data, shown, limits)
            if member.verdict == "safe" and name.endswith(".tree.npy"):
                tables[name[: -len(".tree.npy")]] = (data, member)
            with contextlib.suppress(SafenpzError):
                headers[name] = parse_header(data, member=shown, limits=limits)
            if name == MANIFEST + ".npy" and member.verdict == "safe":
                where = f"the safenpz manifest ({shown})"
                try:
                    doc = parse_json(_manifest_text(data, shown, limits), where)
                    check_manifest(doc, raw, where)
                except SafenpzError as err:
                    member.verdict, member.error = "invalid", escape(str(err))
                    doc = None
            report.members.append(member)
        if doc is not None:
            _check_trees(doc, tables, headers, limits, escape(report.path))


def _check_trees(
    doc: dict[str, Any],
    tables: dict[str, tuple[bytes, MemberReport]],
    headers: dict[str, Header],
    limits: Limits,
    where: str,
) -> None:
    """What load checks in a tree's node table before reading its leaves
    (:func:`safenpz._tree.check_table`): a bad table makes its
    ``<name>.tree.npy`` member invalid. The table is numeric data (JSON text
    as ``uint8``), so nothing is decoded."""
    for name, entry in doc["arrays"].items():
        if entry.get("kind") != TREE or name not in tables:
            continue
        data, member = tables[name]

        def leaf(i: int, name: str = name) -> Header:
            header = headers.get(f"{name}.{i}.npy")
            if header is None:  # unreadable: reported as its own member
                msg = f"{escape(name)}.{i}.npy has no readable .npy header"
                raise FormatError(msg)
            return header

        try:
            header = parse_header(data, member=member.member, limits=limits)
            table: Any = None  # a table that is not 1-D uint8: check_table says so
            if header.dtype == np.uint8 and len(header.shape) == 1:
                table = np.frombuffer(data, np.uint8, header.count, header.data_offset)
            check_table(
                name, entry, table, leaf, limits, f"{where}: the safenpz manifest"
            )
        except SafenpzError as err:
            member.verdict, member.error = "invalid", escape(str(err))


def _scan_single_npy(
    fp: IO[bytes], name: str, shown: str, limits: Limits
) -> MemberReport:
    head = fp.read(limits.max_header_size + 12)
    header = parse_header(head, member=name, limits=limits)
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    if header.dtype.hasobject:
        fp.seek(0)
        cap = limits.max_member_bytes + header.data_offset
        return _scan_npy(_read_bounded(fp, cap, shown, limits), name, limits)
    # numeric data: only its size matters, and it is never read (as in load,
    # which checks the size against the file before allocating anything)
    member = _scan_npy(head[: header.data_offset], name, limits)
    available = size - header.data_offset
    if available == header.nbytes:
        member.verdict, member.error = "safe", None
        try:
            _check_zero_width(header, name, limits)
        except SafenpzError as err:
            member.verdict, member.error = "invalid", escape(str(err))
    else:
        what = "truncated" if available < header.nbytes else "too long"
        member.verdict = "invalid"
        member.error = (
            f"{name}: {what}: shape {header.shape} and dtype {header.dtype} "
            f"need {header.nbytes} bytes of data, the file has {available}"
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
        data = _read_bounded(fp, limits.max_member_bytes, shown, limits)
        verdict, rep, error = _scan_pickle(data, name, limits)
        error = None if error is None else escape(error)
        report.members.append(MemberReport(name, verdict, pickle=rep, error=error))
    else:
        msg = (
            f"{shown}: not a .npy, .npz or pickle file (it starts with {preview(head)})"
        )
        raise FormatError(msg)


def scan_path(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> FileReport:
    """Statically scan one file; never decodes anything.

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
    """
    report = FileReport(os.fspath(path), "other")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as fp:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                msg = f"{escape(report.path)} is not a regular file"
                raise FormatError(msg)
            _scan_stream(fp, report, escape(Path(path).name), limits)
    except (SafenpzError, OSError) as err:
        report.members.append(_error("*", err))
    return report


def scan_bytes(
    data: bytes, *, name: str = "<bytes>", limits: Limits = DEFAULT_LIMITS
) -> FileReport:
    """:func:`scan_path` on the content of a file held in memory.

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
