"""Opcode lengths: one table for the lanes, one function for single opcodes.

Every length here follows :data:`._opcodes.BY_CODE` (the one opcode table):
fixed widths, one-byte lengths, 4-/8-byte lengths, text up to a newline
(two for ``GLOBAL``/``INST``), and ``FRAME``, which is 9 bytes long for the
scanner (its payload is opcodes). See :mod:`._chain`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._opcodes import BY_CODE, code

__all__ = [
    "FRAME",
    "KIND",
    "K_FRAME",
    "K_LEN4",
    "K_LEN4S",
    "K_LEN8",
    "K_NL",
    "K_NL2",
    "LEN2",
    "ODD",
    "TEXT",
    "UNKNOWN",
    "op_len",
]

FRAME = code("FRAME")
_NL = 0x0A

# kinds of the opcodes whose length the 2-byte table cannot give
K_LEN4, K_LEN4S, K_LEN8, K_FRAME, K_NL, K_NL2 = 1, 2, 3, 4, 5, 6
_SPECIAL_KIND = {"len4": K_LEN4, "len4s": K_LEN4S, "len8": K_LEN8}
_SPECIAL_KIND.update(nl=K_NL, nl2=K_NL2)


def _tables() -> tuple[NDArray[np.int32], NDArray[np.uint8], NDArray[np.bool_]]:
    """(length by the first two bytes, special kind by code, unknown codes).

    ``LEN2[c | b << 8]`` is the length of opcode ``c`` followed by byte ``b``
    for fixed widths and one-byte lengths, 0 for the special kinds, 1 for a
    byte that is not an opcode (lanes walk on; the chain is cut there).
    """
    b = np.arange(256, dtype=np.int32)
    len2 = np.ones((256, 256), np.int32)  # [next byte, code]
    kind = np.zeros(256, np.uint8)
    unknown = np.ones(256, bool)
    for c, op in BY_CODE.items():
        unknown[c] = False
        if c == FRAME:
            kind[c] = K_FRAME
            len2[:, c] = 0
        elif isinstance(op.arg, int):
            len2[:, c] = 1 + op.arg
        elif op.arg == "len1":
            len2[:, c] = 2 + b
        else:
            kind[c] = _SPECIAL_KIND[op.arg]
            len2[:, c] = 0
    for t in (len2, kind, unknown):
        t.flags.writeable = False
    return len2.reshape(-1), kind, unknown


LEN2, KIND, UNKNOWN = _tables()
#: codes of the opcodes with a text argument (protocol 0)
TEXT = frozenset(np.flatnonzero((KIND == K_NL) | (KIND == K_NL2)).tolist())
#: codes whose length the lanes may take wrongly: special kinds and unknown
ODD = bytes(((KIND > 0) | UNKNOWN).astype(np.uint8).tobytes())


def op_len(buf: bytes, p: int) -> int:
    """Length of the opcode at ``buf[p]``, or -1 if it is not a valid opcode
    whose argument fits in `buf` (the scanner refuses it there)."""
    n = len(buf)
    op = BY_CODE.get(buf[p])
    if op is None:
        return -1
    kind = op.arg
    if isinstance(kind, int) or op.code == FRAME:
        size = 9 if op.code == FRAME else 1 + int(kind)
        if p + size > n:
            return -1
        if op.code == FRAME:
            claim = int.from_bytes(buf[p + 1 : p + 9], "little")
            return size if claim <= n - p - size else -1
        return size
    if kind in ("nl", "nl2"):
        end = buf.find(b"\n", p + 1)
        if end >= 0 and kind == "nl2":
            end = buf.find(b"\n", end + 1)
        return -1 if end < 0 else end + 1 - p
    width = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}[kind]
    if p + 1 + width > n:
        return -1
    claim = int.from_bytes(buf[p + 1 : p + 1 + width], "little", signed=kind == "len4s")
    if claim < 0 or claim > n - p - 1 - width:
        return -1
    return 1 + width + claim
