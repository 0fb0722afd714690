"""Findings of the issue-8 adversarial review that live in the static pickle
scanner (``_pickle_scan.py``, being rewritten with container-nesting and
hash-bomb bounds). Each runs in a child under a 2 GB address-space cap and a
10 s alarm and must be refused (LimitError for a limit, FormatError for a
stream no NumPy writes), with no sentinel file."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

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
