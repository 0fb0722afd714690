"""Reading an opcode's argument by its kind (the ``arg`` column of
:mod:`safenpz._pickle._opcodes`), for the scanner's general handler.

A reader takes the scan state, the opcode, its offset and whether the
payload of a length-prefixed argument is needed, checks that the argument
fits in the data (a format problem otherwise, at the opcode's offset) and
returns ``(arg, arg2, end)``: the argument (``arg2``: the second line of
``GLOBAL``/``INST``) and where the argument ends. A length prefix is checked
against the bytes that remain before anything is copied.
"""

from __future__ import annotations

from collections.abc import Callable

from ._opcodes import Op
from ._state import Scan

__all__ = ["PREFIX_WIDTH", "READERS", "Reader"]

#: ``reader(state, opcode, offset, keep payload) -> (arg, arg2, end)``.
Reader = Callable[[Scan, Op, int, bool], tuple[bytes, bytes, int]]

#: Bytes of the length prefix of each length-prefixed argument kind.
PREFIX_WIDTH: dict[str, int] = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}


def _fixed(sc: Scan, op: Op, pos: int, keep: bool) -> tuple[bytes, bytes, int]:
    """A fixed number of bytes (none for most opcodes)."""
    width = int(op.arg)
    at = pos + 1
    if at + width > sc.n:
        sc.malformed(op.name, pos, f"truncated: needs {width} argument bytes")
    return sc.buf[at : at + width], b"", at + width


def _line(sc: Scan, op: Op, pos: int, keep: bool) -> tuple[bytes, bytes, int]:
    """Text up to a newline."""
    at = pos + 1
    nl = sc.buf.find(b"\n", at)
    if nl < 0:
        sc.malformed(op.name, pos, "argument has no newline")
    return sc.buf[at:nl], b"", nl + 1


def _two_lines(sc: Scan, op: Op, pos: int, keep: bool) -> tuple[bytes, bytes, int]:
    """Two newline-terminated texts (module and name)."""
    first, _, at = _line(sc, op, pos, keep)
    nl = sc.buf.find(b"\n", at)
    if nl < 0:
        sc.malformed(op.name, pos, "argument has no newline")
    return first, sc.buf[at:nl], nl + 1


def _sized(sc: Scan, op: Op, pos: int, keep: bool) -> tuple[bytes, bytes, int]:
    """A little-endian length, then that many bytes (copied only if `keep`)."""
    kind = str(op.arg)
    width = PREFIX_WIDTH[kind]
    at = pos + 1
    if at + width > sc.n:
        sc.malformed(op.name, pos, "truncated length prefix")
    size = int.from_bytes(sc.buf[at : at + width], "little", signed=kind == "len4s")
    at += width
    if size < 0 or size > sc.n - at:
        msg = f"claims {size} bytes but only {sc.n - at} remain"
        sc.malformed(op.name, pos, msg)
    return (sc.buf[at : at + size] if keep else b""), b"", at + size


#: The reader of each argument kind (``"fixed"``: an int kind).
READERS: dict[str, Reader] = {
    "fixed": _fixed,
    "nl": _line,
    "nl2": _two_lines,
    **dict.fromkeys(PREFIX_WIDTH, _sized),
}
