"""The scanner's bulk path: long runs of literal pushes in whole-array steps.

:func:`safenpz.scan_pickle` walks a pickle one opcode at a time. Most of a
real stream, though, is literals pushed one after another between a MARK and
the opcode that puts them into a container: the strings of an object array
(``SHORT_BINUNICODE MEMOIZE`` ...), the words and numbers of a vocabulary
dict, the numbers of a list. The loop calls :meth:`Bulk.step` whenever it
reaches the position the previous call asked for (``hook_at``); between calls
it runs as before, paying one integer comparison per opcode. A call

1. tokenises the stretch ahead (:func:`~safenpz._pickle._chain.chain`, a
   proven chain of opcode starts found in whole-array steps), in chunks of
   up to ``_MAX_CHUNK`` bytes, growing from ``_FIRST_CHUNK``; where chunks
   hold no long run, it leaves the loop alone for a while, longer each time;
2. finds the *runs* of the chunk (:func:`~safenpz._pickle._runs.find_runs`):
   maximal stretches of *tokens*, each a string literal (``SHORT_BINUNICODE``,
   ``BINUNICODE``, ``SHORT_BINBYTES``, Python 2's ``SHORT_BINSTRING`` and
   ``BINSTRING``) with the memo put after it (``MEMOIZE``, ``BINPUT``,
   ``LONG_BINPUT``), if any, a run of plain literals (what the loop's
   :func:`~safenpz._pickle._handlers.plain` takes as one stack item), or a
   ``FRAME`` (protocol 4 cuts a stream into frames of 64 KiB);
   and the runs of *rows* (:mod:`safenpz._pickle._rows`: small dicts and
   lists of literals, a list of records);
3. at the start of a run of at least ``MIN_TOKENS`` tokens, applies it to the
   scanner's state exactly as the loop's handlers would -- the stack items
   (the strings' offsets, :class:`~safenpz._pickle._values.Num` and
   :class:`~safenpz._pickle._values.Run` items), the memo and the memo of
   names, the per-code counts and ``FRAME``'s count, the plain runs, the two
   name candidates -- and moves the loop past it; likewise at the start of
   a run of at least ``MIN_ROWS`` rows (the containers, what they hold).

These opcodes pop nothing, make no container, open no MARK: the only
refusals among them are text that is not UTF-8, a Python 2 string the load's
encoding refuses, a memo index beyond the stream and a frame longer than the
data. A run is cut before such a token (and before a memo put of a kind
other than its first, a ``MEMOIZE`` whose index is taken, the stream's first
``FRAME`` or Python 2 string: the report lists opcodes in the order they
first appear): the loop handles it, so every refusal and every message still
comes from the loop. The opcodes around the runs (MARK, the closers, the
containers, the hashing of keys) are the loop's, but in rows, whose effect
is known (see :mod:`safenpz._pickle._rows`); runs of ``EMPTY_*
POP`` (what a hostile member is made of) are counted here in whole arrays,
up to the container past ``max_items``, which the loop reports.

The memo entries of runs that take the next free indices stay *pending*
(:attr:`Bulk.pending`) while the loop does not read or write the memo: most
are never read (an object array's strings), and writing a million entries
into two dicts costs as much as the rest. The loop calls back at every
opcode with which it would touch the memo (``touch``); there a memo put of
the next index is done on the pending entries, anything else first writes
them out (:meth:`Bulk.flush`). Nothing outside the scan reads the memo.

Correctness never depends on this module: the loop alone gives the same
report and state (``ENABLED = False``, used by the differential tests), and
an internal error here switches the bulk path off (the pending entries
written out) before any state was touched.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._chain import chain, op_len
from ._opcodes import BY_CODE, code
from ._rows import find_rows, plan_rows
from ._runs import (
    BINPUT,
    CLASS,
    COUNTED,
    IS_STRING,
    K_FRAME,
    K_MEMOIZE,
    K_PLAIN,
    K_PUT,
    K_TEXT,
    LONG_BINPUT,
    MEMOIZE,
    STRINGS,
    Runs,
    disjoint,
    find_runs,
    items_of,
    memo_cut,
    named,
    names_after,
    put_indices,
    py2_counts,
)
from ._state import Scan
from ._values import PLAIN_CODES, UNK

__all__ = ["ENABLED", "MIN_BYTES", "MIN_TOKENS", "Bulk", "attach"]

#: Switch for the differential tests (the loop alone is the reference).
ENABLED = True
#: Streams shorter than this are left to the loop (NumPy's overhead would
#: not pay off); the tests lower it to exercise the bulk path on small input.
MIN_BYTES = 1 << 15
#: Runs of fewer tokens are left to the loop (likewise).
MIN_TOKENS = 24
#: Runs of fewer rows are left to the loop (likewise).
MIN_ROWS = 8
#: Raise internal errors instead of switching the bulk path off (tests).
STRICT = False

_FIRST_CHUNK = 1 << 16
_MAX_CHUNK = 1 << 22
_MAX_BACKOFF = 12  # a chunk without runs: skip up to 2**12 chunk sizes
_SAMPLE = 64  # opcodes looked at before tokenising
_SAMPLE_STRINGS = 8  # ... a stretch of this many strings: worth tokenising
_SAMPLE_ROWS = 4  # ... or this many rows (a container and its memo put)

EMPTY_LIST = code("EMPTY_LIST")
EMPTY_DICT = code("EMPTY_DICT")
EMPTY_SET = code("EMPTY_SET")
_POP = code("POP")
#: an empty container and a POP (two bytes) -> the container's code
_EMPTY_POP = {bytes([c, _POP]): c for c in (EMPTY_LIST, EMPTY_DICT, EMPTY_SET)}
_EMPTY_POP_U2 = {c | _POP << 8: c for c in (EMPTY_LIST, EMPTY_DICT, EMPTY_SET)}
_POP_WINDOW = 1 << 22  # pairs counted at once

#: the memo puts the bulk path may do while entries are pending: index width
_PUT_WIDTH = {MEMOIZE: 0, BINPUT: 1, LONG_BINPUT: 4}
#: what may lie between the strings of a run (plain literals, memo puts, frames)
_BETWEEN = frozenset({*PLAIN_CODES, *_PUT_WIDTH, code("FRAME")})
_EMPTY = frozenset({EMPTY_DICT, EMPTY_LIST})


def attach(sc: Scan) -> Bulk | None:
    """The bulk path for the scan `sc`, or None when it is off or the stream
    is short."""
    if not ENABLED or sc.n < MIN_BYTES:
        return None
    return Bulk(sc)


class Bulk:
    """The bulk path of one scan (see the module docstring). It reads and
    updates the scan's state (:class:`~safenpz._pickle._state.Scan`)."""

    def __init__(self, sc: Scan) -> None:
        self.sc = sc
        self.buf, self.n = sc.buf, sc.n
        self.size = _FIRST_CHUNK
        self.span = (0, 0)  # positions the current chunk covers
        self.runs: Runs | None = None
        self.misses = 0  # chunks in a row without a run
        # memo entries of runs not yet in the memo: new indices from
        # len(sc.names) on, in order (index range, values, names)
        self.pending: list[tuple[range, list[Any], list[object]]] = []
        self.pending_n = 0

    def step(self, pos: int) -> tuple[int, int]:
        """Called by the loop at `pos` (an opcode start); returns (the
        position to go on from, the position to call back at)."""
        try:
            return self._step(pos)
        except Exception:
            if STRICT:
                raise
            self.flush()
            return pos, self.n + 1  # the loop goes on alone

    def flush(self) -> None:
        """Write the pending memo entries into the scan's memo and memo of
        names (before the loop reads or writes them; the tests compare the
        state after a scan)."""
        memo, names = self.sc.memo, self.sc.names
        for idx, vals, given in self.pending:
            memo.update(zip(idx, vals, strict=True))
            names.update(zip(idx, given, strict=True))
        self.pending = []
        self.pending_n = 0

    def _step(self, pos: int) -> tuple[int, int]:
        if not self.span[0] <= pos < self.span[1]:
            if self._pop_pair(pos):
                end = self._pops(pos)
                return (end, end) if end != pos else (pos, pos + 2)
            hook = self._load(pos)
            if hook > pos:
                return pos, hook
        runs = self.runs
        assert runs is not None
        k = bisect.bisect_left(runs.starts, pos)
        r = bisect.bisect_left(runs.row_starts, pos)
        start = pos
        if k < len(runs.starts) and runs.starts[k] == pos:
            end = self._apply(runs, k)
            if end != runs.ends[k]:
                self.flush()  # the loop takes (the rest of) the run
            pos = end
        elif r < len(runs.row_starts) and runs.row_starts[r] == pos:
            pos = self._apply_rows(runs, r)
        elif self.pending_n and pos in runs.touch_set:
            pos = self._memo_put(pos)  # or the loop's, after a flush
        return pos, self._hook(runs, pos, pos == start)

    def _hook(self, runs: Runs, pos: int, past: bool) -> int:
        """Where the loop calls back, from `pos` on (`past`: after `pos`,
        the loop's): the next run, the next run of rows, the end of the
        chunk, or (while memo entries are pending) where the loop touches
        the memo."""
        hook = self.span[1]
        find = bisect.bisect_right if past else bisect.bisect_left
        for starts in (runs.starts, runs.row_starts):
            k = find(starts, pos)
            if k < len(starts):
                hook = min(hook, starts[k])
        if self.pending_n:
            t = bisect.bisect_left(runs.touch, pos)
            if t < len(runs.touch):
                hook = min(hook, runs.touch[t])
        return hook

    def _apply_rows(self, runs: Runs, r: int) -> int:
        """Apply the run of rows `r` (see :mod:`safenpz._pickle._rows`);
        returns where the loop goes on."""
        self.flush()  # the rows' gets read the memo
        a, b = runs.rows[r]
        sc = self.sc
        plan = plan_rows(
            sc, runs.pos[a:b], runs.after[a:b], runs.codes[a:b], len(sc.names)
        )
        if plan is None:  # the loop takes these rows, and touches the memo
            start = runs.row_starts[r]  # in them: the chunk's rows are dropped
            runs.set_rows([])
            return start
        idx = plan.apply(sc)
        if len(idx):
            self.pending.append((idx, plan.vals, plan.names))
            self.pending_n += len(idx)
        return runs.row_ends[r]

    def _memo_put(self, pos: int) -> int:
        """The loop's memo opcode at `pos`, done on the pending entries if
        it is a put of a new index, next in line (``MEMOIZE`` after a tuple
        or a container, for one); otherwise the pending entries are written
        out and the loop does it. Returns where the loop goes on."""
        sc, buf, c = self.sc, self.buf, self.buf[pos]
        st, names = sc.st, sc.names
        idx = len(names) + self.pending_n
        width = _PUT_WIDTH.get(c, -1)
        if width > 0:  # (a truncated index: the loop reports it)
            got = int.from_bytes(buf[pos + 1 : pos + 1 + width], "little")
            fits = pos + width < self.n and got == idx <= self.n
            width = width if fits else -1
        if width < 0 or idx in names or len(st.items) <= (st.marks or [0])[-1]:
            self.flush()
            return pos
        value = st.top_item(BY_CODE[c].name)
        self.pending.append((range(idx, idx + 1), [value], [sc.t_b]))
        self.pending_n += 1
        sc.counts[c] += 1
        return pos + 1 + width

    # -- runs of empty containers popped (what a hostile member is made of)

    def _pop_pair(self, p: int) -> bool:
        """Whether an empty container and a POP start at `p`."""
        return p + 2 <= self.n and self.buf[p : p + 2] in _EMPTY_POP

    def _pops(self, pos: int) -> int:
        """Count the run of EMPTY_* POP pairs at `pos` as the loop's
        :func:`~safenpz._pickle._handlers._empty_popped` does (containers,
        POPs, the three codes), up to the container that would pass
        ``max_items`` unreported (the loop reports it); returns where the
        counted pairs end."""
        sc = self.sc
        buf, n, report = self.buf, self.n, sc.report
        counts = dict.fromkeys(_EMPTY_POP.values(), 0)
        allowed = n if sc.over_items else sc.max_items - report.containers
        start = pos
        while pos + 2 <= n and allowed > 0:
            k = min((n - pos) // 2, _POP_WINDOW, allowed)
            pairs: NDArray[np.uint16] = np.frombuffer(buf, "<u2", k, pos)
            hits = {c: pairs == pair for pair, c in _EMPTY_POP_U2.items()}
            ok = hits[EMPTY_LIST] | hits[EMPTY_DICT] | hits[EMPTY_SET]
            run = k if ok.all() else int(np.argmin(ok))
            for c, hit in hits.items():
                counts[c] += int(np.count_nonzero(hit[:run]))
            pos += 2 * run
            allowed -= run
            if run < k:
                break
        total = (pos - start) // 2
        if total:
            report.containers += total
            sc.ops["POP"] += total
            for c, count in counts.items():
                sc.counts[c] += count
            sc.t_a = sc.t_b = UNK
        return pos

    # -- the chunk ahead

    def _load(self, pos: int) -> int:
        """Tokenise from `pos` and find the runs there; returns `pos`, or
        (few strings ahead, no runs, an invalid opcode) where to be called
        back."""
        sampled = self._sample(pos)
        if sampled:
            return self._miss(pos, pos + sampled)
        ch = chain(self.buf, pos, pos + self.size)
        count = len(ch) - ch.bad  # an invalid last opcode: the loop's
        if count <= 0:
            self.flush()
            return self.n + 1  # the loop refuses what is here
        at = ch.positions(np.arange(count, dtype=np.intp))
        codes = ch.codes[:count]
        end = ch.end if not ch.bad else int(ch.positions(np.array([count]))[0])
        if not ch.bad and end < self.n and IS_STRING[CLASS[codes[-1]]]:
            size = op_len(self.buf, end)
            if CLASS[self.buf[end]] in (K_MEMOIZE, K_PUT) and size > 0:
                # a string's put just past the chunk: taken with it
                at = np.append(at, end)
                codes = np.append(codes, self.buf[end]).astype(np.uint8)
                end += size
        self.span = (pos, end)
        self.size = min(2 * self.size, _MAX_CHUNK)
        after = np.empty(len(at), np.int64)
        after[:-1] = at[1:]
        after[-1] = end
        runs = find_runs(self.buf, at, after, codes, end, self.sc.encoding, MIN_TOKENS)
        runs.set_rows(find_rows(codes, runs.ok, MIN_ROWS))
        self.runs = runs
        if runs.starts or runs.rows:
            self.misses = 0
            return pos
        if ch.bad:
            self.flush()
            return self.n + 1
        return self._miss(pos, end)

    def _miss(self, pos: int, end: int) -> int:
        """Nothing for the bulk path in ``[pos, end)``: the loop goes on
        alone for a while, longer after each miss in a row."""
        self.flush()
        self.misses = min(self.misses + 1, _MAX_BACKOFF)
        return end + (end - pos) * ((1 << self.misses) - 1)

    def _sample(self, pos: int) -> int:
        """0 if the next opcodes hold a long stretch of strings (and the
        literals and memo puts between them) or rows (worth tokenising),
        else the bytes they take (the loop is as fast, or faster, on runs of
        numbers, NumPy scalars and other containers)."""
        buf, p, count, run, best, rows, prev = self.buf, pos, 0, 0, 0, 0, -1
        while count < _SAMPLE and p < self.n:
            size = op_len(buf, p)
            if size < 0:
                return 0  # an invalid opcode: the chain stops there
            c = buf[p]
            if c in STRINGS:
                run += 1
                best = max(best, run)
            elif c not in _BETWEEN:
                run = 0
            rows += prev in _EMPTY and c in _PUT_WIDTH
            prev = c
            p += size
            count += 1
        worth = best >= _SAMPLE_STRINGS or rows >= _SAMPLE_ROWS
        return 0 if worth or not count else p - pos

    # -- a run, applied

    def _apply(self, runs: Runs, k: int) -> int:
        """Apply run `k` (or its head, see the module docstring) to the
        scanner's state; returns where the loop goes on."""
        sc = self.sc
        a, b = runs.first[k], runs.last[k] + 1
        t0 = int(runs.tok[a])
        stop = int(runs.tok_end[b - 1])
        heads = runs.tok[a:b] - t0
        codes = runs.codes[t0:stop]
        cls = CLASS[codes]
        b = a + memo_cut(cls, heads)
        if b - a < MIN_TOKENS:
            return runs.starts[k]
        stop = int(runs.tok_end[b - 1])
        codes, cls, heads = codes[: stop - t0], cls[: stop - t0], heads[: b - a]
        pos = runs.pos[t0:stop]
        after = runs.after[t0:stop]
        items = items_of(self.buf, pos, after, cls, heads)
        puts = self._puts(pos, codes, cls, heads, items)
        if puts is None:
            return runs.starts[k]
        counts = np.bincount(codes[COUNTED[codes]], minlength=256)
        frames = int(np.count_nonzero(cls[heads] == K_FRAME))
        if frames and "FRAME" not in sc.ops:
            return runs.starts[k]  # the first FRAME: the loop's (the report's order)
        plain = int(np.count_nonzero(cls[heads] == K_PLAIN))
        t_a, t_b = names_after(self.buf, codes, heads, pos, after, (sc.t_a, sc.t_b))
        py2 = py2_counts(codes)
        if any(name not in sc.ops for name, _ in py2):
            return runs.starts[k]  # the first of them: the loop's (the order)
        # the state changes from here on
        sc.stack.extend(items)
        if isinstance(puts[0], range):
            if puts[0]:
                self.pending.append(puts)  # type: ignore[arg-type]
                self.pending_n += len(puts[0])
        else:
            self.flush()
            sc.memo.update(zip(puts[0], puts[1], strict=True))
            sc.names.update(zip(puts[0], puts[2], strict=True))
        tally = sc.counts
        for c in np.flatnonzero(counts).tolist():
            tally[c] += int(counts[c])
        sc.plain_runs += plain
        if frames:
            sc.ops["FRAME"] += frames
        for name, count in py2:
            sc.ops[name] += count
        sc.t_a, sc.t_b = t_a, t_b
        return int(runs.after[stop - 1])

    def _puts(
        self,
        pos: NDArray[np.int64],
        codes: NDArray[np.uint8],
        cls: NDArray[np.int8],
        heads: NDArray[np.intp],
        items: list[object],
    ) -> tuple[Sequence[int], list[int], list[object]] | None:
        """(indices, values, names) of the memo puts of a run, in order; None
        if a ``MEMOIZE`` index is taken already (the loop's case). Indices
        that are new and follow the memo's (and the pending entries') count
        come as a range: they may be kept pending."""
        at = np.flatnonzero((cls == K_MEMOIZE) | (cls == K_PUT))
        if not len(at):
            return range(0), [], []
        names = self.sc.names
        base = len(names) + self.pending_n
        new = range(base, base + len(at))
        idx: Sequence[int] = new
        if cls[at[0]] != K_MEMOIZE:
            got = put_indices(self.buf, pos[at], codes[at])
            if got[0] != base or (np.diff(got) != 1).any():
                idx = got.tolist()
        if idx is new and not disjoint(names, new):
            if cls[at[0]] == K_MEMOIZE:
                return None
            idx = list(new)
        if len(at) == len(heads) and not (cls[heads] == K_PLAIN).any():
            vals: list[int] = items  # type: ignore[assignment]  # each string's
        else:
            vals = pos[at - 1].tolist()
        if (cls[at - 1] == K_TEXT).all():
            return idx, vals, vals  # type: ignore[return-value]
        return idx, vals, named(self.buf, codes[at - 1], pos[at - 1], pos[at])
