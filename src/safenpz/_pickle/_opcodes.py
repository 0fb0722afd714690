"""The one opcode table of safenpz, in the style of :mod:`pickletools`.

Every reader of pickle bytes in safenpz (the static scanner, the decoder's
checks and the int-list fast path) takes opcode codes, argument kinds and the
reasons some opcodes are never allowed from here, never from a literal byte.
The table is derived from :data:`pickletools.opcodes` (the standard library's
own description of the format), with safenpz's policy added as columns.

Examples
--------
>>> OPS["SHORT_BINUNICODE"].code == ord("\\x8c")
True
>>> BY_CODE[ord("q")].name, BY_CODE[ord("q")].memo
('BINPUT', 'put')
>>> OPS["REDUCE"].forbidden is None, OPS["INST"].forbidden is not None
(True, True)
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass
from typing import Literal

__all__ = ["BY_CODE", "OPS", "ArgKind", "MemoRole", "Op", "code"]

#: How an opcode's argument is laid out after its code byte: ``n >= 0`` fixed
#: bytes; ``"nl"`` up to a newline; ``"nl2"`` two newline-terminated strings;
#: ``"len1"``/``"len4"``/``"len4s"``/``"len8"``: a 1-, 4- (unsigned or signed)
#: or 8-byte little-endian length, then that many bytes.
ArgKind = int | Literal["nl", "nl2", "len1", "len4", "len4s", "len8"]

#: What an opcode does to the memo.
MemoRole = Literal["put", "get", "memoize", None]

_N_TO_KIND: dict[int, ArgKind] = {
    pickletools.UP_TO_NEWLINE: "nl",
    pickletools.TAKEN_FROM_ARGUMENT1: "len1",
    pickletools.TAKEN_FROM_ARGUMENT4: "len4s",
    pickletools.TAKEN_FROM_ARGUMENT4U: "len4",
    pickletools.TAKEN_FROM_ARGUMENT8U: "len8",
}

_EXTERNAL = "persistent ids make the unpickler call an external resolver"
_REGISTRY = "extension codes resolve through a process-wide registry of callables"
_BUFFERS = "out-of-band buffers are not part of the file"
_FORBIDDEN: dict[str, str] = {
    "PERSID": _EXTERNAL,
    "BINPERSID": _EXTERNAL,
    "EXT1": _REGISTRY,
    "EXT2": _REGISTRY,
    "EXT4": _REGISTRY,
    "INST": "INST instantiates an arbitrary class",
    "OBJ": "OBJ instantiates an arbitrary class",
    "NEWOBJ": "NEWOBJ calls cls.__new__ of an arbitrary class",
    "NEWOBJ_EX": "NEWOBJ_EX calls cls.__new__ of an arbitrary class",
    "NEXT_BUFFER": _BUFFERS,
    "READONLY_BUFFER": _BUFFERS,
}

_MEMO: dict[str, MemoRole] = {
    "PUT": "put",
    "BINPUT": "put",
    "LONG_BINPUT": "put",
    "GET": "get",
    "BINGET": "get",
    "LONG_BINGET": "get",
    "MEMOIZE": "memoize",
}

_CONTAINERS = frozenset(
    {
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "EMPTY_TUPLE",
        "LIST",
        "DICT",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "FROZENSET",
    }
)


@dataclass(frozen=True)
class Op:
    """One opcode: the standard library's description plus safenpz's policy.

    Attributes
    ----------
    name : str
        The :mod:`pickletools` name (``"SHORT_BINUNICODE"``).
    code : int
        The opcode byte.
    arg : ArgKind
        Layout of the argument after the code byte (see :data:`ArgKind`).
    proto : int
        The protocol that introduced it.
    pops_mark : bool
        Whether it consumes the items above the topmost MARK (and the MARK).
    pops : int
        Stack items it pops; for a MARK-closing opcode, the items below the
        MARK it consumes (``APPENDS`` pops its list: 1; ``TUPLE``: 0).
    pushes : int
        Stack items it pushes (a MARK counts as one).
    container : bool
        Whether it creates a list, dict, set, tuple or frozenset.
    memo : MemoRole
        Its memo role: ``"put"``/``"get"`` take an index argument,
        ``"memoize"`` stores at the next index.
    forbidden : str or None
        Why safenpz never allows it, or None.
    """

    name: str
    code: int
    arg: ArgKind
    proto: int
    pops_mark: bool
    pops: int
    pushes: int
    container: bool
    memo: MemoRole
    forbidden: str | None


def _arg_kind(op: pickletools.OpcodeInfo) -> ArgKind:
    if op.arg is None:
        return 0
    if op.name in ("GLOBAL", "INST"):
        return "nl2"
    if op.name == "FRAME":  # pickletools calls it a fixed 8-byte argument
        return "len8"
    if op.arg.n >= 0:
        return op.arg.n
    return _N_TO_KIND[op.arg.n]


def _op(op: pickletools.OpcodeInfo) -> Op:
    before = [s.name for s in op.stack_before]
    pops_mark = "mark" in before
    return Op(
        name=op.name,
        code=op.code.encode("latin-1")[0],
        arg=_arg_kind(op),
        proto=op.proto,
        pops_mark=pops_mark,
        pops=before.index("mark") if pops_mark else len(before),
        pushes=len(op.stack_after),
        container=op.name in _CONTAINERS,
        memo=_MEMO.get(op.name),
        forbidden=_FORBIDDEN.get(op.name),
    )


#: Every opcode by name.
OPS: dict[str, Op] = {op.name: _op(op) for op in pickletools.opcodes}
#: Every opcode by code byte; a byte missing here is not an opcode.
BY_CODE: dict[int, Op] = {op.code: op for op in OPS.values()}


def code(name: str) -> int:
    """The code byte of the opcode called `name` (``code("MARK") == 0x28``)."""
    return OPS[name].code
