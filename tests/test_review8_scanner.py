"""Findings of the issue-8 adversarial review that live in the static pickle
scanner (``safenpz._pickle``, rewritten with container-nesting and
hash-bomb bounds). Each runs in a child under a 2 GB address-space cap and a
10 s alarm and must be refused (LimitError for a limit, FormatError for a
stream no NumPy writes), with no sentinel file."""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from safenpz import FormatError, scan_pickle

ROOT = Path(__file__).resolve().parent.parent
M61 = 2**61 - 1


def _long1(i: int) -> bytes:
    raw = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _memo_tuple_dag(width: int, levels: int, tail: bytes) -> bytes:
    out = b"\x80\x04(" + b"K\x01" * width + b"t\x94"
    for i in range(levels):
        out += b"(" + (b"h" + bytes([i])) * width + b"t\x94"
    return out + tail


CASES = {
    # segfaults today: nesting of TUPLE1 (no MARK) then hashed as a dict key
    "tuple1-1M-deep-as-dict-key": b"\x80\x02}N" + b"\x85" * 1_000_000 + b"Ns.",
    "tuple2-200k-deep-as-dict-key": b"\x80\x02}N" + b"N\x86" * 200_000 + b"Ns.",
    # quadratic dict/set insertion: 40k int keys sharing one hash (>10 s)
    "dict-40k-colliding-int-keys": b"\x80\x02}("
    + b"".join(_long1(1 + k * M61) + b"N" for k in range(40_000))
    + b"u.",
    "frozenset-40k-colliding-ints": b"\x80\x04("
    + b"".join(_long1(1 + k * M61) for k in range(40_000))
    + b"\x91.",
    # memo-shared tuples hashed: 100**6 hash work in a 2 KB pickle (hangs
    # in C, where no alarm can interrupt it)
    "memo-tuple-dag-in-frozenset": _memo_tuple_dag(100, 5, b"(h\x05\x91."),
    "memo-tuple-dag-as-dict-key": _memo_tuple_dag(200, 4, b"}h\x04Ns."),
}

CHILD = """
import resource, signal, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
signal.alarm(10)
from safenpz import FormatError, LimitError, load
try:
    load(sys.stdin.buffer.read())
except (FormatError, LimitError) as err:
    print(type(err).__name__)
"""


@pytest.mark.parametrize("key", sorted(CASES))
def test_scanner_bounds_nesting_and_hash_bombs(key: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=CASES[key],
        capture_output=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    outcome = proc.stdout.strip()
    assert outcome in (b"LimitError", b"FormatError"), (proc.returncode, proc.stderr)
    assert not list(tmp_path.iterdir())


def test_long1_helper_round_trips() -> None:
    assert struct.unpack("<b", _long1(-1)[2:])[0] == -1


# -- an open finding: tuples of small ints whose hashes collide ------------------

_M64 = (1 << 64) - 1
_P1, _P2, _P5 = 11400714785074694791, 14029467366897019727, 2870177450012600261


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _last_lanes() -> Iterator[tuple[int, int]]:
    """``(a, lane)`` for a = 2, 3, ...: the hash ``lane`` (unsigned 64-bit) the
    second item of ``(a, x)`` must have for the tuple to hash like ``(1, 2)``
    (CPython's tuple hash is xxHash-like and invertible step by step)."""
    const = 2 ^ (_P5 ^ 3527539)
    p1inv, p2inv = pow(_P1, -1, 1 << 64), pow(_P2, -1, 1 << 64)
    pre = (((hash((1, 2)) & _M64) - const) & _M64) * p1inv & _M64
    pre = ((pre >> 31) | (pre << 33)) & _M64  # rotate right by 31
    a = 1
    while True:
        a += 1
        acc1 = _rotl((_P5 + a * _P2) & _M64, 31) * _P1 & _M64
        yield a, ((pre - acc1) & _M64) * p2inv & _M64


def _colliding_pairs(n: int) -> list[tuple[int, int]]:
    """``n`` 2-tuples of ints below 2**61 with one ``hash``."""
    out: list[tuple[int, int]] = []
    for a, lane in _last_lanes():
        b = lane - (1 << 64) if lane >= 1 << 63 else lane
        if abs(b) < M61 and b != -1:  # an int below 2**61 hashes to itself
            out.append((a, b))
            if len(out) == n:
                return out
    raise AssertionError  # pragma: no cover - the generator never ends


def test_colliding_pairs_really_collide() -> None:
    pairs = _colliding_pairs(50)
    assert len({hash(p) for p in pairs}) == 1
    assert len(set(pairs)) == 50


def test_dict_of_colliding_small_int_tuples(tmp_path: Path) -> None:
    body = b"".join(
        pickle.dumps(p, protocol=2)[2:-1] + b"N" for p in _colliding_pairs(60_000)
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=b"\x80\x02}(" + body + b"u.",
        capture_output=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout.strip() == b"FormatError", (proc.returncode, proc.stderr)


def _refused(data: bytes) -> str:
    with pytest.raises(FormatError) as err:
        scan_pickle(data)
    return str(err.value)


def _colliding_float_pairs(n: int) -> list[tuple[int, float]]:
    """``n`` tuples ``(a, f)`` with ``f`` a float, all with one hash (a float's
    hash is its value modulo 2**61 - 1: a float with a given hash exists for
    about one target in five)."""
    out: list[tuple[int, float]] = []
    for a, lane in _last_lanes():
        if lane >= M61:
            continue
        for r in range(61):  # lane == m * 2**r (mod M61) with m < 2**53
            m = lane * pow(2, -r, M61) % M61
            if m < 2**53:
                f = float(m) * 2.0**r
                if hash(f) == lane:
                    out.append((a, f))
                    break
        if len(out) == n:
            return out
    raise AssertionError  # pragma: no cover - the generator never ends


_TUPLE_HASH_MSG = "share one hash value"


def test_dict_of_colliding_pairs_message() -> None:
    body = b"".join(
        pickle.dumps(p, protocol=2)[2:-1] + b"N" for p in _colliding_pairs(200)
    )
    msg = _refused(b"\x80\x02}(" + body + b"u.")
    assert _TUPLE_HASH_MSG in msg
    assert "hash-collision attack" in msg
    assert "SETITEMS" in msg


@pytest.mark.parametrize("protocol", [2, 4])
def test_set_and_frozenset_of_colliding_tuples(protocol: int) -> None:
    pairs = _colliding_pairs(200)
    for container in (set(pairs), frozenset(pairs)):
        msg = _refused(pickle.dumps(container, protocol=protocol))
        assert _TUPLE_HASH_MSG in msg


def test_set_of_list_of_colliding_tuples_protocol0() -> None:
    msg = _refused(pickle.dumps(set(_colliding_pairs(200)), protocol=0))
    assert _TUPLE_HASH_MSG in msg


def test_dict_of_colliding_float_tuples() -> None:
    pairs = _colliding_float_pairs(200)
    assert len({hash(p) for p in pairs}) == 1
    assert len(set(pairs)) == 200
    for protocol in (0, 2, 4):
        msg = _refused(pickle.dumps(dict.fromkeys(pairs), protocol=protocol))
        assert _TUPLE_HASH_MSG in msg


def test_plain_colliding_floats() -> None:
    # bits 9 apart: six rotations are odd multiples below 2**53, and each
    # float can be scaled by 2**(61 * t): ~200 floats share one hash
    h = sum(1 << (9 * i) for i in range(7))
    floats = set()
    for r in range(61):
        m = h * pow(2, -r, M61) % M61
        if m < 2**53:
            for t in range(-17, 17):
                e = r + 61 * t
                try:
                    f = float(m) * 2.0**e
                except OverflowError:
                    continue
                if f != 0 and f != float("inf") and hash(f) == h:
                    floats.add(f)
    assert len(floats) > 64
    msg = _refused(pickle.dumps(dict.fromkeys(floats), protocol=2))
    assert _TUPLE_HASH_MSG in msg


def test_many_distinct_numeric_tuple_keys_still_load() -> None:
    data = {(i, j): i for i in range(400) for j in range(250)}
    assert scan_pickle(pickle.dumps(data, protocol=2)).safe
    assert scan_pickle(pickle.dumps(data, protocol=4)).safe
    assert scan_pickle(pickle.dumps({(i, i / 7): 0 for i in range(20000)})).safe
    # equal keys repeated across dicts are one key each
    same = [{(1, 2): 0, 1.5: 1} for _ in range(1000)]
    assert scan_pickle(pickle.dumps(same, protocol=2)).safe
