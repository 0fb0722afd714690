"""Literal arguments, read as the C unpickler reads them.

The scanner refuses a literal the unpickler would refuse, at its opcode, and
reads the value of a string or bytes literal when an argument or a key needs
it:

* protocol 0 text (``INT``, ``LONG``, ``FLOAT``, ``STRING``, ``UNICODE``):
  the common spellings are matched by a regular expression; any other text is
  given to the C unpickler itself, alone (``pickle.loads`` of the one literal
  opcode and ``STOP``: plain literal bytes, no global or callable can be
  named), which decides, as it does when the stream is decoded (``I017`` is
  15 for it, ``I08`` an error);
* ``SHORT_BINUNICODE``, ``BINUNICODE``, ``BINUNICODE8`` must be UTF-8
  (surrogates allowed, as the unpickler's ``surrogatepass``), checked in
  1 MiB steps;
* Python 2 strings (``SHORT_BINSTRING``, ``BINSTRING``, ``STRING``) become
  what the load's ``encoding`` makes of them: latin-1 text, bytes, or ASCII
  text (other bytes refused).

Literals longer than :data:`BLOB_BYTES` are not copied: :func:`literal`
returns a :class:`~safenpz._pickle._rules.Blob` (type and length).
"""

from __future__ import annotations

import codecs
import pickle
import re

from ._opcodes import OPS, code
from ._rules import Blob, preview

__all__ = [
    "BLOB_BYTES",
    "BYTES_CODES",
    "COMMON",
    "PY2_CODES",
    "TEXT_CODES",
    "UNICODE_CODES",
    "latin1_size",
    "literal",
    "literal_size",
    "py2_problem",
    "text_problem",
    "utf8_problem",
]

#: Longer literals are passed to the shared checks as a Blob.
BLOB_BYTES = 1 << 16
_STEP = 1 << 20

SHORT_BINUNICODE = code("SHORT_BINUNICODE")
BINUNICODE = code("BINUNICODE")
BINUNICODE8 = code("BINUNICODE8")
SHORT_BINSTRING = code("SHORT_BINSTRING")
BINSTRING = code("BINSTRING")
SHORT_BINBYTES = code("SHORT_BINBYTES")
BINBYTES = code("BINBYTES")
BINBYTES8 = code("BINBYTES8")
BYTEARRAY8 = code("BYTEARRAY8")
STRING = code("STRING")
UNICODE = code("UNICODE")

#: Width of the length prefix of each binary string opcode.
_PREFIX = {
    SHORT_BINUNICODE: 1,
    BINUNICODE: 4,
    BINUNICODE8: 8,
    SHORT_BINSTRING: 1,
    BINSTRING: 4,
    SHORT_BINBYTES: 1,
    BINBYTES: 4,
    BINBYTES8: 8,
    BYTEARRAY8: 8,
}
#: Opcodes of UTF-8 text, of Python 2 strings, of bytes.
UNICODE_CODES = frozenset({SHORT_BINUNICODE, BINUNICODE, BINUNICODE8})
PY2_CODES = frozenset({SHORT_BINSTRING, BINSTRING, STRING})
BYTES_CODES = frozenset({SHORT_BINBYTES, BINBYTES, BINBYTES8})
#: Protocol 0 literals whose text the unpickler parses.
TEXT_CODES = frozenset(
    OPS[n].code for n in ("INT", "LONG", "FLOAT", "STRING", "UNICODE")
)

#: The spellings of each protocol 0 literal that need no closer look.
COMMON: dict[int, re.Pattern[bytes]] = {
    code("INT"): re.compile(rb"-?(?:0|[1-9][0-9]{0,30})"),
    code("LONG"): re.compile(rb"-?(?:0|[1-9][0-9]{0,30})L?"),
    code("FLOAT"): re.compile(
        rb"-?[0-9]{1,17}(?:\.[0-9]{0,17})?(?:[eE][-+]?[0-9]{1,2})?"
    ),
    STRING: re.compile(rb"'[^'\\]*'|\"[^\"\\]*\""),
    UNICODE: re.compile(rb"[^\\]*"),
}


def _loads_one(op: int, arg: bytes, encoding: str) -> object:
    """The C unpickler's reading of the one literal ``op arg\\n``."""
    return pickle.loads(bytes([op]) + arg + b"\n.", encoding=encoding)


def text_problem(op: int, arg: bytes, encoding: str) -> str | None:
    """Why the unpickler refuses the protocol 0 literal ``op arg`` (its text
    without the newline), or None."""
    if COMMON[op].fullmatch(arg) is not None:
        return None if op != STRING else py2_problem(arg[1:-1], encoding)
    try:
        _loads_one(op, arg, encoding)
    except Exception as err:  # the unpickler's own complaint, whatever it is
        return f"the unpickler refuses the literal {preview(arg)} ({err})"
    return None


def py2_problem(raw: bytes, encoding: str) -> str | None:
    """Why a Python 2 string cannot be read under `encoding` (only
    ``"ASCII"`` refuses anything), or None."""
    if encoding == "ASCII" and not raw.isascii():
        return "a Python 2 string that is not ASCII (the load's encoding)"
    return None


def utf8_problem(buf: bytes, start: int, end: int) -> str | None:
    """Why ``buf[start:end]`` is not UTF-8 as the unpickler reads text, or
    None (ASCII at once, the rest in 1 MiB steps)."""
    try:
        if end - start <= _STEP:
            raw = buf[start:end]
            if not raw.isascii():
                raw.decode("utf-8", "surrogatepass")
            return None
        decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        for at in range(start, end, _STEP):
            decoder.decode(buf[at : min(end, at + _STEP)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:
        return f"text that is not UTF-8 ({err.reason})"
    return None


_BEYOND_LATIN1 = re.compile(rb"[\xc4-\xff]")
_CONTINUATION = bytes(range(0x80, 0xC0))


def latin1_size(buf: bytes, start: int, end: int) -> int:
    """How many bytes the UTF-8 text ``buf[start:end]`` encodes to in
    latin-1, or -1 if it holds a character beyond latin-1 (a lead byte from
    0xC4 up: U+0100 and above)."""
    if _BEYOND_LATIN1.search(buf, start, end):
        return -1
    raw = buf[start:end]
    return len(raw.translate(None, _CONTINUATION))


def _span(buf: bytes, off: int) -> tuple[int, int]:
    """Where the payload of the binary string opcode at `off` lies."""
    width = _PREFIX[buf[off]]
    size = int.from_bytes(buf[off + 1 : off + 1 + width], "little")
    return off + 1 + width, off + 1 + width + size


def literal_size(buf: bytes, off: int) -> int:
    """The payload length of the binary string opcode at `off`."""
    start, end = _span(buf, off)
    return end - start


def literal(buf: bytes, off: int, encoding: str, limit: int = BLOB_BYTES) -> object:
    """The value of the string or bytes literal opcode at `off` (checked
    already), as the unpickler gives it; a :class:`Blob` beyond `limit`
    bytes."""
    op = buf[off]
    if op in (STRING, UNICODE):  # protocol 0 text: the unpickler's reading
        end = buf.find(b"\n", off)
        if end - off > limit:
            kind = "str" if op == UNICODE or encoding != "bytes" else "bytes"
            return Blob(kind, end - off - 1, None)
        return _loads_one(op, buf[off + 1 : end], encoding)
    start, end = _span(buf, off)
    if end - start > limit:
        return _blob(buf, op, start, end, encoding)
    raw = buf[start:end]
    if op in BYTES_CODES:
        return raw
    if op == BYTEARRAY8:
        return bytearray(raw)
    if op in UNICODE_CODES:
        return raw.decode("utf-8", "surrogatepass")
    return raw if encoding == "bytes" else raw.decode("latin-1")


def _blob(buf: bytes, op: int, start: int, end: int, encoding: str) -> Blob:
    size = end - start
    if op in BYTES_CODES or op == BYTEARRAY8:
        return Blob("bytes" if op != BYTEARRAY8 else "bytearray", size)
    if op in UNICODE_CODES:
        return Blob("str", size, latin1_size(buf, start, end))
    return Blob("bytes", size) if encoding == "bytes" else Blob("str", size, size)
