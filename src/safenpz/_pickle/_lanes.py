"""Lanes: the walk that finds a chain of opcode starts, and its proof.

See :mod:`._chain` (the method). A :class:`Part` is a proven stretch of the
chain: the lanes' walks themselves (positions found on demand) or explicit
positions (lanes repaired one opcode at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._oplen import K_FRAME, K_LEN4, K_LEN4S, K_LEN8, K_NL2, KIND, LEN2, op_len

__all__ = ["Part", "explicit", "walk"]

_BLOCK = 2048  # bytes per lane
_MIN_BLOCK = 256  # ... at least (short stretches get more lanes)
_MIN_LANES = 512
_OVERLAP = 256  # bytes a lane walks into the next block to meet its path
_STEPS = _BLOCK + _OVERLAP + 16  # a lane reaches its target within this many steps
_PAD = _STEPS + 1024  # zero bytes after the window (lanes may walk on past it)
_TAIL = 256  # bytes read past the stretch (length prefixes, newlines)
_TEXT = 32  # lanes follow a text argument only this far to its newline
_REPAIR_OPS = 1 << 16  # opcodes walked one by one to repair lanes, per walk
_NL = 0x0A


@dataclass
class Part:
    """Consecutive opcodes of a chain: from lane walks (`rows` of positions
    relative to `base`, lane ``i`` owning rows ``first[i]:last[i]``, `offs`
    its first opcode's index in the part) or explicit positions (`tok`)."""

    codes: NDArray[np.uint8]
    base: int = 0
    rows: NDArray[np.int32] | None = None
    first: NDArray[np.intp] | None = None
    offs: NDArray[np.intp] | None = None
    tok: NDArray[np.int64] | None = None
    nexts: NDArray[np.uint8] | None = None  # the byte after each opcode
    pairs: NDArray[np.uint16] | None = None  # a walk's (code, next byte)

    def _cells(
        self, idx: NDArray[np.intp]
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """(step, lane) of the opcodes `idx` in the walk."""
        assert self.first is not None
        assert self.offs is not None
        lane = np.searchsorted(self.offs, idx, "right") - 1
        return self.first[lane] + (idx - self.offs[lane]), lane

    def positions(self, idx: NDArray[np.intp]) -> NDArray[np.int64]:
        if self.tok is None and 16 * len(idx) > len(self.codes):
            self.tok = self._all()  # many asked for: list them all once
        if self.tok is not None:
            return self.tok[idx]
        assert self.rows is not None
        step, lane = self._cells(idx)
        return self.rows[step, lane].astype(np.int64) + self.base

    def next_bytes(self, idx: NDArray[np.intp]) -> NDArray[np.uint8]:
        """The byte after each of the opcodes `idx` (their argument's first)."""
        if self.pairs is None:
            assert self.nexts is not None
            return self.nexts[idx]
        step, lane = self._cells(idx)
        return (self.pairs[step, lane] >> 8).astype(np.uint8)

    def _all(self) -> NDArray[np.int64]:
        """Every position of the part, in order."""
        assert self.rows is not None
        assert self.first is not None
        assert self.offs is not None
        lanes = self.rows.shape[1]
        steps = np.arange(self.rows.shape[0])[:, None]
        last = self.first + np.diff(np.append(self.offs, len(self.codes)))
        keep = (steps >= self.first) & (steps < last)
        rel = (
            np.ascontiguousarray(self.rows.T)[keep.T]
            if lanes > 1
            else self.rows[keep[:, 0], 0]
        )
        return rel.astype(np.int64) + self.base


def _view(win: NDArray[np.uint8], dtype: str) -> NDArray[Any]:
    """``out[i]`` = the little-endian `dtype` value at ``win[i + 1:]``."""
    dt = np.dtype(dtype)
    out: NDArray[Any] = np.ndarray(
        (len(win) - dt.itemsize,), dtype=dt, buffer=win.data, offset=1, strides=(1,)
    )
    return out


class _Window:
    """The bytes of one lane walk, padded, with the views it reads."""

    def __init__(self, buf: bytes, start: int, stop: int) -> None:
        self.wend = min(len(buf), stop + _TAIL) - start  # bytes of data here
        self.n_rel = len(buf) - start  # the end of the stream, relative
        win = np.zeros(self.wend + _PAD, np.uint8)
        win[: self.wend] = np.frombuffer(buf, np.uint8, self.wend, start)
        self.win = win
        strided: NDArray[np.uint16] = np.ndarray(
            (len(win) - 1,), dtype="<u2", buffer=win.data, strides=(1,)
        )
        self.pair = strided.copy()  # contiguous: gathers from it are fast
        self._nls: NDArray[np.intp] | None = None
        self._next: NDArray[np.intp] | None = None
        self._asked = 0
        self.lens: NDArray[np.int32] | None = None

    def measure(self) -> None:
        """The lanes' length of the opcode at every position, at once (text:
        most steps would need :meth:`special`)."""
        lens = LEN2[self.pair.astype(np.intp)]
        z = np.flatnonzero(lens == 0)
        if len(z):
            self._asked = -len(self.win)  # sorted queries: searching beats a table
            lens[z] = self.special(z)
        self.lens = lens

    def next_newline(self, at: NDArray[np.intp]) -> NDArray[np.intp]:
        """The first newline at or after each of `at` (len(win) if none)."""
        if self._nls is None:
            found = np.flatnonzero(self.win[: self.wend] == _NL)
            self._nls = np.append(found, len(self.win))
        at = np.minimum(at, len(self.win))
        self._asked += len(at)
        if self._next is None and 32 * self._asked > self.wend:  # text: a table
            gaps = np.diff(self._nls, prepend=-1)
            self._next = np.append(np.repeat(self._nls, gaps), len(self.win))
        if self._next is not None:
            return self._next[at]
        nls = self._nls
        return nls[np.minimum(np.searchsorted(nls, at), len(nls) - 1)]

    def special(self, pos: NDArray[np.intp]) -> NDArray[np.int32]:
        """Lengths at `pos` of the opcodes with 4-/8-byte lengths or text
        arguments, as the lanes take them: 1 where invalid, and for text whose
        newline is more than ``_TEXT`` bytes away (measured on the proven
        chain); cut to leave the window where the argument runs past it."""
        out = np.ones(len(pos), np.int64)
        kinds = KIND[self.win[pos]]
        room = self.n_rel - pos  # bytes from the opcode to the end of the stream
        for kind in np.flatnonzero(np.bincount(kinds, minlength=8)).tolist():
            sel = np.flatnonzero(kinds == kind)
            p = pos[sel]
            if kind in (K_LEN4, K_LEN4S):
                v = _view(self.win, "<i4" if kind == K_LEN4S else "<u4")[p]
                size = v.astype(np.int64) + 5
                ok = (v >= 0) & (size <= room[sel])
            elif kind in (K_LEN8, K_FRAME):
                v = _view(self.win, "<u8")[p]
                ok = (room[sel] >= 9) & (v <= np.maximum(room[sel] - 9, 0).astype("u8"))
                size = np.where(ok, v, 0).astype(np.int64) + 9
                if kind == K_FRAME:
                    size[:] = 9
            else:
                size, ok = self._text(p, 2 if kind == K_NL2 else 1)
            out[sel] = np.where(ok, size, 1)
        return np.minimum(out, np.maximum(self.wend - pos, 1)).astype(np.int32)

    def _text(
        self, p: NDArray[np.intp], lines: int
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        at = p + 1
        ok = np.ones(len(p), bool)
        for _ in range(lines):
            nl = self.next_newline(at)
            ok &= nl - at < _TEXT
            at = nl + 1
        return (at - p).astype(np.int64), ok


def _walk(
    w: _Window,
    pos: NDArray[np.intp],
    tgt: NDArray[np.intp],
    rows: NDArray[np.int32],
    pairs: NDArray[np.uint16],
) -> int:
    """Advance all lanes in lock-step until each reached its target; row ``k``
    of `rows` (`pairs`) gets every lane's position (the code byte there and
    the byte after it) after ``k`` steps. Returns the rows written."""
    s = 0
    s_max = len(rows) - 9
    table, window, lens = LEN2, w.pair, w.lens
    while True:
        for _ in range(8):
            rows[s] = pos
            pair = pairs[s] = window[pos]
            if lens is not None:
                pos += lens[pos]
                s += 1
                continue
            step = table[pair.astype(np.intp)]  # intp: this gather is fast
            if not step.all():
                z = np.flatnonzero(step == 0)
                step[z] = w.special(pos[z])
            pos += step
            s += 1
        if s > s_max or not (pos < tgt).any():
            break
    rows[s] = pos
    return s + 1


def _first_ge(
    rows: NDArray[np.int32], used: int, thr: NDArray[np.intp]
) -> NDArray[np.intp]:
    """Per lane (column), the first row index < `used` whose value is >= `thr`
    (`used` - 1 if none)."""
    cols = np.arange(rows.shape[1])
    lo = np.zeros(rows.shape[1], np.intp)
    hi = np.full(rows.shape[1], used - 1, np.intp)
    while (lo < hi).any():
        mid = (lo + hi) >> 1
        ge = rows[mid, cols] >= thr
        hi = np.where(ge, mid, hi)
        lo = np.where(ge | (lo >= hi), lo, mid + 1)
    return lo


def walk(buf: bytes, start: int, stop: int, text: bool) -> tuple[list[Part], int]:
    """The chain from `start` by the lanes' lengths, proven, and its exit."""
    w = _Window(buf, start, stop)
    if text:
        w.measure()
    span = stop - start
    block = min(_BLOCK, max(_MIN_BLOCK, span // _MIN_LANES))  # small: more lanes
    lanes = max(1, -(-span // block))
    begin = np.arange(lanes, dtype=np.intp) * block
    tgt = np.minimum(begin + block + _OVERLAP, span)
    tgt[-1] = span
    steps = block + _OVERLAP + 16
    rows = np.empty((steps + 9, lanes), np.int32)
    pairs = np.empty((steps + 9, lanes), np.uint16)
    used = _walk(w, begin.copy(), tgt, rows, pairs)
    return _prove(buf, start, rows[:used], pairs[:used], tgt)


def _prove(
    buf: bytes,
    start: int,
    rows: NDArray[np.int32],
    pairs: NDArray[np.uint16],
    tgt: NDArray[np.intp],
) -> tuple[list[Part], int]:
    """The proven chain of one walk (positions relative to `start` in `rows`)
    as parts, and its exit (absolute). Runs of lanes that check out are taken
    whole; the others one by one (skipped when an opcode spans them, else
    repaired within a budget; past it the chain ends at a proven start)."""
    used, lanes = rows.shape
    cols = np.arange(lanes)
    last = _first_ge(rows, used, tgt)
    exits = rows[last, cols].astype(np.intp)
    entry = np.zeros(lanes, np.intp)
    entry[1:] = exits[:-1]
    first = _first_ge(rows, used, entry)
    ok = (rows[first, cols] == entry) & (entry < tgt) & (exits >= tgt)
    fails = np.append(np.flatnonzero(~ok), lanes).tolist()
    lanes_of = _Lanes(start, rows, pairs, first, last)
    parts: list[Part] = []
    q, i, budget = 0, 0, _REPAIR_OPS
    while i < lanes:
        if q == entry[i] and ok[i]:
            j = next(f for f in fails if f > i)
            parts.append(lanes_of.part(i, j))
            q, i = int(exits[j - 1]), j
            continue
        if q < tgt[i]:
            q, budget = _one_lane(buf, lanes_of, i, q, int(tgt[i]), budget, parts)
            if budget < 0:
                break
        i += 1
    return parts, q + start


class _Lanes:
    """Lane walks, cut into parts of the chain."""

    def __init__(
        self,
        start: int,
        rows: NDArray[np.int32],
        pairs: NDArray[np.uint16],
        first: NDArray[np.intp],
        last: NDArray[np.intp],
    ) -> None:
        self.start, self.rows, self.pairs = start, rows, pairs
        self.first, self.last = first, last

    def part(self, i: int, j: int, first: int | None = None) -> Part:
        """Lanes ``i`` to ``j - 1``, each from its first to its last row (lane
        ``i`` from row `first` if given)."""
        f = self.first[i:j].copy()
        if first is not None:
            f[0] = first
        n = self.last[i:j]
        steps = np.arange(self.rows.shape[0])[:, None]
        keep = (steps >= f) & (steps < n)
        offs = np.zeros(j - i, np.intp)
        np.cumsum((n - f)[:-1], out=offs[1:])
        pairs = np.ascontiguousarray(self.pairs[:, i:j].T)[keep.T]
        codes = np.ascontiguousarray(pairs.view(np.uint8)[0::2])  # little-endian
        part = Part(codes, self.start, self.rows[:, i:j], f, offs)
        part.pairs = self.pairs[:, i:j]
        return part


def _one_lane(
    buf: bytes, lanes: _Lanes, i: int, q: int, tgt: int, budget: int, parts: list[Part]
) -> tuple[int, int]:
    """Lane `i` from the proven start `q`: repaired one opcode at a time until
    it meets its own walk. Returns the next proven start and the budget left
    (negative: out of budget, or past an invalid opcode)."""
    col = lanes.rows[:, i]
    j = int(np.searchsorted(col, q))
    if j >= len(col) or col[j] != q:
        walked, q, budget = _repair(buf, lanes.start, q, tgt, col, budget)
        if walked:
            tok = np.array(walked, np.int64) + lanes.start
            parts.append(explicit(buf, tok))
        if budget < 0 or q >= tgt:
            return q, budget
        j = int(np.searchsorted(col, q))
    parts.append(lanes.part(i, i + 1, j))
    return int(col[lanes.last[i]]), budget


def _repair(
    buf: bytes, start: int, q: int, tgt: int, col: NDArray[np.int32], budget: int
) -> tuple[list[int], int, int]:
    """Walk from the proven start `q` one opcode at a time until a position
    on the lane's path `col` or at least `tgt`. Returns the positions walked
    (before the meeting point), where it stopped, and the budget left
    (negative: stopped for lack of budget, or after an invalid opcode)."""
    path = set(col.tolist())
    out: list[int] = []
    while q < tgt and q not in path:
        if budget <= 0:
            return out, q, -1
        out.append(q)
        size = op_len(buf, start + q)
        if size < 0:  # invalid: the chain ends here (cut by _check)
            return out, q + 1, -1
        q += size
        budget -= 1
    return out, q, budget


def explicit(buf: bytes, tok: NDArray[np.int64]) -> Part:
    """A part of opcodes at positions `tok`."""
    data = np.frombuffer(buf, np.uint8)
    nexts = data[np.minimum(tok + 1, len(buf) - 1)]
    return Part(data[tok], tok=tok, nexts=nexts)
