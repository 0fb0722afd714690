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
2. finds the *runs* of the chunk: maximal stretches of *tokens*, each a
   string literal (``SHORT_BINUNICODE``, ``BINUNICODE``, ``SHORT_BINBYTES``)
   with the memo put after it (``MEMOIZE``, ``BINPUT``, ``LONG_BINPUT``), if
   any, a run of plain literals (what the loop's
   :func:`~safenpz._pickle._handlers.plain` takes as one stack item), or a
   ``FRAME`` (protocol 4 cuts a stream into frames of 64 KiB);
3. at the start of a run of at least ``MIN_TOKENS`` tokens, applies it to the
   scanner's state exactly as the loop's handlers would -- the stack items
   (the strings' offsets, :class:`~safenpz._pickle._values.Num` and
   :class:`~safenpz._pickle._values.Run` items), the memo and the memo of
   names, the per-code counts and ``FRAME``'s count, the plain runs, the two
   name candidates -- and moves the loop past it.

These opcodes pop nothing, make no container, open no MARK: the only
refusals among them are text that is not UTF-8, a memo index beyond the
stream and a frame longer than the data. A run is cut before such a token
(and before a memo put of a kind other than its first, a ``MEMOIZE`` whose
index is taken, the stream's first ``FRAME``: the report lists opcodes in the
order they first appear): the loop handles it, so every refusal and every
message still comes from the loop. The opcodes around the runs (MARK, the
closers, the containers, the hashing of keys) are always the loop's.

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
from ._literals import utf8_problem
from ._opcodes import BY_CODE, OPS, code
from ._state import Scan
from ._values import PLAIN_CODES, RUN_WIDTH, UNK, Num, Run

__all__ = ["ENABLED", "MIN_BYTES", "MIN_TOKENS", "Bulk", "attach"]

#: Switch for the differential tests (the loop alone is the reference).
ENABLED = True
#: Streams shorter than this are left to the loop (NumPy's overhead would
#: not pay off); the tests lower it to exercise the bulk path on small input.
MIN_BYTES = 1 << 15
#: Runs of fewer tokens are left to the loop (likewise).
MIN_TOKENS = 24
#: Raise internal errors instead of switching the bulk path off (tests).
STRICT = False

_FIRST_CHUNK = 1 << 16
_MAX_CHUNK = 1 << 22
_LONG_TEXT = 1 << 12  # longer text is left to the loop (its UTF-8 read once)
_MAX_BACKOFF = 12  # a chunk without runs: skip up to 2**12 chunk sizes
_SAMPLE = 64  # opcodes looked at before tokenising
_STRING_SHARE = 4  # ... at least one in this many must be a string literal

SHORT_BINUNICODE = code("SHORT_BINUNICODE")
BINUNICODE = code("BINUNICODE")
SHORT_BINBYTES = code("SHORT_BINBYTES")
MEMOIZE = code("MEMOIZE")
BINPUT = code("BINPUT")
LONG_BINPUT = code("LONG_BINPUT")
FRAME = code("FRAME")

# token classes, by code
_OTHER, _TEXT, _BYTES, _PLAIN, _MEMOIZE, _PUT, _FRAME = 0, 1, 2, 3, 4, 5, 6
_CLASS = np.zeros(256, np.int8)
_CLASS[[SHORT_BINUNICODE, BINUNICODE]] = _TEXT
_CLASS[SHORT_BINBYTES] = _BYTES
_CLASS[list(PLAIN_CODES)] = _PLAIN
_CLASS[MEMOIZE] = _MEMOIZE
_CLASS[[BINPUT, LONG_BINPUT]] = _PUT
_CLASS[FRAME] = _FRAME
_PREFIX = np.zeros(256, np.int64)  # width of a string's length prefix
_PREFIX[[SHORT_BINUNICODE, SHORT_BINBYTES]] = 1
_PREFIX[BINUNICODE] = 4
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
#: what the loop reads or writes the memo with: the memo opcodes, and the
#: strings it reads together with the memo put after them
_TOUCH = np.zeros(256, bool)
_TOUCH[[op.code for op in OPS.values() if op.memo is not None]] = True
_TOUCH[[SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES]] = True
_STRINGS = frozenset({SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES})
_COUNTED = np.zeros(256, bool)  # counted by code in Scan.counts (FRAME: by name)
_COUNTED[[SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES, MEMOIZE]] = True
_COUNTED[[BINPUT, LONG_BINPUT]] = True
_IS_PLAIN = np.zeros(256, bool)
_IS_PLAIN[list(PLAIN_CODES)] = True


def attach(sc: Scan) -> Bulk | None:
    """The bulk path for the scan `sc`, or None when it is off or the stream
    is short."""
    if not ENABLED or sc.n < MIN_BYTES:
        return None
    return Bulk(sc)


class _Runs:
    """The runs of one chunk, as arrays over its opcodes (see the module
    docstring): opcode positions, ends and codes, the tokens, and
    each run's first and last token (``starts``, ``ends``: the runs' stream
    positions, for :func:`bisect.bisect_left`), and the positions of the
    opcodes outside the runs with which the loop reads or writes the memo
    (``touch``)."""

    def __init__(
        self,
        pos: NDArray[np.int64],
        after: NDArray[np.int64],
        codes: NDArray[np.uint8],
        tok: NDArray[np.intp],
        tok_end: NDArray[np.intp],
        runs: NDArray[np.intp],
        touch: list[int],
    ) -> None:
        self.pos, self.after, self.codes, self.tok = pos, after, codes, tok
        self.tok_end = tok_end  # the opcode after each token
        self.first = runs[:, 0].tolist()
        self.last = runs[:, 1].tolist()
        self.starts: list[int] = pos[tok[runs[:, 0]]].tolist()
        self.ends: list[int] = after[tok_end[runs[:, 1]] - 1].tolist()
        self.touch = touch  # where the loop reads or writes the memo
        self.touch_set = frozenset(touch)


class Bulk:
    """The bulk path of one scan (see the module docstring). It reads and
    updates the scan's state (:class:`~safenpz._pickle._state.Scan`)."""

    def __init__(self, sc: Scan) -> None:
        self.sc = sc
        self.buf, self.n = sc.buf, sc.n
        self.size = _FIRST_CHUNK
        self.span = (0, 0)  # positions the current chunk covers
        self.runs: _Runs | None = None
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
        for idx, vals, named in self.pending:
            memo.update(zip(idx, vals, strict=True))
            names.update(zip(idx, named, strict=True))
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
        if k < len(runs.starts) and runs.starts[k] == pos:
            end = self._apply(runs, k)
            if end != runs.ends[k]:
                self.flush()  # the loop takes (the rest of) the run
            k += 1
            if end != pos:
                pos = end
                k = bisect.bisect_left(runs.starts, pos)
        elif self.pending_n and pos in runs.touch_set:
            pos = self._memo_put(pos)  # or the loop's, after a flush
            k = bisect.bisect_left(runs.starts, pos)
        hook = runs.starts[k] if k < len(runs.starts) else self.span[1]
        if self.pending_n:  # called back where the loop touches the memo
            t = bisect.bisect_left(runs.touch, pos)
            if t < len(runs.touch):
                hook = min(hook, runs.touch[t])
        return pos, hook

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
        if not ch.bad and end < self.n and _CLASS[codes[-1]] in (_TEXT, _BYTES):
            size = op_len(self.buf, end)
            if _CLASS[self.buf[end]] in (_MEMOIZE, _PUT) and size > 0:
                # a string's put just past the chunk: taken with it
                at = np.append(at, end)
                codes = np.append(codes, self.buf[end]).astype(np.uint8)
                end += size
        self.span = (pos, end)
        self.size = min(2 * self.size, _MAX_CHUNK)
        after = np.empty(len(at), np.int64)
        after[:-1] = at[1:]
        after[-1] = end
        runs = _find_runs(self.buf, at, after, codes, end)
        self.runs = runs
        if runs.starts:
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
        """0 if string literals are frequent among the next opcodes (worth
        tokenising), else the bytes they take (the loop is as fast, or
        faster, on runs of numbers and on containers)."""
        buf, p, count, strings = self.buf, pos, 0, 0
        while count < _SAMPLE and p < self.n:
            size = op_len(buf, p)
            if size < 0:
                return 0  # an invalid opcode: the chain stops there
            strings += buf[p] in _STRINGS
            p += size
            count += 1
        return 0 if strings * _STRING_SHARE >= count else p - pos

    # -- a run, applied

    def _apply(self, runs: _Runs, k: int) -> int:
        """Apply run `k` (or its head, see the module docstring) to the
        scanner's state; returns where the loop goes on."""
        sc = self.sc
        a, b = runs.first[k], runs.last[k] + 1
        t0 = int(runs.tok[a])
        stop = int(runs.tok_end[b - 1])
        heads = runs.tok[a:b] - t0
        codes = runs.codes[t0:stop]
        cls = _CLASS[codes]
        b = a + _memo_cut(cls, heads)
        if b - a < MIN_TOKENS:
            return runs.starts[k]
        stop = int(runs.tok_end[b - 1])
        codes, cls, heads = codes[: stop - t0], cls[: stop - t0], heads[: b - a]
        pos = runs.pos[t0:stop]
        items = _items(self.buf, pos, runs.after[t0:stop], cls, heads)
        puts = self._puts(pos, codes, cls, heads, items)
        if puts is None:
            return runs.starts[k]
        counts = np.bincount(codes[_COUNTED[codes]], minlength=256)
        frames = int(np.count_nonzero(cls[heads] == _FRAME))
        if frames and "FRAME" not in sc.ops:
            return runs.starts[k]  # the first FRAME: the loop's (the report's order)
        plain = int(np.count_nonzero(cls[heads] == _PLAIN))
        t_a, t_b = _names(cls, heads, pos, sc.t_a, sc.t_b)
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
        at = np.flatnonzero((cls == _MEMOIZE) | (cls == _PUT))
        if not len(at):
            return range(0), [], []
        names = self.sc.names
        base = len(names) + self.pending_n
        new = range(base, base + len(at))
        idx: Sequence[int] = new
        if cls[at[0]] != _MEMOIZE:
            got = _put_indices(self.buf, pos[at], codes[at])
            if got[0] != base or (np.diff(got) != 1).any():
                idx = got.tolist()
        if idx is new and not _disjoint(names, new):
            if cls[at[0]] == _MEMOIZE:
                return None
            idx = list(new)
        if len(at) == len(heads) and not (cls[heads] == _PLAIN).any():
            vals: list[int] = items  # type: ignore[assignment]  # each string's
        else:
            vals = pos[at - 1].tolist()
        named = cls[at - 1] == _TEXT
        if named.all():
            return idx, vals, vals  # type: ignore[return-value]
        out: list[object] = [
            v if t else UNK for v, t in zip(vals, named.tolist(), strict=True)
        ]
        return idx, vals, out


def _memo_cut(cls: NDArray[np.int8], heads: NDArray[np.intp]) -> int:
    """How many tokens of a run the bulk path takes: those before the
    first memo put of another kind than the run's first one."""
    puts = np.flatnonzero((cls == _MEMOIZE) | (cls == _PUT))
    if not len(puts):
        return len(heads)
    other = puts[cls[puts] != cls[puts[0]]]
    if not len(other):
        return len(heads)
    return int(np.searchsorted(heads, other[0], "right")) - 1


def _beyond_ascii(
    buf: bytes, start: NDArray[np.int64], size: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Whether each payload ``buf[start:start + size]`` (``size > 0``, small)
    holds a byte beyond ASCII."""
    if not len(start):
        return np.zeros(0, bool)
    first = np.cumsum(size) - size  # where each payload starts among all
    idx = np.repeat(start - first, size) + np.arange(int(size.sum()))
    high = np.frombuffer(buf, np.uint8)[idx] >= 0x80
    out: NDArray[np.bool_] = np.logical_or.reduceat(high, first)
    return out


def _disjoint(names: dict[int, object], new: range) -> bool:
    """Whether no index of `new` is in `names` (looked up from the smaller
    side)."""
    if len(names) < len(new):
        return not any(map(new.__contains__, names))
    return names.keys().isdisjoint(new)


def _put_indices(
    buf: bytes, pos: NDArray[np.int64], codes: NDArray[np.uint8]
) -> NDArray[np.int64]:
    """The indices of the BINPUT / LONG_BINPUT opcodes at `pos`."""
    raw = np.frombuffer(buf, np.uint8)
    idx = raw[pos + 1].astype(np.int64)
    long = np.flatnonzero(codes == LONG_BINPUT)
    if len(long):
        p = pos[long]
        idx[long] = (
            raw[p + 1].astype(np.int64)
            | raw[p + 2].astype(np.int64) << 8
            | raw[p + 3].astype(np.int64) << 16
            | raw[p + 4].astype(np.int64) << 24
        )
    return idx


def _items(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    cls: NDArray[np.int8],
    heads: NDArray[np.intp],
) -> list[object]:
    """The stack items the tokens `heads` push, as the loop makes them: a
    string's offset, a :class:`Num` for one plain literal, a :class:`Run`
    for several (a FRAME pushes nothing)."""
    kind = cls[heads]
    nxt = np.append(heads[1:], len(cls))
    if (kind == _FRAME).any():
        keep = kind != _FRAME
        heads, kind, nxt = heads[keep], kind[keep], nxt[keep]
    items: list[object] = pos[heads].tolist()
    plain = np.flatnonzero(kind == _PLAIN)
    if not len(plain):
        return items
    starts = pos[heads[plain]].tolist()
    ends = after[nxt[plain] - 1].tolist()
    for k, s, e in zip(plain.tolist(), starts, ends, strict=True):
        items[k] = Num(s) if e - s == RUN_WIDTH[buf[s]] else Run(s, e)
    return items


def _names(
    cls: NDArray[np.int8],
    heads: NDArray[np.intp],
    pos: NDArray[np.int64],
    t_a: object,
    t_b: object,
) -> tuple[object, object]:
    """The loop's two name candidates after the tokens `heads` (`t_b`: the
    last one before them): a text literal moves them along (its offset),
    anything else (bytes, numbers) clears them."""
    heads = heads[cls[heads] != _FRAME]
    if not len(heads):
        return t_a, t_b
    last = int(heads[-1])
    if cls[last] != _TEXT:
        return UNK, UNK
    if len(heads) > 1:
        before = int(heads[-2])
        t_b = int(pos[before]) if cls[before] == _TEXT else UNK
    return t_b, int(pos[last])


def _find_runs(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    end: int,
) -> _Runs:
    """The runs of a chunk (opcodes at `pos`, each ending at `after`; the
    chunk ends at `end`): maximal stretches of tokens the bulk path may
    take, at least ``MIN_TOKENS`` long."""
    m = len(codes)
    cls = _CLASS[codes]
    prev = np.full(m, _OTHER, np.int8)
    prev[1:] = cls[:-1]
    put = ((cls == _MEMOIZE) | (cls == _PUT)) & ((prev == _TEXT) | (prev == _BYTES))
    inside = _checked(buf, pos, after, codes, cls, put)
    inside &= (cls == _TEXT) | (cls == _BYTES) | (cls == _PLAIN) | (cls == _FRAME) | put
    if cls[-1] == _PLAIN and end < len(buf) and _IS_PLAIN[buf[end]]:
        # the loop's run goes on past the chunk: leave the chunk's end to it
        other = np.flatnonzero(cls != _PLAIN)
        inside[int(other[-1]) + 1 if len(other) else 0 :] = False
    at = np.flatnonzero(put)
    inside[at] &= inside[at - 1]  # a put goes with its string
    prev_in = np.zeros(m, bool)
    prev_in[1:] = inside[:-1]
    joined = (cls == _PLAIN) & (prev == _PLAIN) & prev_in  # inside a plain run
    tok = np.flatnonzero(inside & ~put & ~joined)
    gap = np.append(np.flatnonzero(~inside), m)
    run_id = np.searchsorted(gap, tok)  # tokens between the same two gaps
    tok_end = np.minimum(np.append(tok[1:], m), gap[run_id])
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(run_id)) + 1, [len(tok)]))
    spans = np.stack([bounds[:-1], bounds[1:] - 1], axis=1)
    spans = spans[spans[:, 1] - spans[:, 0] + 1 >= MIN_TOKENS]
    cover = np.zeros(m + 1, np.int64)  # the opcodes of the runs
    cover[tok[spans[:, 0]]] += 1  # (runs are disjoint: no index twice)
    cover[tok_end[spans[:, 1]]] -= 1
    touch = _TOUCH[codes] & (np.cumsum(cover[:m]) == 0)
    return _Runs(pos, after, codes, tok, tok_end, spans, pos[touch].tolist())


def _checked(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    cls: NDArray[np.int8],
    put: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Whether each opcode is one the loop accepts as the bulk path applies
    it: text that is UTF-8, a put index within the stream, nothing that ends
    the stream."""
    n = len(buf)
    ok: NDArray[np.bool_] = (after < n) | (cls == _PLAIN)  # numbers may end it
    at = np.flatnonzero(put & (cls == _PUT))
    if len(at):
        ok[at] &= _put_indices(buf, pos[at], codes[at]) <= n
    at = np.flatnonzero(cls == _FRAME)  # its claim fits (as the loop reads it)
    if len(at):
        raw = np.frombuffer(buf, np.uint8)
        claim = np.zeros(len(at), np.uint64)
        for k in range(8):
            claim |= raw[pos[at] + 1 + k].astype(np.uint64) << np.uint64(8 * k)
        ok[at] &= claim <= (n - after[at]).astype(np.uint64)
    text = np.flatnonzero(cls == _TEXT)
    if len(text):
        start = pos[text] + 1 + _PREFIX[codes[text]]
        size = after[text] - start
        ok[text[size > _LONG_TEXT]] = False  # the loop's (read once, there)
        short = np.flatnonzero((size > 0) & (size <= _LONG_TEXT))
        wide = short[_beyond_ascii(buf, start[short], size[short])]
        for k in wide.tolist():
            t = int(text[k])
            ok[t] = utf8_problem(buf, int(start[k]), int(after[t])) is None
    return ok
