"""Hostile inputs for the safenpz tests, built in code (never shipped as files).

Three layers:

* a tiny **pickle assembler** (``glob``, ``sglob``, ``ustr``, ``call`` ...) to
  hand-write opcode streams, and :func:`global_sites`, an independent oracle
  (built on :mod:`pickletools`) that says which global each ``GLOBAL`` /
  ``STACK_GLOBAL`` / ``INST`` really names and at which byte offset;
* the **catalogue** :data:`HOSTILE`: payloads whose effect, when run by plain
  :func:`pickle.loads`, is to create a sentinel file (``os.system("touch ...")``,
  ``builtins.exec``, ``subprocess.call``, ``pathlib.Path.touch``, NumPy-internal
  gadgets ...), plus :data:`MALFORMED`: streams that abuse the format itself
  (memo indices, claimed lengths, frames, nesting, self-references ...);
* **containers**: :func:`npy_bytes` (a ``.npy`` header in front of any body),
  :func:`npz_bytes` (a zip made with :mod:`zipfile`) and :func:`raw_zip` (a zip
  written byte by byte, so tests can lie in every header field).

Python-2-era *benign* streams (how Python 2 + NumPy 1.x pickled object arrays)
live here too because they share the assembler.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import shlex
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safenpz import (
    FormatError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
)

# --------------------------------------------------------------------------
# the assembler

STOP = b"."
MARK = b"("
TUPLE = b"t"
REDUCE = b"R"
BUILD = b"b"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
NEWTRUE = b"\x88"
NEWFALSE = b"\x89"
NONE = b"N"


def proto(p: int) -> bytes:
    """``PROTO p``."""
    return b"\x80" + bytes([p])


def ustr(s: str) -> bytes:
    """A str literal: ``SHORT_BINUNICODE`` (or ``BINUNICODE`` when long)."""
    raw = s.encode("utf-8")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def ustr1(s: str) -> bytes:
    """A str literal as protocol 1 writes it (``BINUNICODE``)."""
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def ustr0(s: str) -> bytes:
    """A str literal in protocol 0 text form (``UNICODE``)."""
    return b"V" + s.encode("raw_unicode_escape") + b"\n"


def binstr(s: bytes) -> bytes:
    """A Python 2 ``str`` literal: ``SHORT_BINSTRING`` / ``BINSTRING``."""
    if len(s) < 256:
        return b"U" + bytes([len(s)]) + s
    return b"T" + struct.pack("<i", len(s)) + s


def bstr(b: bytes) -> bytes:
    """A bytes literal: ``SHORT_BINBYTES`` / ``BINBYTES``."""
    if len(b) < 256:
        return b"C" + bytes([len(b)]) + b
    return b"B" + struct.pack("<I", len(b)) + b


def intop(i: int) -> bytes:
    """An int: ``BININT1`` / ``BININT2`` / ``BININT`` / ``LONG1``."""
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    if -(2**31) <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    raw = pickle.encode_long(i)
    return b"\x8a" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    """``GLOBAL module name``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module: str, name: str) -> bytes:
    """``STACK_GLOBAL`` with two string literals."""
    return ustr(module) + ustr(name) + b"\x93"


def tup(*items: bytes) -> bytes:
    """A tuple of the given pushes."""
    return MARK + b"".join(items) + TUPLE


def call(fn: bytes, *args: bytes) -> bytes:
    """``fn(*args)`` with ``REDUCE``."""
    return fn + tup(*args) + REDUCE


def lst(*items: bytes) -> bytes:
    """A list (protocol 1+): ``EMPTY_LIST MARK items APPENDS``."""
    if not items:
        return b"]"
    return b"](" + b"".join(items) + b"e"


def stream(body: bytes, p: int | None = 2) -> bytes:
    """``[PROTO p] body STOP``."""
    head = proto(p) if p is not None and p >= 2 else b""
    return head + body + STOP


def framed(body: bytes, p: int = 5) -> bytes:
    """``PROTO p FRAME n body STOP`` (protocol 4+ framing)."""
    inner = body + STOP
    return proto(p) + b"\x95" + struct.pack("<Q", len(inner)) + inner


# --------------------------------------------------------------------------
# the oracle


_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
}


@dataclass(frozen=True)
class Site:
    """One place where a stream names a global."""

    qualname: str | None  # None: not a pair of string literals
    opcode: str
    offset: int


def global_sites(data: bytes) -> list[Site]:
    """Every ``GLOBAL``/``STACK_GLOBAL``/``INST`` of `data`, with what it names.

    Independent of safenpz: built on :func:`pickletools.genops`, following
    string literals through the memo with the C unpickler's rules (``MEMOIZE``
    stores at index *number of memo entries*, not *largest index + 1*).
    Good enough for pickler output and for the hand-built streams here.
    """
    sites: list[Site] = []
    top2: list[object] = [None, None]
    memo: dict[int, object] = {}
    for op, arg, pos in pickletools.genops(data):
        assert pos is not None  # genops on bytes knows every offset
        name = op.name
        if name in ("GLOBAL", "INST"):
            assert isinstance(arg, str)
            mod, _, nam = arg.partition(" ")
            sites.append(Site(f"{mod}.{nam}", name, pos))
            top2 = [None, None]
        elif name == "STACK_GLOBAL":
            a, b = top2
            q = f"{a}.{b}" if isinstance(a, str) and isinstance(b, str) else None
            sites.append(Site(q, name, pos))
            top2 = [None, None]
        elif name in _STRING_OPS:
            top2 = [top2[1], arg]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = top2[1]  # type: ignore[arg-type]
        elif name == "MEMOIZE":
            memo[len(memo)] = top2[1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            top2 = [top2[1], memo.get(int(arg))]  # type: ignore[arg-type]
        elif name == "DUP":
            top2 = [top2[1], top2[1]]
        elif name in ("PROTO", "FRAME"):
            pass
        else:
            top2 = [None, None]
    return sites


def opcode_offset(data: bytes, opcode: str, nth: int = 0) -> int:
    """Byte offset of the `nth` occurrence of `opcode` (opcode scan only)."""
    seen = 0
    pos = 0
    n = len(data)
    table = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
    while pos < n:
        op = table[data[pos]]
        if op.name == opcode:
            if seen == nth:
                return pos
            seen += 1
        arg = op.arg
        pos += 1
        if arg is None:
            continue
        if arg.n >= 0:
            pos += arg.n
        elif op.name in ("GLOBAL", "INST"):
            pos = data.index(b"\n", data.index(b"\n", pos) + 1) + 1
        elif arg.n == pickletools.UP_TO_NEWLINE:
            pos = data.index(b"\n", pos) + 1
        else:
            width = {
                pickletools.TAKEN_FROM_ARGUMENT1: 1,
                pickletools.TAKEN_FROM_ARGUMENT4: 4,
                pickletools.TAKEN_FROM_ARGUMENT4U: 4,
                pickletools.TAKEN_FROM_ARGUMENT8U: 8,
            }[arg.n]
            size = int.from_bytes(data[pos : pos + width], "little")
            pos += width if op.name == "FRAME" else width + size
    msg = f"no {opcode} in the stream"
    raise AssertionError(msg)


def message_pattern(*parts: str, offset: int | None = None) -> str:
    """A regex asserting (in any order) that every literal of `parts` and
    ``byte <offset>`` appear in the message."""
    looks = [f"(?=.*{re.escape(p)})" for p in parts]
    if offset is not None:
        looks.append(rf"(?=.*\b(?:byte|offset) {offset}\b)")
    return "(?s)^" + "".join(looks)


# --------------------------------------------------------------------------
# the catalogue


def shell_cmd(sentinel: str) -> str:
    """A shell command creating `sentinel`."""
    return f"touch {shlex.quote(sentinel)}"


def py_code(sentinel: str) -> str:
    """Python source creating `sentinel` (a statement that is also an
    expression, for both ``exec`` and ``eval``)."""
    return f"open({sentinel!r}, 'w').close()"


@dataclass(frozen=True)
class Expected:
    """What safenpz must raise for one stream."""

    error: type[SafenpzError]
    qualname: str | None = None  # the global the message must name
    opcode: str | None = None  # the opcode the message must name
    extra: tuple[str, ...] = ()  # more words the message must contain
    offset: int | None = None  # the byte offset the message must give

    def parts(self) -> tuple[str, ...]:
        """Literal words the message must contain."""
        named = tuple(x for x in (self.qualname, self.opcode) if x is not None)
        return named + self.extra

    def pattern(self, member: str | None = None) -> str:
        """The regex for ``pytest.raises(match=...)``."""
        parts = self.parts() if member is None else (member, *self.parts())
        return message_pattern(*parts, offset=self.offset)


#: Expectation: given the stream, what must be raised.
Expect = Callable[[bytes], Expected]


def names_global(qualname: str, opcode: str | None = None) -> Expect:
    """UnsafeFileError naming `qualname`, its opcode and its offset (found by
    :func:`global_sites`)."""

    def expect(data: bytes) -> Expected:
        for site in global_sites(data):
            if site.qualname == qualname and opcode in (None, site.opcode):
                return Expected(UnsafeFileError, qualname, site.opcode, (), site.offset)
        msg = f"{qualname} ({opcode}) is not named by the stream"
        raise AssertionError(msg)

    return expect


def first_global() -> Expect:
    """UnsafeFileError naming the first global of the stream (pickler output)."""

    def expect(data: bytes) -> Expected:
        site = global_sites(data)[0]
        assert site.qualname is not None
        return Expected(UnsafeFileError, site.qualname, site.opcode, (), site.offset)

    return expect


def at_opcode(
    error: type[SafenpzError], opcode: str, *extra: str, nth: int = 0
) -> Expect:
    """`error` naming `opcode` (and `extra`) at the offset of its `nth` use."""

    def expect(data: bytes) -> Expected:
        return Expected(error, None, opcode, extra, opcode_offset(data, opcode, nth))

    return expect


def plain(error: type[SafenpzError], *extra: str) -> Expect:
    """`error` whose message contains `extra` (no offset required)."""

    def expect(data: bytes) -> Expected:
        return Expected(error, None, None, extra, None)

    return expect


@dataclass(frozen=True)
class Hostile:
    """One hostile stream.

    Attributes
    ----------
    id : str
        Test id.
    build : callable
        ``build(sentinel_path) -> bytes``.
    expect : Expect
        What safenpz must raise.
    runs : bool
        Plain :func:`pickle.loads` of the stream creates the sentinel (checked
        in a subprocess by the control tests).
    prelude : str
        Python run in the control subprocess before ``pickle.loads``.
    """

    id: str
    build: Callable[[str], bytes]
    expect: Expect
    runs: bool = True
    prelude: str = ""


class _Reduce:
    """An object whose pickle calls ``fn(*args)`` when loaded."""

    def __init__(self, fn: object, *args: object) -> None:
        self.fn = fn
        self.args = args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.fn, self.args


def _reduce_gadget(p: int, make: Callable[[str], _Reduce]) -> Callable[[str], bytes]:
    return lambda s: pickle.dumps(make(s), protocol=p)


def _reduce_cases() -> list[Hostile]:
    import builtins
    import os

    makers: dict[str, Callable[[str], _Reduce]] = {
        "os.system": lambda s: _Reduce(os.system, shell_cmd(s)),
        "subprocess.call": lambda s: _Reduce(subprocess.call, ["touch", s]),
        "builtins.exec": lambda s: _Reduce(builtins.exec, py_code(s)),
        "builtins.eval": lambda s: _Reduce(builtins.eval, py_code(s)),
    }
    return [
        Hostile(
            f"reduce-{name}-p{p}",
            _reduce_gadget(p, make),
            first_global(),
        )
        for name, make in makers.items()
        for p in range(6)
    ]


def _memoize_confusion(s: str) -> bytes:
    """``STACK_GLOBAL`` whose names come through the memo, laid out so that a
    scanner assigning ``MEMOIZE`` the index *largest + 1* sees
    ``numpy.dtype`` where the C unpickler (index = *number of entries*) sees
    ``os.system``."""
    body = (
        ustr("numpy")
        + b"q\x01"  # BINPUT 1        memo {1: numpy}
        + b"0"
        + ustr("os")
        + b"\x94"  # MEMOIZE: C -> memo[1] = os   (a max+1 scanner: memo[2])
        + b"0"
        + ustr("dtype")
        + b"q\x03"  # BINPUT 3        memo {1: os, 3: dtype}
        + b"0"
        + ustr("pad")
        + b"q\x00"  # BINPUT 0        three entries
        + b"0"
        + ustr("system")
        + b"\x94"  # MEMOIZE: C -> memo[3] = system (a max+1 scanner: memo[4])
        + b"0"
        + b"h\x01h\x03\x93"  # BINGET 1, BINGET 3, STACK_GLOBAL
        + ustr(shell_cmd(s))
        + TUPLE1
        + REDUCE
    )
    return stream(body, 4)


def _global_cases() -> list[Hostile]:
    """GLOBAL, protocols 0-3: os / posix / nt / subprocess / builtins / io."""
    H = Hostile
    return [
        H(
            "global-os.system-p0",
            lambda s: glob("os", "system") + MARK + ustr0(shell_cmd(s)) + b"tR.",
            names_global("os.system", "GLOBAL"),
        ),
        H(
            "global-posix.system-p1",
            lambda s: call(glob("posix", "system"), ustr1(shell_cmd(s))) + STOP,
            names_global("posix.system", "GLOBAL"),
        ),
        H(
            "global-nt.system-p2",
            lambda s: stream(call(glob("nt", "system"), ustr(shell_cmd(s)))),
            names_global("nt.system", "GLOBAL"),
            runs=sys.platform == "win32",
        ),
        H(
            "global-subprocess.call-p2",
            lambda s: stream(
                call(glob("subprocess", "call"), lst(ustr("touch"), ustr(s)))
            ),
            names_global("subprocess.call", "GLOBAL"),
        ),
        H(
            "global-subprocess.check_call-p3",
            lambda s: stream(
                call(glob("subprocess", "check_call"), lst(ustr("touch"), ustr(s))), 3
            ),
            names_global("subprocess.check_call", "GLOBAL"),
        ),
        H(
            "global-builtins.exec-p2",
            lambda s: stream(call(glob("builtins", "exec"), ustr(py_code(s)))),
            names_global("builtins.exec", "GLOBAL"),
        ),
        H(
            "global-__builtin__.eval-p0",
            lambda s: glob("__builtin__", "eval") + MARK + ustr0(py_code(s)) + b"tR.",
            names_global("__builtin__.eval", "GLOBAL"),
        ),
        H(
            "global-io.open-p2",
            lambda s: stream(call(glob("io", "open"), ustr(s), ustr("w"))),
            names_global("io.open", "GLOBAL"),
        ),
    ]


def _global_chain_cases() -> list[Hostile]:
    """GLOBAL gadgets that reach os.system through an allowed-looking callable."""
    H = Hostile
    return [
        H(
            "global-builtins.getattr-chain-p2",
            lambda s: stream(
                call(
                    call(
                        glob("builtins", "getattr"),
                        call(glob("builtins", "__import__"), ustr("os")),
                        ustr("system"),
                    ),
                    ustr(shell_cmd(s)),
                )
            ),
            names_global("builtins.getattr", "GLOBAL"),
        ),
        H(
            "global-functools.partial-p2",
            lambda s: stream(
                call(
                    call(
                        glob("functools", "partial"),
                        glob("os", "system"),
                        ustr(shell_cmd(s)),
                    )
                )
            ),
            names_global("functools.partial", "GLOBAL"),
        ),
        H(
            "global-pickle.loads-nested-p2",
            lambda s: stream(
                call(
                    glob("pickle", "loads"),
                    bstr(stream(call(glob("os", "system"), ustr(shell_cmd(s))), 2)),
                ),
                3,
            ),
            names_global("pickle.loads", "GLOBAL"),
        ),
    ]


def _stack_global_cases() -> list[Hostile]:
    """STACK_GLOBAL, protocols 4-5, with literal names."""
    H = Hostile
    return [
        H(
            "stack_global-builtins.eval-p4",
            lambda s: stream(
                sglob("builtins", "eval") + ustr(py_code(s)) + b"\x85R", 4
            ),
            names_global("builtins.eval", "STACK_GLOBAL"),
        ),
        H(
            "stack_global-os.system-p5-framed",
            lambda s: framed(sglob("os", "system") + ustr(shell_cmd(s)) + b"\x85R"),
            names_global("os.system", "STACK_GLOBAL"),
        ),
        H(
            "stack_global-posix.system-memoized-names-p4",
            lambda s: stream(
                ustr("posix")
                + b"\x94"
                + ustr("system")
                + b"\x94"
                + b"\x93"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            names_global("posix.system", "STACK_GLOBAL"),
        ),
        H(
            "stack_global-builtins.getattr-chain-p4",
            lambda s: stream(
                sglob("builtins", "getattr")
                + MARK
                + sglob("builtins", "__import__")
                + ustr("os")
                + b"\x85R"
                + ustr("system")
                + b"tR"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            names_global("builtins.getattr", "STACK_GLOBAL"),
        ),
        H(
            "stack_global-pathlib.Path.touch-p4",
            lambda s: stream(
                sglob("pathlib", "Path.touch")
                + sglob("pathlib", "PosixPath")
                + ustr(s)
                + b"\x85R\x85R",
                4,
            ),
            names_global("pathlib.Path.touch", "STACK_GLOBAL"),
            runs=sys.platform != "win32",
        ),
        H(
            "stack_global-py2-binstring-names",
            lambda s: stream(
                binstr(b"posix")
                + binstr(b"system")
                + b"\x93"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            names_global("posix.system", "STACK_GLOBAL"),
        ),
    ]


def _computed_stack_global_cases() -> list[Hostile]:
    """STACK_GLOBAL whose names are computed, not literals."""
    H = Hostile
    return [
        H(
            "stack_global-computed-dup-pop",
            lambda s: stream(
                ustr("os")
                + ustr("system")
                + b"20"
                + b"\x93"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            at_opcode(UnsafeFileError, "STACK_GLOBAL"),
        ),
        H(
            "stack_global-computed-reduce-of-allowed-constructor",
            lambda s: stream(
                call(glob("_codecs", "encode"), ustr("os"), ustr("latin1"))
                + ustr("system")
                + b"\x93"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            at_opcode(UnsafeFileError, "STACK_GLOBAL"),
            runs=False,  # the C unpickler wants str names; still refused first
        ),
        H(
            "stack_global-computed-memo-of-reduce",
            lambda s: stream(
                call(glob("_codecs", "encode"), ustr("os"), ustr("latin1"))
                + b"q\x00"
                + b"0"
                + b"h\x00"
                + ustr("system")
                + b"\x93"
                + ustr(shell_cmd(s))
                + b"\x85R",
                4,
            ),
            at_opcode(UnsafeFileError, "STACK_GLOBAL"),
            runs=False,
        ),
        H(
            "stack_global-computed-protocol0-unicode-names",
            lambda s: (
                ustr0("os")
                + ustr0("system")
                + b"\x93"
                + MARK
                + ustr0(shell_cmd(s))
                + b"tR."
            ),
            at_opcode(UnsafeFileError, "STACK_GLOBAL"),
        ),
        H(
            "stack_global-memoize-index-confusion",
            _memoize_confusion,
            names_global("os.system", "STACK_GLOBAL"),
        ),
    ]


def _numpy_call_cases() -> list[Hostile]:
    """NumPy-internal gadgets called directly."""
    H = Hostile
    return [
        H(
            "numpy-load",
            lambda s: stream(call(glob("numpy", "load"), ustr(s))),
            names_global("numpy.load"),
            runs=False,
        ),
        H(
            "numpy-lib.format.read_array",
            lambda s: stream(call(glob("numpy.lib.format", "read_array"), ustr(s))),
            names_global("numpy.lib.format.read_array"),
            runs=False,
        ),
        H(
            "numpy-testing-runstring",
            lambda s: stream(
                call(
                    glob("numpy.testing._private.utils", "runstring"),
                    ustr(py_code(s)),
                    EMPTY_DICT,
                )
            ),
            names_global("numpy.testing._private.utils.runstring"),
        ),
        H(
            "numpy-f2py-crackfortran.myeval",
            lambda s: stream(
                call(glob("numpy.f2py.crackfortran", "myeval"), ustr(py_code(s)))
            ),
            names_global("numpy.f2py.crackfortran.myeval"),
        ),
        H(
            "numpy-frompyfunc-os.system",
            lambda s: stream(
                call(
                    call(
                        glob("numpy", "frompyfunc"),
                        glob("os", "system"),
                        intop(1),
                        intop(1),
                    ),
                    ustr(shell_cmd(s)),
                )
            ),
            names_global("numpy.frompyfunc"),
        ),
    ]


def _numpy_class_cases() -> list[Hostile]:
    """NumPy-internal gadgets: libraries and classes given to reconstructors."""
    H = Hostile
    return [
        H(
            "numpy-ctypeslib.load_library",
            lambda s: stream(
                call(glob("numpy.ctypeslib", "load_library"), ustr("libc"), ustr(s))
            ),
            names_global("numpy.ctypeslib.load_library"),
            runs=False,
        ),
        H(
            "numpy-_reconstruct-class-global",
            lambda s: stream(
                call(
                    glob("numpy.core.multiarray", "_reconstruct"),
                    glob("subprocess", "Popen"),
                    tup(intop(0)),
                    bstr(b"b"),
                )
            ),
            names_global("subprocess.Popen"),
            runs=False,
        ),
        H(
            "numpy-_reconstruct-memmap-subclass",
            lambda s: stream(
                call(
                    glob("numpy._core.multiarray", "_reconstruct"),
                    glob("numpy", "memmap"),
                    tup(intop(0)),
                    bstr(b"b"),
                )
            ),
            names_global("numpy.memmap"),
            runs=False,
        ),
        H(
            "numpy-ma-_mareconstruct",
            lambda s: stream(
                call(
                    glob("numpy.ma.core", "_mareconstruct"),
                    glob("numpy.ma.core", "MaskedArray"),
                    glob("numpy", "ndarray"),
                    tup(intop(0)),
                    bstr(b"b"),
                )
            ),
            names_global("numpy.ma.core._mareconstruct"),
            runs=False,
        ),
    ]


def _instantiating_cases() -> list[Hostile]:
    """The instantiating opcodes (INST, OBJ, NEWOBJ, NEWOBJ_EX)."""
    H = Hostile
    return [
        H(
            "inst-os.system",
            lambda s: MARK + ustr0(shell_cmd(s)) + b"ios\nsystem\n.",
            names_global("os.system", "INST"),
        ),
        H(
            "obj-os.system",
            lambda s: MARK + glob("os", "system") + ustr0(shell_cmd(s)) + b"o.",
            names_global("os.system", "GLOBAL"),
        ),
        H(
            "obj-allowed-class",
            lambda s: stream(MARK + glob("builtins", "set") + b"o"),
            at_opcode(UnsafeFileError, "OBJ"),
            runs=False,
        ),
        H(
            "newobj-allowed-class",
            lambda s: stream(glob("builtins", "set") + EMPTY_TUPLE + b"\x81"),
            at_opcode(UnsafeFileError, "NEWOBJ"),
            runs=False,
        ),
        H(
            "newobj-subprocess.Popen",
            lambda s: stream(
                glob("subprocess", "Popen") + tup(lst(ustr("touch"), ustr(s))) + b"\x81"
            ),
            names_global("subprocess.Popen"),
            runs=False,
        ),
        H(
            "newobj_ex-allowed-class",
            lambda s: stream(
                sglob("builtins", "set") + EMPTY_TUPLE + EMPTY_DICT + b"\x92", 4
            ),
            at_opcode(UnsafeFileError, "NEWOBJ_EX"),
            runs=False,
        ),
    ]


def _persid_buffer_ext_cases() -> list[Hostile]:
    """Persistent ids, out-of-band buffers and the extension registry."""
    H = Hostile
    return [
        H(
            "persid",
            lambda s: b"P" + shell_cmd(s).encode() + b"\n.",
            at_opcode(UnsafeFileError, "PERSID"),
            runs=False,
        ),
        H(
            "binpersid",
            lambda s: stream(ustr(shell_cmd(s)) + b"Q"),
            at_opcode(UnsafeFileError, "BINPERSID"),
            runs=False,
        ),
        H(
            "next_buffer",
            lambda s: stream(b"\x97", 5),
            at_opcode(UnsafeFileError, "NEXT_BUFFER"),
            runs=False,
        ),
        H(
            "readonly_buffer",
            lambda s: stream(NONE + b"\x98", 5),
            at_opcode(UnsafeFileError, "READONLY_BUFFER"),
            runs=False,
        ),
        H(
            "ext1-unregistered",
            lambda s: stream(b"\x82\x01" + ustr(shell_cmd(s)) + b"\x85R"),
            at_opcode(UnsafeFileError, "EXT1"),
            runs=False,
        ),
    ]


def _hand_cases() -> list[Hostile]:
    return (
        _global_cases()
        + _global_chain_cases()
        + _stack_global_cases()
        + _computed_stack_global_cases()
        + _numpy_call_cases()
        + _numpy_class_cases()
        + _instantiating_cases()
        + _persid_buffer_ext_cases()
    )


HOSTILE: list[Hostile] = _hand_cases() + _reduce_cases()

#: EXT opcodes with the extension code each test registers for ``os.system``.
EXT_CODES: dict[str, tuple[bytes, int]] = {
    "EXT1": (b"\x82", 0xF1),
    "EXT2": (b"\x83", 0x1F1),
    "EXT4": (b"\x84", 0x1F1F1F1),
}


def ext_payload(opcode: str, sentinel: str) -> bytes:
    """``EXTn code`` followed by a call with a shell command."""
    op, code = EXT_CODES[opcode]
    width = {"EXT1": 1, "EXT2": 2, "EXT4": 4}[opcode]
    return stream(
        op + code.to_bytes(width, "little") + ustr(shell_cmd(sentinel)) + b"\x85R"
    )


# --------------------------------------------------------------------------
# abuse of the format itself (no code, but memory, time, recursion, confusion)

DEPTH = 100_000


@dataclass(frozen=True)
class Malformed:
    """One stream that is malformed or abusive."""

    id: str
    data: bytes
    expect: Expect


def _nested_dicts(n: int) -> bytes:
    return b"}K\x00" * (n - 1) + b"}" + b"s" * (n - 1)


MALFORMED: list[Malformed] = [
    Malformed(
        "memo-long_binput-0xffffffff",
        stream(b"K\x01r\xff\xff\xff\xff"),
        at_opcode(FormatError, "LONG_BINPUT"),
    ),
    Malformed(
        "memo-put-huge-text-index",
        b"Np99999999999999\n.",
        at_opcode(FormatError, "PUT"),
    ),
    Malformed(
        "memo-long_binget-0xffffffff",
        stream(b"j\xff\xff\xff\xff"),
        plain(FormatError, "4294967295"),
    ),
    Malformed(
        "memo-get-before-put",
        stream(b"h\x05"),
        plain(FormatError),
    ),
    Malformed(
        "binunicode8-claims-2**62",
        stream(b"\x8d" + struct.pack("<Q", 2**62) + b"abc", 4),
        at_opcode(FormatError, "BINUNICODE8"),
    ),
    Malformed(
        "binbytes8-claims-2**63",
        stream(b"\x8e" + struct.pack("<Q", 2**63) + b"abc", 4),
        at_opcode(FormatError, "BINBYTES8"),
    ),
    Malformed(
        "bytearray8-claims-2**40",
        stream(b"\x96" + struct.pack("<Q", 2**40) + b"abc", 5),
        at_opcode(FormatError, "BYTEARRAY8"),
    ),
    Malformed(
        "binunicode-claims-4GiB",
        stream(b"X\xff\xff\xff\xffabc"),
        at_opcode(FormatError, "BINUNICODE"),
    ),
    Malformed(
        "binstring-negative-length",
        stream(b"T\xff\xff\xff\xffabc"),
        at_opcode(FormatError, "BINSTRING"),
    ),
    Malformed(
        "long4-claims-2GiB",
        stream(b"\x8b\xff\xff\xff\x7f\x01"),
        at_opcode(FormatError, "LONG4"),
    ),
    Malformed(
        "frame-claims-1GB",
        proto(4) + b"\x95" + struct.pack("<Q", 10**9) + b"K\x01.",
        at_opcode(FormatError, "FRAME"),
    ),
    Malformed(
        "mark-100k-deep",
        proto(2) + MARK * DEPTH + STOP,
        at_opcode(LimitError, "MARK", "max_depth", nth=64),
    ),
    Malformed(
        "lists-100k-nested",
        proto(2) + b"]" * DEPTH + b"a" * (DEPTH - 1) + STOP,
        plain(LimitError, "max_depth"),
    ),
    Malformed(
        "tuples-100k-nested",
        proto(2) + EMPTY_TUPLE + TUPLE1 * DEPTH + STOP,
        plain(LimitError, "max_depth"),
    ),
    Malformed(
        "dicts-100k-nested",
        proto(2) + _nested_dicts(DEPTH) + STOP,
        plain(LimitError, "max_depth"),
    ),
    Malformed(
        "list-contains-itself",
        b"]q\x00h\x00a.",
        plain(FormatError, "contains itself"),
    ),
    Malformed(
        "dict-contains-itself",
        b"}q\x00K\x00h\x00s.",
        plain(FormatError, "contains itself"),
    ),
    Malformed(
        "list-contains-tuple-containing-it",
        b"]q\x00h\x00\x85a.",
        plain(FormatError, "contains itself"),
    ),
    Malformed(
        "trailing-bytes-after-stop",
        pickle.dumps([1, 2], protocol=2) + b"junk",
        at_opcode(FormatError, "STOP", "trailing"),
    ),
    Malformed(
        "unknown-opcode-0xff",
        proto(2) + b"\xff" + STOP,
        plain(FormatError, "0xff"),
    ),
    Malformed("protocol-6", proto(6) + NONE + STOP, at_opcode(FormatError, "PROTO")),
    Malformed("no-stop", proto(2) + NONE, plain(FormatError)),
    Malformed("empty-stream", b"", plain(FormatError)),
    Malformed("stop-on-empty-stack", proto(2) + STOP, plain(FormatError)),
    Malformed(
        "global-without-newline",
        b"cnumpy\ndtype",
        at_opcode(FormatError, "GLOBAL"),
    ),
    Malformed(
        "stack_global-on-empty-stack",
        proto(4) + b"\x93" + STOP,
        at_opcode(UnsafeFileError, "STACK_GLOBAL"),
    ),
]


# --------------------------------------------------------------------------
# benign Python 2 + NumPy 1.x streams (how the hosted Keras files were written)


def py2_dtype(code: bytes, endian: bytes, elsize: int, flags: int) -> bytes:
    """``numpy.dtype(code, False, True)`` + ``BUILD`` state, Python 2 style."""
    return (
        glob("numpy", "dtype")
        + binstr(code)
        + NEWFALSE
        + NEWTRUE
        + TUPLE3
        + REDUCE
        + MARK
        + intop(3)
        + binstr(endian)
        + NONE * 3
        + b"J\xff\xff\xff\xff" * 2
        + intop(flags)
        + TUPLE
        + BUILD
    )


def py2_array(shape: Sequence[int], dtype: bytes, data: bytes) -> bytes:
    """``_reconstruct(ndarray, (0,), 'b')`` + ``BUILD (1, shape, dtype,
    False, data)`` with the ``numpy.core.multiarray`` spelling; `data` is a
    Python 2 ``str`` (numeric arrays) or a list (object arrays)."""
    return (
        glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray")
        + intop(0)
        + TUPLE1
        + binstr(b"b")
        + TUPLE3
        + REDUCE
        + MARK
        + intop(1)
        + tup(*(intop(d) for d in shape))
        + dtype
        + NEWFALSE
        + data
        + TUPLE
        + BUILD
    )


PY2_OBJECT_DTYPE = py2_dtype(b"O8", b"|", -1, 63)


def py2_object_array(items: Sequence[bytes]) -> bytes:
    """A whole Python-2 protocol-2 stream of a 1-D object array of `items`
    (each an assembled push)."""
    return stream(py2_array([len(items)], PY2_OBJECT_DTYPE, lst(*items)), 2)


def py2_int_list(values: Sequence[int]) -> bytes:
    """A Python 2 list of ints (``LONG1`` for values outside int32)."""
    return lst(*(intop(v) for v in values))


def shared_row_array(row_len: int, n_rows: int) -> bytes:
    """A Python-2-style object array of `n_rows` rows that are all the *same*
    list of `row_len` ints (one list, then ``BINGET`` of it): a few bytes per
    row in the file, `row_len` values per row once materialised."""
    row = lst(*[intop(i % 200) for i in range(row_len)])
    rows = b"](" + row[:1] + b"q\x01" + row[1:] + b"h\x01" * (n_rows - 1) + b"e"
    return stream(py2_array([n_rows], PY2_OBJECT_DTYPE, rows), 2)


# --------------------------------------------------------------------------
# containers


def npy_header(
    *,
    descr: str = "|O",
    shape: tuple[int, ...] = (1,),
    fortran_order: bool = False,
    version: tuple[int, int] = (1, 0),
    text: str | None = None,
) -> bytes:
    """A ``.npy`` header as NumPy writes it (or with `text` as the dict)."""
    if text is None:
        text = (
            f"{{'descr': {descr!r}, 'fortran_order': {fortran_order!r}, "
            f"'shape': {shape!r}, }}"
        )
    width = 2 if version == (1, 0) else 4
    raw = text.encode("utf-8" if version == (3, 0) else "latin-1")
    pad = -(len(raw) + 1 + 8 + width) % 64
    raw = raw + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(raw).to_bytes(width, "little") + raw


#: ``.npy`` header dict texts NumPy never writes: ``load`` refuses each with a
#: FormatError about the header (written with ``npy_header(text=...)``).
BAD_HEADERS: dict[str, str] = {
    "missing-shape": "{'descr': '<i8', 'fortran_order': False}",
    "extra-key": "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), 'x': 1}",
    "not-a-dict": "[('descr', '<i8')]",
    "negative-dim": "{'descr': '<i8', 'fortran_order': False, 'shape': (-1,)}",
    "float-dim": "{'descr': '<i8', 'fortran_order': False, 'shape': (1.0,)}",
    "bool-dim": "{'descr': '<i8', 'fortran_order': False, 'shape': (True,)}",
    "shape-list": "{'descr': '<i8', 'fortran_order': False, 'shape': [1]}",
    "shape-int": "{'descr': '<i8', 'fortran_order': False, 'shape': 1}",
    "fortran-str": "{'descr': '<i8', 'fortran_order': 'no', 'shape': (1,)}",
    "fortran-int": "{'descr': '<i8', 'fortran_order': 0, 'shape': (1,)}",
    "descr-unknown": "{'descr': '<q9', 'fortran_order': False, 'shape': (1,)}",
    "descr-int": "{'descr': 8, 'fortran_order': False, 'shape': (1,)}",
    "descr-bad-field": "{'descr': [('a', 'zz')], 'fortran_order': False, "
    "'shape': (1,)}",
    "syntax-error": "{'descr': '<i8', 'fortran_order': False, 'shape': (1,}",
    "call": "{'descr': str(1), 'fortran_order': False, 'shape': (1,)}",
    "deep-nesting": "[" * 3000 + "]" * 3000,
    "empty": "",
    "65-dims": "{'descr': '<i8', 'fortran_order': False, 'shape': (" + "1," * 65 + ")}",
}


def npy_bytes(body: bytes, **header: object) -> bytes:
    """`body` after an object-dtype (by default) ``.npy`` header."""
    return npy_header(**header) + body  # type: ignore[arg-type]


def npz_bytes(
    members: dict[str, bytes], compression: int = zipfile.ZIP_STORED
) -> bytes:
    """A zip archive (written by :mod:`zipfile`) with the given members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@dataclass
class RawMember:
    """One member of :func:`raw_zip`; every header field can be forced."""

    name: str
    data: bytes  # as stored in the archive (already compressed)
    method: int = 0
    crc: int | None = None  # default: CRC of `plain` (or `data` when stored)
    usize: int | None = None  # default: len(plain) (or len(data))
    plain: bytes | None = None  # the uncompressed bytes, when method != 0
    flags: int = 0
    zip64: bool = False  # write the sizes in a zip64 extra field
    header_offset: int | None = None  # force the central directory's offset


def deflate(data: bytes, level: int = 6) -> bytes:
    """Raw deflate (no zlib header), as zip stores it."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(members: Sequence[RawMember], *, trailing: bytes = b"") -> bytes:
    """Write a zip archive byte by byte (local headers, central directory,
    end record) so tests can put any value in any field."""
    out = bytearray()
    central = bytearray()
    for m in members:
        plain_ = m.plain if m.plain is not None else m.data
        crc = zlib.crc32(plain_) if m.crc is None else m.crc
        usize = len(plain_) if m.usize is None else m.usize
        csize = len(m.data)
        name = m.name.encode("utf-8")
        extra = b""
        u32, c32 = usize, csize
        if m.zip64:
            extra = struct.pack("<HHQQ", 1, 16, usize, csize)
            u32 = c32 = 0xFFFFFFFF
        offset = len(out)
        out += struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            45 if m.zip64 else 20,
            m.flags,
            m.method,
            0,
            0x21,
            crc,
            c32,
            u32,
            len(name),
            len(extra),
        )
        out += name + extra + m.data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            45 if m.zip64 else 20,
            m.flags,
            m.method,
            0,
            0x21,
            crc,
            c32,
            u32,
            len(name),
            len(extra),
            0,
            0,
            0,
            0,
            offset if m.header_offset is None else m.header_offset,
        )
        central += name + extra
    cd_offset = len(out)
    out += central
    out += struct.pack(
        "<4s4H2LH",
        b"PK\x05\x06",
        0,
        0,
        len(members),
        len(members),
        len(central),
        cd_offset,
        0,
    )
    return bytes(out) + trailing


def obj_array(items: list[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An object array holding `items` as elements (no sequence unpacking)."""
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr if shape is None else arr.reshape(shape)


def hostile_npy_bytes(sentinel: str | Path) -> bytes:
    """An object-array ``.npy`` whose pickle would run ``touch <sentinel>``
    (byte for byte what ``safenpz demo`` writes as its hostile file)."""
    import os

    cmd = f"touch {sentinel}"
    return npy_bytes(pickle.dumps(obj_array([_Reduce(os.system, cmd)]), protocol=2))


# --------------------------------------------------------------------------
# the control: plain pickle really runs the payload


def run_plain_pickle(data: bytes, prelude: str = "", timeout: float = 60) -> None:
    """Run ``pickle.loads(data)`` in a fresh interpreter (errors ignored)."""
    code = (
        "import pickle, sys\n"
        + prelude
        + "\ntry:\n    pickle.loads(sys.stdin.buffer.read())\n"
        + "except Exception:\n    pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        input=data,
        capture_output=True,
        timeout=timeout,
        check=True,
        cwd=str(Path(__file__).parent),
    )
