"""The fast path's lane tokeniser: every opcode start of a body, proven.

Step 2 of :mod:`safenpz._pickle._fastrows` ("How it is fast"). An opcode's
length follows from its first byte (for ``LONG1`` from its second, too), so
the opcode starts of a body form a chain. :func:`tokenise` follows it with
*lanes*: the body is cut into blocks, one lane per block follows the length
chain from the block's first byte, and all lanes advance together, one NumPy
step per opcode (:func:`walk_lanes`). A lane that starts inside an argument is
on a wrong chain at first; such chains merge with the true one within a few
opcodes. Lane ``i - 1`` runs ``W`` bytes into block ``i``; by induction (lane 0
starts at the true start) its exit there, ``q[i]``, is on the true chain, and
lane ``i`` is accepted only if ``q[i]`` is exactly on its own path, after which
both paths are identical since the chain is deterministic. Lanes that are not
(long runs such as ``b"KKKK"`` -- 75 repeated -- keep a wrong chain going)
take the path of a *candidate* lane started at the proven ``q[i]``: ``q[i]``
is within ``MAX_OP`` bytes of a known offset, so walking from each of those
offsets covers it. Every lane is finally re-checked against its predecessor,
so the opcode starts are proven, not guessed; if that fails within a bounded
amount of work the body is refused (:class:`Reject`).

The opcode lengths come from :mod:`safenpz._pickle._opcodes`: :data:`LEN`
(exact; ``0`` marks the opcodes whose length needs a look at their argument,
see :func:`special_len`) and :data:`LEN_FAST` (``LONG1`` taken as 2 bytes and
text ints as 1, which gives the true chain whenever it holds none of them).
Opcodes outside :data:`BODY_OPS` count as one byte: the grammar check stops at
them anyway.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._opcodes import OPS, code

__all__ = [
    "BODY_OPS",
    "LEN",
    "LEN_FAST",
    "MAX_OP",
    "MAX_TEXT",
    "NEWLINE",
    "PAD",
    "Reject",
    "arg_size",
    "len_size",
    "special_len",
    "tokenise",
]


class Reject(Exception):
    """Internal: the stream is not one the fast path recognises."""


W = 64  # re-synchronisation window (bytes)
BLOCK = 2048  # bytes per lane
#: Zero bytes after the stream: lanes may walk up to ~1 byte a step past its end.
PAD = BLOCK + 3 * W + 128
MAX_ROUNDS = 8
MAX_TEXT = 22  # text INT/LONG: the newline within 22 bytes after the opcode
MAX_OP = 2 + MAX_TEXT - 1  # longest opcode the walk knows (text, 23 bytes)
NEWLINE = ord("\n")

#: The opcodes a body of int lists may hold (see the grammar in
#: :mod:`safenpz._pickle._fastrows`).
BODY_OPS = (
    "BININT1",
    "BININT2",
    "BININT",
    "LONG1",
    "INT",
    "LONG",
    "EMPTY_LIST",
    "BINPUT",
    "LONG_BINPUT",
    "MEMOIZE",
    "BINGET",
    "LONG_BINGET",
    "MARK",
    "APPENDS",
    "APPEND",
)
#: Bytes of the length before a length-prefixed argument, by argument kind.
_LEN_SIZE = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}


def arg_size(name: str) -> int:
    """The fixed argument size of opcode `name` (``arg_size("BININT2") == 2``)."""
    arg = OPS[name].arg
    assert isinstance(arg, int), name
    return arg


def len_size(name: str) -> int:
    """The size of the length before the argument of opcode `name`
    (``len_size("FRAME") == 8``)."""
    arg = OPS[name].arg
    assert isinstance(arg, str), name
    return _LEN_SIZE[arg]


_LONG1 = code("LONG1")
_TEXT_INTS = (code("INT"), code("LONG"))
# the opcodes of variable length are exactly the ones special_len knows
assert {n for n in BODY_OPS if not isinstance(OPS[n].arg, int)} == {
    "LONG1",
    "INT",
    "LONG",
}


def _length_tables() -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    exact = np.ones(256, np.uint8)
    for name in BODY_OPS:
        op = OPS[name]
        exact[op.code] = 1 + op.arg if isinstance(op.arg, int) else 0
    fast = exact.copy()
    fast[_LONG1] = 2
    fast[list(_TEXT_INTS)] = 1
    return exact, fast


#: Opcode lengths for the exact walk; 0: LONG1 and text ints (special_len).
#: LEN_FAST: LONG1 taken as 2 bytes, text ints as 1.
LEN, LEN_FAST = _length_tables()
#: Length of a LONG1 by its size byte; more than 8 bytes: 1 (refused later).
_LONG1_LEN = np.ones(256, np.uint8)
_LONG1_LEN[:9] = np.arange(2, 11, dtype=np.uint8)
for _table in (LEN, LEN_FAST, _LONG1_LEN):
    _table.flags.writeable = False
del _table


def special_len(buf: NDArray[np.uint8], pos: NDArray[np.intp]) -> NDArray[np.uint8]:
    """Lengths of the LONG1 / text INT / text LONG opcodes at `pos`.

    LONG1 is 2 + its size byte; a text int runs to the first newline within
    ``MAX_TEXT`` bytes (1 without one: refused later).
    """
    ops = buf[pos]
    out = _LONG1_LEN[buf[pos + 1]]
    text = np.flatnonzero(ops != _LONG1)
    if len(text):
        at = pos[text]
        win = buf[at[:, None] + np.arange(1, MAX_TEXT + 1)] == NEWLINE
        found = win.any(axis=1)
        out[text] = np.where(found, win.argmax(axis=1) + 2, 1)
    return out


def tokenise(
    buf: NDArray[np.uint8], m: int, s: int, table: NDArray[np.uint8]
) -> NDArray[np.intp]:
    """Opcode starts from ``s`` up to ``m``, by the opcode lengths in `table`.

    `table` is :data:`LEN` or :data:`LEN_FAST`; `buf` holds ``PAD`` zero bytes
    after ``m``. Raises :class:`Reject` if the chain cannot be proven within
    a bounded amount of work (see the module docstring).
    """
    lanes = _Lanes(buf, table, m, s)
    first = lanes.prove()
    return lanes.tokens(first)


class _Lanes:
    """The lanes of one :func:`tokenise` call.

    Lane ``i`` walks from its block start ``starts[i]`` to ``tgt[i]`` (``W``
    bytes into the next block). Its exit (first position ``>= tgt[i]``) is
    lane ``i + 1``'s entry ``q``: if lane ``i`` is proven (on the true chain
    from ``q[i]`` on), so is ``q[i + 1]``, and lane ``i + 1`` is proven iff
    ``q[i + 1]`` lies on its own path. Lanes that are not get their path from
    a *candidate* lane: since ``q[i + 1]`` is within ``MAX_OP`` bytes of
    ``tgt[i]``, walking from each of those offsets covers it, and picking the
    candidate that starts at the proven entry resolves runs of unsynchronised
    lanes in one pass.

    ``rows[k, i]`` is lane ``i``'s position after ``k`` steps, relative to
    its block start (``< 11 * s_max < 2**16``); ``used`` rows are filled.
    """

    def __init__(
        self, buf: NDArray[np.uint8], table: NDArray[np.uint8], m: int, s: int
    ) -> None:
        span = m - s
        block = int(min(BLOCK, max(256, span // 256)))
        nl = max(1, -(-span // block))
        if nl > 1 and span - (nl - 1) * block < W + MAX_OP:
            nl -= 1  # so that every entry q[i] (< tgt[i - 1] + MAX_OP) is < tgt[i]
        self.buf, self.table, self.s, self.nl = buf, table, s, nl
        self.starts = s + np.arange(nl, dtype=np.intp) * block
        self.tgt = self.starts + block + W
        self.tgt[-1] = m
        self.s_max = block + 2 * W + 48  # > any lane's distance to its target
        self.rows = np.empty((self.s_max + 1, nl), np.uint16)
        self.used = walk_lanes(
            buf, table, self.starts.copy(), self.starts, self.tgt, self.rows, self.s_max
        )
        self.cols = np.arange(nl)
        self.last = _first_ge(self.rows, self.used, self.tgt - self.starts)
        self.exits = self.rows[self.last, self.cols] + self.starts
        if not (self.exits >= self.tgt).all():
            raise Reject
        self.cand: dict[int, tuple[NDArray[np.uint16], int, int]] = {}
        self.budget = max(256, nl // 4)  # candidate lanes, in all

    def prove(self) -> NDArray[np.intp]:
        """Repair lanes until every one is proven; returns each lane's first
        row on the proven chain."""
        for _ in range(MAX_ROUNDS):
            q = np.empty(self.nl, np.intp)
            q[0] = self.s
            q[1:] = self.exits[:-1]
            first = _first_ge(self.rows, self.used, q - self.starts)
            bad = np.flatnonzero(self.rows[first, self.cols] + self.starts != q)
            if not len(bad):
                return first  # every lane is proven: the result is exact
            self._repair(bad.tolist())
        raise Reject

    def _repair(self, flagged: list[int]) -> None:
        """Resolve the `flagged` lanes in order; lanes before ``j`` are proven.

        A lane flagged here may be fine once its predecessor is repaired, and
        a lane not flagged may have agreed with a wrong predecessor: both are
        re-checked.
        """
        k = 0
        j = flagged[0]
        while j < self.nl:
            qj = int(self.exits[j - 1])
            col = self.rows[: self.used, j]
            at = int(np.searchsorted(col, qj - self.starts[j]))
            if at < self.used and int(col[at]) + self.starts[j] == qj:
                # proven as it is, and so are the lanes up to the next flagged
                # one (their check used unchanged exits)
                while k < len(flagged) and flagged[k] <= j:
                    k += 1
                if k == len(flagged):
                    return
                j = flagged[k]
                continue
            self._replace(j, qj, flagged)
            j += 1

    def _replace(self, j: int, qj: int, flagged: list[int]) -> None:
        """Give lane `j` the path of the candidate lane started at `qj`."""
        if j not in self.cand:
            # candidates for this lane and the flagged ones close after it
            end = j
            for f in flagged:
                if end < f <= end + 8:
                    end = f
            stop = min(end + 2, self.nl, j + 64)
            self._walk_candidates([i for i in range(j, stop) if i not in self.cand])
        crows, cused, c0 = self.cand.pop(j)
        off = qj - int(self.tgt[j - 1])  # < MAX_OP: q[j] ends the opcode over tgt
        if not 0 <= off < MAX_OP:
            raise Reject
        c = c0 + off
        rows, used = self.rows, self.used
        if cused > used:
            rows[used:cused] = rows[used - 1]
            used = self.used = cused
        rows[:cused, j] = crows[:cused, c]
        rows[cused:used, j] = crows[cused - 1, c]
        starts, tgt = self.starts, self.tgt
        self.last[j] = _first_ge(rows[:, j : j + 1], used, tgt[j : j + 1] - starts[j])[
            0
        ]
        self.exits[j] = rows[self.last[j], j] + starts[j]
        if self.exits[j] < tgt[j]:
            raise Reject

    def _walk_candidates(self, need: list[int]) -> None:
        """Walk ``MAX_OP`` candidate lanes for each lane in `need`, from each
        offset the proven entry may have (``tgt`` of the lane before, on)."""
        self.budget -= len(need)
        if self.budget < 0:
            raise Reject
        lanes = np.repeat(np.array(need, np.intp), MAX_OP)
        pos = self.tgt[lanes - 1] + np.tile(np.arange(MAX_OP), len(need))
        crows = np.empty((self.s_max + 1, len(lanes)), np.uint16)
        cused = walk_lanes(
            self.buf,
            self.table,
            pos,
            self.starts[lanes],
            self.tgt[lanes],
            crows,
            self.s_max,
        )
        for n, j in enumerate(need):
            self.cand[j] = (crows, cused, n * MAX_OP)

    def tokens(self, first: NDArray[np.intp]) -> NDArray[np.intp]:
        """The proven chain: lane ``i`` owns rows ``first[i]`` to
        ``last[i] - 1`` (its stretch of it)."""
        last = self.last
        lanes_t = np.ascontiguousarray(self.rows[: self.used].T)
        del self.rows  # free the walk before the result is made
        rel = np.concatenate(
            [
                lanes_t[i, a:b]
                for i, (a, b) in enumerate(
                    zip(first.tolist(), last.tolist(), strict=True)
                )
            ]
        )
        del lanes_t
        if (last < first).any():
            raise Reject  # cannot happen (q[i] < tgt[i]); never trust it
        tok = np.repeat(self.starts, last - first)
        tok += rel
        return tok


def walk_lanes(
    buf: NDArray[np.uint8],
    table: NDArray[np.uint8],
    pos: NDArray[np.intp],
    base: NDArray[np.intp],
    tgt: NDArray[np.intp],
    rows: NDArray[np.uint16],
    s_max: int,
) -> int:
    """Advance all lanes in lock-step until each reached its target.

    Row ``k`` of `rows` receives every lane's position (minus `base`) after
    ``k`` steps; returns the number of rows written.
    """
    d = np.empty(len(pos), np.uint8)
    exact = table is LEN
    s = 0
    while True:
        for _ in range(8):
            np.subtract(pos, base, out=rows[s], casting="unsafe")
            np.take(table, np.take(buf, pos), out=d)
            if exact and not d.all():  # LONG1 and text opcodes
                z = np.flatnonzero(d == 0)
                d[z] = special_len(buf, pos[z])
            pos += d  # may run past m into the padding, never past it
            s += 1
        if s + 9 > s_max or not (pos < tgt).any():
            break
    np.subtract(pos, base, out=rows[s], casting="unsafe")
    return s + 1


def _first_ge(
    rows: NDArray[np.uint16], used: int, thr: NDArray[np.intp]
) -> NDArray[np.intp]:
    """Per column, the first row index < `used` whose value is >= `thr`."""
    n = rows.shape[1]
    cols = np.arange(n)
    lo = np.zeros(n, np.intp)
    hi = np.full(n, used - 1, np.intp)
    while (lo < hi).any():
        mid = (lo + hi) >> 1
        ge = rows[mid, cols] >= thr
        hi = np.where(ge, mid, hi)
        lo = np.where(ge, lo, mid + 1)
    return lo
