"""The probe before the int-list fast path, against its plain reading
(white-box, differential).

:func:`safenpz._pickle._fast_probe.never_int_rows` skips each opcode's
argument through a table (:data:`~safenpz._pickle._fast_probe._SKIP`). The
reference here reads the same opcodes the plain way, from
:data:`~safenpz._pickle._opcodes.BY_CODE` one opcode at a time (the probe's
first form); both must answer alike on every stream: pickles of every
protocol, truncated anywhere, with one byte changed anywhere, and random
bytes.
"""

from __future__ import annotations

import pickle
import random
from typing import Any

import numpy as np
import pytest

from safenpz._pickle._fast_probe import BODY, HEADER, PROBE_OPS, never_int_rows
from safenpz._pickle._opcodes import BY_CODE, code

_FRAME = code("FRAME")
_EMPTY_LIST = code("EMPTY_LIST")
_LENGTH_BYTES = {"len1": 1, "len4": 4, "len4s": 4, "len8": 8}


def _line_end(view: memoryview, p: int) -> int:
    end = bytes(view[p : p + 256]).find(b"\n")
    return -1 if end < 0 else p + end + 1


def _next(view: memoryview, p: int) -> int:
    op = BY_CODE[view[p]]
    kind = op.arg
    p += 1
    if op.code == _FRAME:
        return p + 8
    if isinstance(kind, int):
        return p + kind
    if kind == "nl":
        return _line_end(view, p)
    if kind == "nl2":
        p = _line_end(view, p)
        return -1 if p < 0 else _line_end(view, p)
    k = _LENGTH_BYTES[kind]
    size = int.from_bytes(view[p : p + k], "little", signed=kind == "len4s")
    return -1 if size < 0 else p + k + size


def _reference(data: bytes) -> bool:
    view = memoryview(data)
    n, p, allowed = len(view), 0, HEADER
    for _ in range(PROBE_OPS):
        if not 0 <= p < n:
            return False
        op = view[p]
        if op not in allowed:
            return True
        if op == _EMPTY_LIST:
            allowed = BODY
        p = _next(view, p)
    return False


def _values() -> list[Any]:
    rows = np.empty(3, dtype=object)
    rows[:] = [[1, 2], [3], [2**70, -1]]
    return [
        rows,
        {"a": [np.float64(1.5)], "b": np.arange(3)},
        [["x"], [1.5]],
        [[1, 2]] * 3,
        np.array(["ab", "c"], dtype=object),
        {np.int64(1): "one"},
    ]


STREAMS = [
    pickle.dumps(value, protocol=protocol)
    for value in _values()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
]


@pytest.mark.parametrize("index", range(len(STREAMS)))
def test_the_probe_reads_as_the_plain_reading(index: int) -> None:
    data = STREAMS[index]
    rng = random.Random(index)
    cases = [data, data[:0]]
    cases += [data[:cut] for cut in range(len(data))]
    for pos in range(len(data)):
        for byte in (rng.randrange(256), 0x5D, 0x95, 0x8C, 0x58, 0x0A):
            cases.append(data[:pos] + bytes([byte]) + data[pos + 1 :])
    for case in cases:
        assert never_int_rows(case) is _reference(case), case
        assert never_int_rows(memoryview(case)) is _reference(case)


def test_the_probe_reads_random_bytes_as_the_plain_reading() -> None:
    rng = random.Random(7)
    opcodes = sorted(HEADER | BODY)
    for _ in range(3000):
        size = rng.randrange(40)
        data = bytes(
            rng.choice(opcodes) if rng.random() < 0.6 else rng.randrange(256)
            for _ in range(size)
        )
        assert never_int_rows(data) is _reference(data), data
