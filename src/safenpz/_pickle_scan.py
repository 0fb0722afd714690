"""Static pickle scanner: walks the opcode stream, never executes it.

The scanner is the first line of defence of :func:`safenpz.load` and the engine
of ``safenpz scan``. It reads a pickle stream opcode by opcode (without
building any object) and checks, before anything is decoded:

* every opcode is known, and none of the never-allowed ones appears:
  ``PERSID``/``BINPERSID`` (persistent ids), ``EXT1/2/4`` (extension
  registry, whose cache can hold real callables), ``INST``/``OBJ``/``NEWOBJ``/
  ``NEWOBJ_EX`` (instantiate arbitrary classes), ``NEXT_BUFFER``/
  ``READONLY_BUFFER`` (out-of-band buffers);
* every global (``GLOBAL`` or ``STACK_GLOBAL``) names an entry of safenpz's
  closed table :data:`SAFE_GLOBALS`; ``STACK_GLOBAL`` must take its two names
  from string literals (directly or through the memo), never from a computed
  value;
* length-prefixed arguments fit in the data, memo indices are bounded by the
  stream length (CPython sizes its memo array by the largest index), frames
  fit, the MARK nesting stays under ``max_depth``, the number of containers
  under ``max_items``, and nothing but a few bytes of whitespace
  (:data:`MAX_TRAILING_WHITESPACE`) follows ``STOP``.

Problems are reported with the opcode name and its byte offset in the stream.
For speed, runs of plain fixed-width opcodes (small ints, floats, ``None``,
booleans, appends, memo gets/one-byte puts) are skipped by one compiled regular
expression, so the Python loop only runs on the opcodes that matter.
"""

from __future__ import annotations

import pickletools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ._exceptions import FormatError, LimitError, UnsafeFileError

__all__ = [
    "SAFE_GLOBALS",
    "GlobalRef",
    "PickleReport",
    "Problem",
    "scan_pickle",
]

#: The closed table of globals a pickle may name. Each maps, in
#: :mod:`safenpz._unpickle`, to a safenpz constructor that validates its
#: arguments; the callable the file names is never looked up.
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # NumPy 1.16.0 named the C module itself (fixed in 1.16.1)
        ("numpy.core._multiarray_umath", "_reconstruct"),
        ("numpy.core._multiarray_umath", "scalar"),
        ("numpy._core._multiarray_umath", "_reconstruct"),
        ("numpy._core._multiarray_umath", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytearray"),
        ("builtins", "set"),
        ("__builtin__", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "frozenset"),
        ("builtins", "complex"),
        ("__builtin__", "complex"),
        ("collections", "OrderedDict"),
    ]
)

# name, length kind: >=0 fixed bytes; "nl" up to newline; "nl2" two newline
# terminated strings; "len1"/"len4"/"len4s"/"len8": length-prefixed payload.
_ArgKind = int | Literal["nl", "nl2", "len1", "len4", "len4s", "len8"]

_N_TO_KIND: dict[int, _ArgKind] = {
    pickletools.UP_TO_NEWLINE: "nl",
    pickletools.TAKEN_FROM_ARGUMENT1: "len1",
    pickletools.TAKEN_FROM_ARGUMENT4: "len4s",
    pickletools.TAKEN_FROM_ARGUMENT4U: "len4",
    pickletools.TAKEN_FROM_ARGUMENT8U: "len8",
}


def _build_table() -> dict[int, tuple[str, _ArgKind]]:
    table: dict[int, tuple[str, _ArgKind]] = {}
    for op in pickletools.opcodes:
        code = op.code.encode("latin-1")[0]
        kind: _ArgKind
        if op.arg is None:
            kind = 0
        elif op.name in ("GLOBAL", "INST"):
            kind = "nl2"
        elif op.name == "FRAME":  # pickletools calls it a fixed 8-byte argument
            kind = "len8"
        elif op.arg.n >= 0:
            kind = op.arg.n
        else:
            kind = _N_TO_KIND[op.arg.n]
        table[code] = (op.name, kind)
    return table


_OPCODES = _build_table()

_FORBIDDEN: dict[str, str] = {
    "PERSID": "persistent ids make the unpickler call an external resolver",
    "BINPERSID": "persistent ids make the unpickler call an external resolver",
    "EXT1": "extension codes resolve through a process-wide registry of callables",
    "EXT2": "extension codes resolve through a process-wide registry of callables",
    "EXT4": "extension codes resolve through a process-wide registry of callables",
    "INST": "INST instantiates an arbitrary class",
    "OBJ": "OBJ instantiates an arbitrary class",
    "NEWOBJ": "NEWOBJ calls cls.__new__ of an arbitrary class",
    "NEWOBJ_EX": "NEWOBJ_EX calls cls.__new__ of an arbitrary class",
    "NEXT_BUFFER": "out-of-band buffers are not part of the file",
    "READONLY_BUFFER": "out-of-band buffers are not part of the file",
}

_CONTAINERS = frozenset(
    {
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "LIST",
        "DICT",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "FROZENSET",
    }
)
_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)

# Plain, fixed-width opcodes with nothing to check and no effect on the names
# STACK_GLOBAL may see: BININT1/2, BININT, BINFLOAT, NONE, NEWTRUE, NEWFALSE,
# APPEND, SETITEM, POP. (MARK-closing opcodes and memo operations are not skipped:
# the scanner follows string literals through the memo.)
_SKIP = re.compile(rb"(?:K.|M..|J....|G.{8}|[Nas\x88\x890])+", re.DOTALL)

_UNKNOWN = object()

# One-byte opcodes with no argument whose only effects the scanner tracks are
# the MARK depth and the container count: code -> (name, mark delta, creates
# a container). Handled without the general per-opcode dispatch below.
_MARK_CLOSERS = frozenset(
    {
        "APPENDS",
        "SETITEMS",
        "LIST",
        "DICT",
        "TUPLE",
        "FROZENSET",
        "ADDITEMS",
        "POP_MARK",
    }
)
_SIMPLE: dict[int, tuple[str, int, bool]] = {
    code: (
        name,
        1 if name == "MARK" else -1 if name in _MARK_CLOSERS else 0,
        name in _CONTAINERS,
    )
    for code, (name, kind) in _OPCODES.items()
    if kind == 0
    and (
        name in _MARK_CLOSERS
        or name in _CONTAINERS
        or name in ("MARK", "EMPTY_TUPLE", "REDUCE", "BUILD")
    )
}
# BINPUT, LONG_BINPUT, BINGET, LONG_BINGET -> width of their index argument
_MEMO_FIXED = {0x71: 1, 0x72: 4, 0x68: 1, 0x6A: 4}
# first bytes of the opcodes the _SKIP expression can consume
_SKIP_FIRST = frozenset(b"KMJGNas\x88\x890")


#: ``pickle.load`` ignores what follows ``STOP``, and hand-edited files end in
#: a newline: this much ASCII whitespace after ``STOP`` is accepted. Anything
#: else there is refused (a polyglot: another reader may see other data).
MAX_TRAILING_WHITESPACE = 16
_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")


def _is_allowed_tail(buf: bytes, pos: int) -> bool:
    """True if ``buf[pos:]`` (what follows STOP) may be ignored."""
    tail = buf[pos : pos + MAX_TRAILING_WHITESPACE + 1]
    return len(tail) <= MAX_TRAILING_WHITESPACE and set(tail) <= _WHITESPACE


@dataclass(frozen=True)
class GlobalRef:
    """A global named by a pickle.

    Attributes
    ----------
    module, name : str
        What the file asks for (``"?"`` when computed, not a literal).
    opcode : str
        ``"GLOBAL"`` or ``"STACK_GLOBAL"``.
    offset : int
        Byte offset of the opcode in the pickle stream.
    allowed : bool
        Whether it is in safenpz's closed table.
    """

    module: str
    name: str
    opcode: str
    offset: int
    allowed: bool


@dataclass(frozen=True)
class Problem:
    """A reason the stream is refused."""

    kind: Literal["unsafe", "format", "limit"]
    opcode: str
    offset: int
    message: str


@dataclass
class PickleReport:
    """What :func:`scan_pickle` found in one stream."""

    protocol: int = 0
    globals: list[GlobalRef] = field(default_factory=list)
    opcodes: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    containers: int = 0
    length: int = 0

    @property
    def safe(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _decode_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Stop(Exception):
    pass


def scan_pickle(
    data: bytes | bytearray | memoryview,
    *,
    member: str = "<pickle>",
    strict: bool = True,
    max_depth: int = 64,
    max_items: int = 100_000_000,
) -> PickleReport:
    """Check a pickle stream statically, without executing any of it.

    Parameters
    ----------
    data : bytes-like
        The complete pickle stream (for a ``.npy`` member: the bytes after the
        header).
    member : str
        Name used in error messages.
    strict : bool
        Raise at the first problem (the loader's mode). With ``strict=False``
        problems are collected in the report and scanning continues where the
        stream still makes sense (the ``safenpz scan`` mode).
    max_depth, max_items : int
        Limits on MARK nesting and on the number of containers the stream
        would create.

    Returns
    -------
    PickleReport

    Raises
    ------
    UnsafeFileError
        A forbidden opcode or a global outside :data:`SAFE_GLOBALS`
        (``strict=True`` only).
    FormatError
        Unknown opcode, truncated argument, bad memo index, trailing data.
    LimitError
        ``max_depth`` or ``max_items`` exceeded.

    Examples
    --------
    >>> import pickle
    >>> scan_pickle(pickle.dumps([1, 2, 3], protocol=2)).safe
    True
    >>> scan_pickle(b"cos\\nsystem\\n.", strict=False).problems[0].kind
    'unsafe'
    """
    buf = data if isinstance(data, bytes) else bytes(data)
    n = len(buf)
    report = PickleReport(length=n)

    def problem(
        kind: Literal["unsafe", "format", "limit"], op: str, off: int, msg: str
    ) -> None:
        full = f"member {member!r}: {msg} (opcode {op} at byte {off})"
        if strict:
            exc = {
                "unsafe": UnsafeFileError,
                "format": FormatError,
                "limit": LimitError,
            }[kind]
            raise exc(full + _ADVICE[kind])
        report.problems.append(Problem(kind, op, off, msg))
        if kind == "format":
            raise _Stop

    # a tiny abstract stack: just enough to name STACK_GLOBAL's arguments
    top2: list[object] = [_UNKNOWN, _UNKNOWN]
    memo: dict[int, object] = {}
    marks = 0
    pos = 0
    skip = _SKIP.match
    ops = report.opcodes
    simple_counts: dict[int, int] = dict.fromkeys(
        [*_SIMPLE, *_MEMO_FIXED, 0x8C, 0x94, 0x58], 0
    )
    plain_runs = 0
    try:
        while True:
            if pos >= n:
                problem("format", "?", pos, "the pickle ends without STOP")
            code = buf[pos]
            if code in _SKIP_FIRST:
                m = skip(buf, pos)
                if m is not None:  # None: a truncated argument, reported below
                    plain_runs += 1
                    top2 = [_UNKNOWN, _UNKNOWN]
                    pos = m.end()
                    continue
            if code == 0x8C and pos + 2 <= n:  # SHORT_BINUNICODE, the common string
                end = pos + 2 + buf[pos + 1]
                if end <= n:
                    simple_counts[code] += 1
                    top2 = [top2[1], buf[pos + 2 : end]]  # decoded only if named
                    pos = end
                    continue
            if code == 0x94:  # MEMOIZE: CPython's index is the number of entries
                simple_counts[code] += 1
                memo[len(memo)] = top2[1]
                pos += 1
                continue
            if code == 0x58 and pos + 5 <= n:  # BINUNICODE (protocols 1-3)
                end = pos + 5 + int.from_bytes(buf[pos + 1 : pos + 5], "little")
                if end <= n:
                    simple_counts[code] += 1
                    top2 = [top2[1], buf[pos + 5 : end]]
                    pos = end
                    continue
            if code in _MEMO_FIXED and pos + _MEMO_FIXED[code] < n:
                width = _MEMO_FIXED[code]
                idx = int.from_bytes(buf[pos + 1 : pos + 1 + width], "little")
                if code in (0x68, 0x6A):  # BINGET, LONG_BINGET
                    simple_counts[code] += 1
                    top2 = [top2[1], memo.get(idx, _UNKNOWN)]
                    pos += 1 + width
                    continue
                if idx <= n:  # BINPUT, LONG_BINPUT; a bad index is reported below
                    simple_counts[code] += 1
                    memo[idx] = top2[1]
                    pos += 1 + width
                    continue
            simple = _SIMPLE.get(code)
            if simple is not None:
                _, delta, container = simple
                simple_counts[code] += 1
                if delta > 0:
                    marks += 1
                    if marks > max_depth:
                        problem(
                            "limit",
                            "MARK",
                            pos,
                            f"nesting deeper than max_depth={max_depth}",
                        )
                elif delta < 0 and marks:
                    marks -= 1
                if container:
                    report.containers += 1
                    if report.containers > max_items:
                        problem(
                            "limit",
                            simple[0],
                            pos,
                            f"creates more than max_items={max_items} containers",
                        )
                top2 = [_UNKNOWN, _UNKNOWN]
                pos += 1
                continue
            start = pos
            entry = _OPCODES.get(code)
            if entry is None:
                problem(
                    "format",
                    f"0x{code:02x}",
                    pos,
                    f"unknown pickle opcode byte 0x{code:02x}",
                )
                raise _Stop  # pragma: no cover - problem() raised already
            name, kind = entry
            ops[name] += 1
            pos += 1
            arg: bytes = b""
            arg2: bytes = b""
            if isinstance(kind, int):
                if pos + kind > n:
                    problem(
                        "format", name, start, f"truncated: needs {kind} argument bytes"
                    )
                arg = buf[pos : pos + kind]
                pos += kind
            elif kind in ("nl", "nl2"):
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    problem("format", name, start, "argument has no newline")
                arg = buf[pos:nl]
                pos = nl + 1
                if kind == "nl2":
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        problem("format", name, start, "argument has no newline")
                    arg2 = buf[pos:nl]
                    pos = nl + 1
            else:
                width = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}[kind]
                if pos + width > n:
                    problem("format", name, start, "truncated length prefix")
                size = int.from_bytes(
                    buf[pos : pos + width], "little", signed=(kind == "len4s")
                )
                pos += width
                if size < 0 or size > n - pos:
                    problem(
                        "format",
                        name,
                        start,
                        f"claims {size} bytes but only {n - pos} remain",
                    )
                if name == "FRAME":
                    continue  # a frame only groups the opcodes that follow it
                if name in _STRING_OPS:
                    arg = buf[pos : pos + size]
                pos += size

            if name == "INST":
                mod, nam = _decode_str(arg), _decode_str(arg2)
                report.globals.append(GlobalRef(mod, nam, name, start, False))
                problem("unsafe", name, start, f"INST would instantiate {mod}.{nam}")
            elif name in _FORBIDDEN:
                problem("unsafe", name, start, _FORBIDDEN[name])
            if name == "STOP":
                if not _is_allowed_tail(buf, pos):
                    problem(
                        "format",
                        name,
                        start,
                        f"{n - pos} bytes of trailing data after STOP (only up to "
                        f"{MAX_TRAILING_WHITESPACE} bytes of whitespace are "
                        "accepted; other readers could see something else there)",
                    )
                break
            if name == "PROTO":
                report.protocol = arg[0]
                if arg[0] > 5:
                    problem(
                        "format", name, start, f"unsupported pickle protocol {arg[0]}"
                    )
                top2 = [_UNKNOWN, _UNKNOWN]
                continue
            if name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    mod, nam = _decode_str(arg), _decode_str(arg2)
                else:
                    a, b = top2
                    mod = _decode_str(a) if isinstance(a, bytes) else "?"
                    nam = _decode_str(b) if isinstance(b, bytes) else "?"
                ok = (mod, nam) in SAFE_GLOBALS
                report.globals.append(GlobalRef(mod, nam, name, start, ok))
                if mod == "?" or nam == "?":
                    problem(
                        "unsafe",
                        name,
                        start,
                        "STACK_GLOBAL with a computed module or name; "
                        "only string literals are accepted",
                    )
                elif not ok:
                    problem(
                        "unsafe",
                        name,
                        start,
                        f"global {mod}.{nam} is not in safenpz's table of "
                        "allowed constructors",
                    )
                top2 = [_UNKNOWN, _UNKNOWN]
                continue
            if name in _STRING_OPS:
                # text opcodes (protocol 0) are not followed: never names
                value: object = _UNKNOWN if name in ("UNICODE", "STRING") else arg
                top2 = [top2[1], value]
                continue
            if name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                if name == "MEMOIZE":
                    idx = len(memo)  # CPython: the number of memo entries
                elif name == "PUT":
                    if not arg.isdigit() or len(arg) > 19:
                        problem("format", name, start, f"bad memo index {arg!r}")
                    idx = int(arg)
                else:
                    idx = int.from_bytes(arg, "little")
                if idx > n:
                    problem(
                        "format",
                        name,
                        start,
                        f"memo index {idx} is larger than the stream",
                    )
                memo[idx] = top2[1]
                continue
            if name in ("BINGET", "LONG_BINGET", "GET"):
                if name == "GET":
                    if not arg.isdigit() or len(arg) > 19:
                        problem("format", name, start, f"bad memo index {arg!r}")
                    idx = int(arg)
                else:
                    idx = int.from_bytes(arg, "little")
                top2 = [top2[1], memo.get(idx, _UNKNOWN)]
                continue
            # any other opcode: forget what the top of the stack was (DUP keeps it)
            top2 = [top2[1], top2[1]] if name == "DUP" else [_UNKNOWN, _UNKNOWN]
    except _Stop:
        pass
    finally:
        if plain_runs:
            ops["(plain data)"] += plain_runs
        for code, count in simple_counts.items():
            if count:
                ops[_OPCODES[code][0]] += count
    return report


_ADVICE = {
    "unsafe": (
        ". safenpz never runs code from a file: plain data needs only NumPy's "
        "array constructors. `safenpz scan FILE` lists every global the file "
        "names; ask its author for a pickle-free copy (safenpz.save writes one)."
    ),
    "format": ". The file is damaged or not a pickle NumPy wrote.",
    "limit": ". If the file is trusted and really this large, pass a larger "
    "value for that keyword to safenpz.load.",
}
