"""The runs of a chunk: where the scanner's bulk path may take over.

:mod:`safenpz._pickle._bulk` tokenises a stretch of the stream
(:func:`~safenpz._pickle._chain.chain`: every opcode's position and code) and
asks :func:`find_runs` for its *runs*: maximal stretches of tokens the bulk
path applies in whole-array steps -- a string literal with the memo put
after it, a run of plain literals, a ``FRAME`` -- with every opcode the loop
would refuse, or decide otherwise, left out (text that is not UTF-8 or
longer than :data:`LONG_TEXT`, a Python 2 string the load's encoding
refuses, a put index beyond the stream, a frame longer than the data, the
plain literals that go on past the chunk). The other functions here compute,
from the arrays of a run, what the loop's handlers would do: the stack items
(:func:`items_of`), the name candidates of ``STACK_GLOBAL``
(:func:`names_after`, :func:`named`), the memo indices (:func:`put_indices`,
:func:`memo_cut`, :func:`disjoint`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._literals import utf8_problem
from ._opcodes import BY_CODE, OPS, code
from ._values import PLAIN_CODES, RUN_WIDTH, UNK, Num, Run

__all__ = [
    "BINPUT",
    "CLASS",
    "COUNTED",
    "IS_STRING",
    "K_FRAME",
    "K_MEMOIZE",
    "K_PLAIN",
    "K_PUT",
    "K_TEXT",
    "LONG_BINPUT",
    "LONG_TEXT",
    "MEMOIZE",
    "STRINGS",
    "TOUCH",
    "Runs",
    "disjoint",
    "find_runs",
    "items_of",
    "memo_cut",
    "named",
    "names_after",
    "put_indices",
    "py2_counts",
]

LONG_TEXT = 1 << 12  # longer text is left to the loop (its UTF-8 read once)

SHORT_BINUNICODE = code("SHORT_BINUNICODE")
BINUNICODE = code("BINUNICODE")
SHORT_BINBYTES = code("SHORT_BINBYTES")
SHORT_BINSTRING = code("SHORT_BINSTRING")
BINSTRING = code("BINSTRING")
MEMOIZE = code("MEMOIZE")
BINPUT = code("BINPUT")
LONG_BINPUT = code("LONG_BINPUT")
LONG_BINGET = code("LONG_BINGET")
FRAME = code("FRAME")

#: token classes (:data:`CLASS`: by code)
K_OTHER, K_TEXT, K_BYTES, K_PLAIN, K_MEMOIZE, K_PUT, K_FRAME, K_PY2 = range(8)
CLASS = np.zeros(256, np.int8)
CLASS[[SHORT_BINUNICODE, BINUNICODE]] = K_TEXT
CLASS[SHORT_BINBYTES] = K_BYTES
CLASS[[SHORT_BINSTRING, BINSTRING]] = K_PY2  # Python 2 strings
CLASS[list(PLAIN_CODES)] = K_PLAIN
CLASS[MEMOIZE] = K_MEMOIZE
CLASS[[BINPUT, LONG_BINPUT]] = K_PUT
CLASS[FRAME] = K_FRAME
PREFIX = np.zeros(256, np.int64)  # width of a string's length prefix
PREFIX[[SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING]] = 1
PREFIX[[BINUNICODE, BINSTRING]] = 4
IS_STRING = np.zeros(8, bool)  # by class
IS_STRING[[K_TEXT, K_BYTES, K_PY2]] = True

#: what the loop reads or writes the memo with: the memo opcodes, and the
#: strings it reads together with the memo put after them
TOUCH = np.zeros(256, bool)
TOUCH[[op.code for op in OPS.values() if op.memo is not None]] = True
TOUCH[[SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES]] = True
STRINGS = frozenset(
    {SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING, BINSTRING}
)
COUNTED = np.zeros(256, bool)  # counted by code in Scan.counts (FRAME: by name)
COUNTED[[SHORT_BINUNICODE, BINUNICODE, SHORT_BINBYTES, MEMOIZE]] = True
COUNTED[[BINPUT, LONG_BINPUT]] = True
IS_PLAIN = np.zeros(256, bool)
IS_PLAIN[list(PLAIN_CODES)] = True


class Runs:
    """The runs of one chunk, as arrays over its opcodes (see the module
    docstring): opcode positions, ends and codes, the tokens, and
    each run's first and last token (``starts``, ``ends``: the runs' stream
    positions, for :func:`bisect.bisect_left`), the runs of rows (``rows``,
    ``row_starts``, ``row_ends``), and the positions of the opcodes outside
    them all with which the loop reads or writes the memo (``touch``)."""

    def __init__(
        self,
        pos: NDArray[np.int64],
        after: NDArray[np.int64],
        codes: NDArray[np.uint8],
        tok: NDArray[np.intp],
        tok_end: NDArray[np.intp],
        runs: NDArray[np.intp],
        touch: NDArray[np.bool_],
        ok: NDArray[np.bool_],
    ) -> None:
        self.pos, self.after, self.codes, self.tok = pos, after, codes, tok
        self.tok_end = tok_end  # the opcode after each token
        self.first = runs[:, 0].tolist()
        self.last = runs[:, 1].tolist()
        self.starts: list[int] = pos[tok[runs[:, 0]]].tolist()
        self.ends: list[int] = after[tok_end[runs[:, 1]] - 1].tolist()
        self.ok = ok  # the opcodes the bulk path may take
        self.rows: list[tuple[int, int]] = []
        self.row_starts: list[int] = []
        self.row_ends: list[int] = []
        self._touch = touch
        self.set_rows([])

    def set_rows(self, rows: list[tuple[int, int]]) -> None:
        """Record the runs of rows (:mod:`safenpz._pickle._rows`: first and
        end opcode indices): their opcodes are no longer where the loop
        touches the memo (``touch``: positions, ``touch_set``)."""
        touch = self._touch
        if rows:
            touch = touch.copy()
            for a, b in rows:
                touch[a:b] = False
        self.rows = rows
        self.row_starts = [int(self.pos[a]) for a, _ in rows]
        self.row_ends = [int(self.after[b - 1]) for _, b in rows]
        self.touch: list[int] = self.pos[touch].tolist()
        self.touch_set = frozenset(self.touch)


def py2_counts(codes: NDArray[np.uint8]) -> list[tuple[str, int]]:
    """The Python 2 strings among `codes`, by name (the loop counts them by
    name in the report, not by code)."""
    out = []
    for c in (SHORT_BINSTRING, BINSTRING):
        count = int(np.count_nonzero(codes == c))
        if count:
            out.append((BY_CODE[c].name, count))
    return out


def memo_cut(cls: NDArray[np.int8], heads: NDArray[np.intp]) -> int:
    """How many tokens of a run the bulk path takes: those before the
    first memo put of another kind than the run's first one."""
    puts = np.flatnonzero((cls == K_MEMOIZE) | (cls == K_PUT))
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


def disjoint(names: dict[int, object], new: range) -> bool:
    """Whether no index of `new` is in `names` (looked up from the smaller
    side)."""
    if len(names) < len(new):
        return not any(map(new.__contains__, names))
    return names.keys().isdisjoint(new)


def put_indices(
    buf: bytes, pos: NDArray[np.int64], codes: NDArray[np.uint8]
) -> NDArray[np.int64]:
    """The indices of the memo opcodes with a binary index at `pos`
    (``BINPUT``, ``LONG_BINPUT``, ``BINGET``, ``LONG_BINGET``)."""
    raw = np.frombuffer(buf, np.uint8)
    idx = raw[pos + 1].astype(np.int64)
    long = np.flatnonzero((codes == LONG_BINPUT) | (codes == LONG_BINGET))
    if len(long):
        p = pos[long]
        idx[long] = (
            raw[p + 1].astype(np.int64)
            | raw[p + 2].astype(np.int64) << 8
            | raw[p + 3].astype(np.int64) << 16
            | raw[p + 4].astype(np.int64) << 24
        )
    return idx


def items_of(
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
    if (kind == K_FRAME).any():
        keep = kind != K_FRAME
        heads, kind, nxt = heads[keep], kind[keep], nxt[keep]
    items: list[object] = pos[heads].tolist()
    plain = np.flatnonzero(kind == K_PLAIN)
    if not len(plain):
        return items
    starts = pos[heads[plain]].tolist()
    ends = after[nxt[plain] - 1].tolist()
    for k, s, e in zip(plain.tolist(), starts, ends, strict=True):
        items[k] = Num(s) if e - s == RUN_WIDTH[buf[s]] else Run(s, e)
    return items


def names_after(
    buf: bytes,
    codes: NDArray[np.uint8],
    heads: NDArray[np.intp],
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    t: tuple[object, object],
) -> tuple[object, object]:
    """The loop's two name candidates after the tokens `heads` (`t`: those
    before them): a text literal moves them along (its offset),
    anything else (bytes, numbers) clears them; a Python 2 string names
    its bytes)."""
    cls = CLASS[codes]
    t_a, t_b = t
    heads = heads[cls[heads] != K_FRAME]
    if not len(heads):
        return t_a, t_b
    last = heads[-1:]
    if cls[last[0]] not in (K_TEXT, K_PY2):
        return UNK, UNK
    if len(heads) > 1:
        h = heads[-2:-1]
        t_b = named(buf, codes[h], pos[h], after[h])[0]
    return t_b, named(buf, codes[last], pos[last], after[last])[0]


def named(
    buf: bytes,
    codes: NDArray[np.uint8],
    pos: NDArray[np.int64],
    end: NDArray[np.int64],
) -> list[object]:
    """What names the strings at `pos` (ending at `end`) give ``STACK_GLOBAL``
    in the loop: a text literal its offset, a Python 2 string its bytes,
    anything else (bytes, numbers) nothing (:data:`UNK`)."""
    kind = CLASS[codes]
    out: list[object] = pos.tolist()
    py2 = np.flatnonzero(kind == K_PY2)
    if len(py2):
        start = (pos[py2] + 1 + PREFIX[codes[py2]]).tolist()
        for k, s, e in zip(py2.tolist(), start, end[py2].tolist(), strict=True):
            out[k] = buf[s:e]
    for k in np.flatnonzero((kind != K_TEXT) & (kind != K_PY2)).tolist():
        out[k] = UNK  # bytes, numbers
    return out


def find_runs(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    end: int,
    encoding: str,
    min_tokens: int,
) -> Runs:
    """The runs of a chunk (opcodes at `pos`, each ending at `after`; the
    chunk ends at `end`): maximal stretches of tokens the bulk path may
    take, at least `min_tokens` long (`encoding`: the load's)."""
    m = len(codes)
    cls = CLASS[codes]
    prev = np.full(m, K_OTHER, np.int8)
    prev[1:] = cls[:-1]
    put = ((cls == K_MEMOIZE) | (cls == K_PUT)) & IS_STRING[prev]
    ok = _checked(buf, pos, after, codes, cls, put, encoding)
    inside = ok.copy()
    inside &= IS_STRING[cls] | (cls == K_PLAIN) | (cls == K_FRAME) | put
    if cls[-1] == K_PLAIN and end < len(buf) and IS_PLAIN[buf[end]]:
        # the loop's run goes on past the chunk: leave the chunk's end to it
        other = np.flatnonzero(cls != K_PLAIN)
        inside[int(other[-1]) + 1 if len(other) else 0 :] = False
    at = np.flatnonzero(put)
    inside[at] &= inside[at - 1]  # a put goes with its string
    prev_in = np.zeros(m, bool)
    prev_in[1:] = inside[:-1]
    joined = (cls == K_PLAIN) & (prev == K_PLAIN) & prev_in  # inside a plain run
    tok = np.flatnonzero(inside & ~put & ~joined)
    gap = np.append(np.flatnonzero(~inside), m)
    run_id = np.searchsorted(gap, tok)  # tokens between the same two gaps
    tok_end = np.minimum(np.append(tok[1:], m), gap[run_id])
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(run_id)) + 1, [len(tok)]))
    spans = np.stack([bounds[:-1], bounds[1:] - 1], axis=1)
    spans = spans[spans[:, 1] - spans[:, 0] + 1 >= min_tokens]
    cover = np.zeros(m + 1, np.int64)  # the opcodes of the runs
    cover[tok[spans[:, 0]]] += 1  # (runs are disjoint: no index twice)
    cover[tok_end[spans[:, 1]]] -= 1
    touch = TOUCH[codes] & (np.cumsum(cover[:m]) == 0)
    return Runs(pos, after, codes, tok, tok_end, spans, touch, ok)


def _checked(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    cls: NDArray[np.int8],
    put: NDArray[np.bool_],
    encoding: str,
) -> NDArray[np.bool_]:
    """Whether each opcode is one the loop accepts as the bulk path applies
    it: text that is UTF-8, Python 2 strings the load's `encoding` reads, a
    put index within the stream, a frame that fits, nothing that ends the
    stream."""
    n = len(buf)
    ok: NDArray[np.bool_] = (after < n) | (cls == K_PLAIN)  # numbers may end it
    at = np.flatnonzero(put & (cls == K_PUT))
    if len(at):
        ok[at] &= put_indices(buf, pos[at], codes[at]) <= n
    at = np.flatnonzero(cls == K_FRAME)  # its claim fits (as the loop reads it)
    if len(at):
        raw = np.frombuffer(buf, np.uint8)
        claim = np.zeros(len(at), np.uint64)
        for k in range(8):
            claim |= raw[pos[at] + 1 + k].astype(np.uint64) << np.uint64(8 * k)
        ok[at] &= claim <= (n - after[at]).astype(np.uint64)
    _check_text(buf, pos, after, codes, np.flatnonzero(cls == K_TEXT), ok)
    py2 = np.flatnonzero(cls == K_PY2)
    if len(py2):
        start = pos[py2] + 1 + PREFIX[codes[py2]]
        size = after[py2] - start
        ok[py2[size > LONG_TEXT]] = False
        if encoding == "ASCII":  # the one encoding that refuses a byte
            short = np.flatnonzero((size > 0) & (size <= LONG_TEXT))
            ok[py2[short[_beyond_ascii(buf, start[short], size[short])]]] = False
    return ok


def _check_text(
    buf: bytes,
    pos: NDArray[np.int64],
    after: NDArray[np.int64],
    codes: NDArray[np.uint8],
    text: NDArray[np.intp],
    ok: NDArray[np.bool_],
) -> None:
    """Clear `ok` at the text literals `text` that are long (the loop's) or
    not UTF-8."""
    if not len(text):
        return
    start = pos[text] + 1 + PREFIX[codes[text]]
    size = after[text] - start
    ok[text[size > LONG_TEXT]] = False  # the loop's (read once, there)
    short = np.flatnonzero((size > 0) & (size <= LONG_TEXT))
    wide = short[_beyond_ascii(buf, start[short], size[short])]
    for k in wide.tolist():
        t = int(text[k])
        ok[t] = utf8_problem(buf, int(start[k]), int(after[t])) is None
