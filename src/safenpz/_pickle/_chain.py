"""The opcode chain of a pickle stream, found with whole-array operations.

An opcode's length follows from its first bytes: a fixed width, a one-byte
length (``SHORT_BINUNICODE``), a 4- or 8-byte length (``BINUNICODE``,
``FRAME`` -- whose payload is opcodes, so it is 9 bytes long here), or a
newline (protocol 0 text). Where the opcodes *start* is a chain: each start
plus its length is the next start. :func:`chain` finds that chain from a known
start, for a stretch of the stream, without a Python step per opcode:

1. **Lanes.** The stretch is cut into blocks of ``_BLOCK`` bytes; one lane per
   block follows the length chain from the block's first byte, and all lanes
   advance together, one NumPy step per opcode. A step reads two bytes at
   every lane (one lookup in a 65,536-entry table gives the length of every
   fixed-width and one-byte-length opcode); the few lanes at 4-/8-byte
   lengths or text opcodes are completed from strided views and the
   positions of the newlines. Lanes follow a text argument only ``_TEXT``
   bytes to its newline (inside binary data, text opcode bytes would
   otherwise make them jump from newline to newline and rarely meet the true
   chain); a longer one on the proven chain is measured exactly and the lanes
   start again after it.
2. **Proof.** A lane that starts inside an argument follows a wrong chain at
   first; such chains merge with the true one within a few opcodes. Lane
   ``i`` walks ``_OVERLAP`` bytes into block ``i + 1``; its first position
   there, ``q[i + 1]``, is on the true chain if lane ``i`` is (lane 0 starts
   at the known start), and lane ``i + 1`` is accepted from ``q[i + 1]`` on
   only if ``q[i + 1]`` lies on its own path -- the chain is deterministic, so
   from there both are the same. A lane that fails is walked again from
   ``q[i + 1]`` one opcode at a time (:func:`op_len`) until it meets its own
   path; past a budget of such repairs the chain is cut there and the caller
   goes on from the last proven start. The result is proven, never guessed.

The first invalid opcode (unknown byte, argument beyond the data, a negative
or oversized length, text without its newline) ends the chain; it is its last
opcode, flagged in :attr:`Chain.bad`. The chain keeps each opcode's code byte
in order and finds positions on demand (:meth:`Chain.positions`) from the
lanes' walks, so no per-opcode array of positions is built unless asked for.
Work arrays are a small constant times the stretch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._lanes import Part, walk
from ._oplen import ODD, TEXT, UNKNOWN, op_len

__all__ = ["TEXT", "Chain", "chain", "op_len"]

_RESTARTS = 64  # long text opcodes on one chain: each one restarts the lanes
_END_CHECK = 300  # opcodes this close to the end of the data are measured exactly


@dataclass
class Chain:
    """Opcodes found by :func:`chain`.

    Attributes
    ----------
    codes : ndarray of uint8
        The code byte of every opcode, in stream order.
    end : int
        Position right after the last opcode (the next one's start), or -1
        when the last one is invalid (`bad`).
    bad : bool
        Whether the last opcode is invalid (the chain stops there).
    """

    codes: NDArray[np.uint8]
    end: int
    bad: bool
    parts: list[Part] = field(default_factory=list, repr=False)
    starts: NDArray[np.intp] = field(
        default_factory=lambda: np.zeros(1, np.intp), repr=False
    )

    def __len__(self) -> int:
        return len(self.codes)

    def positions(self, idx: NDArray[np.intp]) -> NDArray[np.int64]:
        """Stream positions of the opcodes with indices `idx`."""
        out: NDArray[np.int64] = self._each(idx, np.int64, Part.positions)
        return out

    def next_bytes(self, idx: NDArray[np.intp]) -> NDArray[np.uint8]:
        """The byte after each of the opcodes `idx` (a one-byte argument)."""
        out: NDArray[np.uint8] = self._each(idx, np.uint8, Part.next_bytes)
        return out

    def _each(self, idx: NDArray[np.intp], dtype: type, get: Any) -> Any:
        idx = np.asarray(idx, np.intp)
        if len(self.parts) == 1:
            return get(self.parts[0], idx)
        out: NDArray[Any] = np.empty(len(idx), dtype)
        which = np.searchsorted(self.starts, idx, "right") - 1
        for k, part in enumerate(self.parts):
            sel = np.flatnonzero(which == k)
            if len(sel):
                out[sel] = get(part, idx[sel] - self.starts[k])
        return out


def _make(parts: list[Part], end: int, bad: bool) -> Chain:
    sizes = [len(p.codes) for p in parts]
    starts = np.zeros(len(parts) + 1, np.intp)
    np.cumsum(sizes, out=starts[1:])
    codes = np.concatenate([p.codes for p in parts]) if parts else np.zeros(0, np.uint8)
    return Chain(codes, end, bad, parts, starts)


def chain(buf: bytes, start: int, stop: int, *, text: bool = False) -> Chain:
    """The opcode chain from `start` (a known opcode start) up to `stop`.

    Parameters
    ----------
    buf : bytes
        The whole stream.
    start, stop : int
        The stretch to tokenise; ``start`` must be an opcode start.
    text : bool
        The stretch is mostly protocol 0 text: measure every position's
        opcode length at once first (the lanes then look them up).

    Returns
    -------
    Chain
        Every opcode starting in ``[start, stop)``; fewer when an invalid
        opcode ends the chain (`bad`) or when the lanes could not be proven
        within the repair budget (then `end` is the last proven start, less
        than `stop`: the caller goes on from there).
    """
    stop = min(stop, len(buf))
    parts: list[Part] = []
    pos = start
    for _ in range(_RESTARTS):
        if pos >= stop:
            break
        found, end = walk(buf, pos, stop, text)
        pos, bad, done = _check(buf, found, end, parts)
        if bad or done:
            return _make(parts, pos, bad)
    return _make(parts, pos, False)


def _check(
    buf: bytes, found: list[Part], end: int, parts: list[Part]
) -> tuple[int, bool, bool]:
    """Append the valid prefix of the parts `found` by one walk (which ends at
    `end`) to `parts`. Returns (where to go on, an invalid opcode ends the
    chain, the whole walk was taken)."""
    for k, part in enumerate(found):
        stop = end if k + 1 == len(found) else _first_pos(found[k + 1])
        cut = _check_part(buf, part, stop)
        if cut is None:
            parts.append(part)
            continue
        at, size = cut
        parts.append(_head(part, at))
        if size < 0:
            return -1, True, True
        p = int(parts[-1].positions(np.array([at], np.intp))[0])
        return p + size, False, k + 1 == len(found) and at + 1 == len(part.codes)
    return end, False, True


def _first_pos(part: Part) -> int:
    return int(part.positions(np.zeros(1, np.intp))[0])


def _check_part(buf: bytes, part: Part, end: int) -> tuple[int, int] | None:
    """The first opcode of `part` (ending at `end`) the lanes measured wrongly,
    and its true length (-1: invalid), or None.

    Measured exactly: unknown bytes, 4-/8-byte lengths and text taken as 1
    byte long (invalid, or text whose newline is far), the last one (its
    length may be cut at the window), and those near the end of the data
    (truncated)."""
    count = len(part.codes)
    if not count:
        return None
    odd = np.frombuffer(part.codes.tobytes().translate(ODD), bool).copy()
    tail = max(0, len(buf) - _END_CHECK)
    odd[_first_at(part, count, tail) :] = True
    odd[-1] = True
    idx = np.flatnonzero(odd)
    at = part.positions(idx)
    inner = idx + 1 < count
    nxt = np.full(len(idx), end, np.int64)
    nxt[inner] = part.positions(idx[inner] + 1)
    sus = (nxt - at == 1) | (at >= tail) | UNKNOWN[part.codes[idx]] | ~inner
    for k, p, q in zip(
        idx[sus].tolist(), at[sus].tolist(), nxt[sus].tolist(), strict=True
    ):
        size = op_len(buf, p)
        if size != q - p:
            return k, size
    return None


def _first_at(part: Part, count: int, tail: int) -> int:
    """The first opcode index of `part` at or after position `tail`."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if int(part.positions(np.array([mid], np.intp))[0]) >= tail:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _head(part: Part, k: int) -> Part:
    """The first ``k + 1`` opcodes of `part`."""
    if part.rows is None:
        assert part.tok is not None
        assert part.nexts is not None
        return Part(
            part.codes[: k + 1], tok=part.tok[: k + 1], nexts=part.nexts[: k + 1]
        )
    head = Part(part.codes[: k + 1], part.base, part.rows, part.first, part.offs)
    head.pairs = part.pairs
    return head
