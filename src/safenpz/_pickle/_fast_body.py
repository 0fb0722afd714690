"""The fast path's body decoder: the element list, straight to values + offsets.

Steps 0, 3 and 4 of :mod:`safenpz._pickle._fastrows` ("How it is fast"): the
body (``BODY`` in the grammar there) is tokenised (:mod:`._fast_tokens`, after
a quick sequential look at its start), its opcodes are mapped to one symbol
each and matched by one regular expression, and the ints, row offsets, memo
``PUT`` indices and shared rows (memo ``GET``\\ s) are read with whole-array
NumPy operations. Every opcode fact (codes, argument sizes) comes from
:mod:`safenpz._pickle._opcodes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from ._fast_tokens import (
    BODY_OPS,
    LEN,
    LEN_FAST,
    MAX_TEXT,
    Reject,
    special_len,
    tokenise,
)
from ._opcodes import code

__all__ = ["Rows", "decode_body", "text_int"]


# a plain class, not a dataclass: it is made at import, on the first load
class Rows:
    """The decoded element list: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""

    __slots__ = ("offsets", "values")
    values: NDArray[np.int64]
    offsets: NDArray[np.int64]

    def __init__(self, values: NDArray[np.int64], offsets: NDArray[np.int64]) -> None:
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "offsets", offsets)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        msg = f"Rows is immutable: cannot set {name!r}"
        raise AttributeError(msg)


# one symbol per opcode for the grammar check; ints are upper case (< 0x60)
_S_K, _S_M, _S_J, _S_LONG1, _S_TEXT = b"ABCDE"
_S_LIST, _S_PUT, _S_GET = b"lpg"
_S_NONINT = ord("a")  # ints are A-E; every other symbol is lower case
_SYMBOLS = {
    "BININT1": _S_K,
    "BININT2": _S_M,
    "BININT": _S_J,
    "LONG1": _S_LONG1,
    "INT": _S_TEXT,
    "LONG": _S_TEXT,
    "EMPTY_LIST": _S_LIST,
    "BINPUT": _S_PUT,
    "LONG_BINPUT": _S_PUT,
    "MEMOIZE": _S_PUT,
    "BINGET": _S_GET,
    "LONG_BINGET": _S_GET,
    "MARK": ord("m"),
    "APPENDS": ord("e"),
    "APPEND": ord("a"),
}
assert set(_SYMBOLS) == set(BODY_OPS)


def _symbol_table() -> bytes:
    table = bytearray(b"x") * 256  # x: an opcode no body holds
    for name, sym in _SYMBOLS.items():
        table[code(name)] = sym
    return bytes(table)


#: ``bytes.translate`` table: opcode byte -> grammar symbol.
_SYM_TAB = _symbol_table()
_LONG_SYMBOLS = (bytes([_S_LONG1]), bytes([_S_TEXT]))

# The grammar is deterministic, so possessive quantifiers change nothing but
# keep the regex engine from storing backtracking state (memory O(1), linear time).
_INT = rb"[A-E]"
_ROW = rb"(?:lp?+(?:m" + _INT + rb"++e|" + _INT + rb"a)*+|g)"
_BODY_RE = re.compile(rb"lp?+(?:m" + _ROW + rb"++e|" + _ROW + rb"a)*+")
# Which symbol may follow which anywhere inside a body (I: any int). A pair not
# listed cannot occur in a body, so the body ends at or before it.
_FOLLOW = {
    "l": "pmlgIea",
    "p": "mlgIea",
    "m": "lgI",
    "I": "Iea",
    "e": "mIlgea",
    "a": "mIlgea",
    "g": "lgea",
}
_PAIRS = frozenset(
    (ord(x), ord(y))
    for a, bs in _FOLLOW.items()
    for b in bs
    for x in ("ABCDE" if a == "I" else a)
    for y in ("ABCDE" if b == "I" else b)
)
_QUICK_BYTES = 512  # the body prefix looked at sequentially first

_EMPTY_LIST = code("EMPTY_LIST")
_BINPUT = code("BINPUT")
_LONG_BINPUT = code("LONG_BINPUT")
_BINGET = code("BINGET")
_LONG = code("LONG")


def decode_body(
    buf: NDArray[np.uint8], m: int, s: int, nmemo: int
) -> tuple[Rows, int, int, NDArray[np.intp]]:
    """Decode the element list starting at ``buf[s]`` (an ``EMPTY_LIST``).

    `m` is the logical end of the stream (``buf`` is padded after it) and
    `nmemo` the memo index its first ``PUT`` must take. Returns (rows,
    position after the list, number of memo PUTs in it, opcode starts of the
    list); raises :class:`~._fast_tokens.Reject` for anything else.
    """
    tok, sym, end = _match(buf, m, s)
    sa = np.frombuffer(sym, np.uint8)
    # "special" tokens: everything but BININT1/BININT2 (a few per cent)
    spec = np.flatnonzero(sa > _S_M)
    sspec = sa[spec]
    nonint = sspec >= _S_NONINT
    other = spec[nonint]  # token indices of the non-int opcodes
    so = sspec[nonint]
    vals = _int_values(buf, tok, sa, spec, sspec, nonint)
    del spec, sspec, nonint
    put_k = _check_puts(buf, tok, other, so, nmemo)
    # rows start at every EMPTY_LIST but the first, and at every GET; the
    # ints before a row's first opcode are its offset (no ints precede row 0)
    row_k = np.flatnonzero(((so == _S_LIST) | (so == _S_GET)) & (other > 0))
    offsets = np.empty(len(row_k) + 1, np.int64)
    np.subtract(other[row_k], row_k, out=offsets[:-1])
    offsets[-1] = len(vals)
    if offsets[0] != 0:
        raise Reject
    if (so == _S_GET).any():
        vals, offsets = _resolve_gets(
            buf, tok, other, row_k, put_k, offsets, vals, nmemo
        )
    return Rows(vals, offsets), end, len(put_k), tok


def _match(
    buf: NDArray[np.uint8], m: int, s: int
) -> tuple[NDArray[np.intp], bytes, int]:
    """The opcode starts and symbols of the body, and the position after it.

    Garbage usually shows within a few opcodes: look at the start first.
    Otherwise walk with LONG1 taken as 2 bytes long: that chain is the true
    one if it holds no LONG1 at all (the usual case), else walk again exactly.
    """
    quick = _quick_end(buf, m, s)
    tok = quick if quick is not None else tokenise(buf, m, s, LEN_FAST)
    sym = buf[tok].tobytes().translate(_SYM_TAB)
    if quick is None and any(x in sym for x in _LONG_SYMBOLS):
        tok = tokenise(buf, m, s, LEN)
        sym = buf[tok].tobytes().translate(_SYM_TAB)
    match = _BODY_RE.match(sym)
    if match is None:
        raise Reject
    nb = match.end()
    end = int(tok[nb]) if nb < len(tok) else m
    if end >= m:  # no STOP after the list (also catches a truncated last opcode)
        raise Reject
    return tok[:nb], sym[:nb], end


def _int_values(
    buf: NDArray[np.uint8],
    tok: NDArray[np.intp],
    sa: NDArray[np.uint8],
    spec: NDArray[np.intp],
    sspec: NDArray[np.uint8],
    nonint: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """The ints of the body, in order.

    The two bytes after every opcode are gathered, the second one only for
    BININT2/BININT; BININT's upper half, LONG1 and text ints are patched in.
    """
    pair = np.empty((len(tok), 2), np.uint8)
    np.take(buf[1:], tok, out=pair[:, 0])
    np.take(buf[2:], tok, out=pair[:, 1])
    np.multiply(pair[:, 1], sa > _S_K, out=pair[:, 1])
    vals = pair.view("<u2").reshape(-1)[sa < _S_NONINT].astype(np.int64)  # the ints
    del pair
    for sym, patch in _PATCHES.items():
        sel = np.flatnonzero(sspec == sym)
        if not len(sel):
            continue
        tt = spec[sel]
        # index among the ints: token index - non-int tokens before it
        where = tt - (np.cumsum(nonint)[sel] - nonint[sel])
        vals[where] = patch(buf, tok[tt])
    return vals


def _binint_values(buf: NDArray[np.uint8], at: NDArray[np.intp]) -> NDArray[Any]:
    """The values of the BININT opcodes at `at`."""
    return _view(buf, "<i4", 1)[at]


def _long1_values(buf: NDArray[np.uint8], at: NDArray[np.intp]) -> NDArray[Any]:
    """The values of the LONG1 opcodes at `at` (at most 8 bytes each)."""
    n = buf[at + 1].astype(np.int64)
    if (n > 8).any():
        raise Reject
    raw = _view(buf, "<u8", 2)[at]
    shift = (64 - 8 * n).astype(np.uint64)
    full = n > 0
    lv = np.zeros(len(at), np.int64)
    left = (raw[full] << shift[full]).view(np.int64)
    lv[full] = left >> shift[full].view(np.int64)
    return lv


def _text_values(buf: NDArray[np.uint8], at: NDArray[np.intp]) -> NDArray[Any]:
    """The values of the text INT / LONG opcodes at `at`."""
    return np.array([_text_at(buf, int(a)) for a in at.tolist()], np.int64)


_PATCHES: dict[int, Callable[[NDArray[np.uint8], NDArray[np.intp]], NDArray[Any]]] = {
    _S_J: _binint_values,
    _S_LONG1: _long1_values,
    _S_TEXT: _text_values,
}


def _check_puts(
    buf: NDArray[np.uint8],
    tok: NDArray[np.intp],
    other: NDArray[np.intp],
    so: NDArray[np.uint8],
    nmemo: int,
) -> NDArray[np.intp]:
    """Memo PUTs must carry the sequential indices a pickler assigns, from
    `nmemo` on; returns their indices among the non-int opcodes."""
    put_k = np.flatnonzero(so == _S_PUT)
    at = tok[other[put_k]]
    for op, read in ((_BINPUT, buf[1:]), (_LONG_BINPUT, _view(buf, "<u4", 1))):
        explicit = np.flatnonzero(buf[at] == op)  # MEMOIZE: implicitly right
        if len(explicit) and not np.array_equal(read[at[explicit]], explicit + nmemo):
            raise Reject
    return put_k


def _quick_end(buf: NDArray[np.uint8], m: int, s: int) -> NDArray[np.intp] | None:
    """Opcode starts from ``s`` up to the first one that cannot be in a body.

    Walks at most ``_QUICK_BYTES`` sequentially. Returns ``None`` if all of
    those could be body opcodes. The regular expression never reads past such
    an opcode, so its match on this prefix equals its match on the whole body.
    """
    sym = _SYM_TAB
    stop = min(m, s + _QUICK_BYTES)
    out = [s]
    prev = sym[buf[s]]
    p = s + int(LEN[buf[s]])  # buf[s] is EMPTY_LIST
    while p < stop:
        op = int(buf[p])
        cur = sym[op]
        out.append(p)
        if (prev, cur) not in _PAIRS:
            return np.array(out, np.intp)
        n = int(LEN[op])
        if n == 0:  # LONG1, text INT / LONG
            n = int(special_len(buf, np.array([p], np.intp))[0])
        p += n
        prev = cur
    return None


_TEXT_RE = re.compile(rb"(-?(?:0|[1-9][0-9]{0,18}))(L?)\n")


def text_int(raw: bytes) -> int:
    """The value of a canonical decimal that fits int64 (else refused)."""
    match = _TEXT_RE.fullmatch(raw + b"\n")
    if match is None or match.group(2):
        raise Reject
    value = int(match.group(1))
    if not -(2**63) <= value < 2**63:
        raise Reject
    return value


def _text_at(buf: NDArray[np.uint8], at: int) -> int:
    """The int of the text INT (``I<decimal>\\n``) or LONG (``L<decimal>L\\n``)
    opcode at `at`: canonical decimal only (no leading zeros, no ``00``/``01``,
    which INT reads as bools), within int64."""
    raw = buf[at + 1 : at + 2 + MAX_TEXT].tobytes()
    match = _TEXT_RE.match(raw)
    if match is None or (match.group(2) == b"L") != (buf[at] == _LONG):
        raise Reject
    value = int(match.group(1))
    if not -(2**63) <= value < 2**63:
        raise Reject
    return value


def _view(buf: NDArray[np.uint8], dtype: str, offset: int) -> NDArray[Any]:
    """``out[i]`` = the `dtype` value at ``buf[i + offset:]`` (unaligned: slow, few)."""
    dt = np.dtype(dtype)
    n = len(buf) - offset - dt.itemsize + 1
    out: NDArray[Any] = np.ndarray(
        (n,), dtype=dt, buffer=buf.data, offset=offset, strides=(1,)
    )
    return out


def _resolve_gets(
    buf: NDArray[np.uint8],
    tok: NDArray[np.intp],
    other: NDArray[np.intp],
    row_k: NDArray[np.intp],
    put_k: NDArray[np.intp],
    bounds: NDArray[np.int64],
    vals: NDArray[np.int64],
    nmemo: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows written as memo GETs (shared list objects): copy the row they name.

    `bounds` are the offsets of the rows in `vals` (GET rows are empty there).
    """
    nrows = len(row_k)
    lengths = np.diff(bounds)
    nputs = len(put_k)
    # row number of the list each PUT belongs to (-1: the element list itself);
    # the grammar puts every PUT right after its EMPTY_LIST
    row_of_other = np.full(len(other), -1, np.int64)
    row_of_other[row_k] = np.arange(nrows)
    owner = row_of_other[put_k - 1]
    at = tok[other[row_k]]
    row_ops = buf[at]
    g = np.flatnonzero(row_ops != _EMPTY_LIST)  # rows that are GETs
    gat = at[g]
    idx = np.where(
        row_ops[g] == _BINGET,
        buf[gat + 1].astype(np.int64),
        _view(buf, "<u4", 1)[gat].astype(np.int64),
    )
    r = idx - nmemo
    if r.min() < 0 or r.max() >= nputs:
        raise Reject  # a header object, or a PUT that does not exist
    if not (put_k[r] < row_k[g]).all():
        raise Reject  # forward reference
    src = owner[r]
    if src.min() < 0:
        raise Reject  # the element list itself
    src_start = bounds[:-1].copy()
    src_len = lengths.copy()
    src_start[g] = bounds[src]
    src_len[g] = lengths[src]
    offsets = np.empty(nrows + 1, np.int64)
    offsets[0] = 0
    np.cumsum(src_len, out=offsets[1:])
    total = int(offsets[-1])
    if total > 8 * len(buf):
        raise Reject  # bound the output by the input size
    index = np.arange(total, dtype=np.int64)
    index -= np.repeat(offsets[:-1] - src_start, src_len)
    return vals[index], offsets
